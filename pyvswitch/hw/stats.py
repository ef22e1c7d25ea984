"""Per-switch statistics, handed out so that a switch usually allocates nothing.

A hypervisor prototype switches thousands of times a second and mostly drops
the stats - or keeps the last one in a variable while it makes the next
switch.  Allocating a C struct and a Python object per switch would cost more
than the switch itself, so each PCPU keeps two SwitchStats and alternates:
the one handed out the time before last is reused only when nobody else
holds it, which CPython's reference count tells (as its own free lists do).
A caller that keeps its SwitchStats keeps its values: a fresh object takes
its turn instead.  Thread-safe without a lock: whoever is using an object
holds a reference to it, so nobody else can see it as free.
"""
from __future__ import annotations

import sys

from ._ffi import ffi
from .path import PATH_NAMES

_DESC = ffi.typeof("struct vsw_switch_desc *")


class SwitchStats:
    """What one switch did and what it would cost (model nanoseconds).

    Owns a switch descriptor (``_d``): bound to a PCPU, it carries one switch
    and receives its stats (``_s``)."""

    __slots__ = ("_d", "_s")

    def __init__(self, pcpu: object = None) -> None:
        self._d = ffi.new(_DESC)
        self._d.pcpu = pcpu if pcpu is not None else ffi.NULL
        self._s = ffi.addressof(self._d, "stats")

    path = property(lambda self: PATH_NAMES[self._s.path], doc='"store" (the mover) or "memory" (prior art)')
    save_bursts = property(lambda self: int(self._s.save_units), doc="N: bursts (memory path: stores) of the save")
    load_bursts = property(lambda self: int(self._s.load_units), doc="M: bursts (memory path: loads) of the load")
    save_mask = property(lambda self: int(self._s.save_mask), doc="groups saved (the dirty ones)")
    bytes_saved = property(lambda self: int(self._s.bytes_saved))
    bytes_loaded = property(lambda self: int(self._s.bytes_loaded))
    data_ns = property(lambda self: self._s.data_ps / 1000.0, doc="modelled data movement on this path")
    exit_entry_ns = property(lambda self: self._s.exit_entry_ps / 1000.0, doc="fixed VM exit + entry (both paths)")
    modeled_ns = property(lambda self: self._s.modeled_ps / 1000.0, doc="data movement + exit/entry")
    baseline_ns = property(lambda self: self._s.baseline_ps / 1000.0,
                           doc="the prior-art path for the same groups (0 without a memory bus to price it)")
    generation = property(lambda self: int(self._s.generation), doc="of the outgoing slot after the save")

    FIELDS = ("path", "save_bursts", "load_bursts", "save_mask", "bytes_saved", "bytes_loaded", "data_ns",
              "exit_entry_ns", "modeled_ns", "baseline_ns", "generation")

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.FIELDS}

    def __repr__(self) -> str:
        return (f"SwitchStats(path={self.path!r}, N={self.save_bursts}, M={self.load_bursts}, "
                f"saved={self.bytes_saved}, loaded={self.bytes_loaded}, modeled_ns={self.modeled_ns:.1f}, "
                f"baseline_ns={self.baseline_ns:.1f})")


def _free_refcount() -> int:
    """The reference count of the spare object when nobody else holds it, as seen
    by code shaped like take(); -1 where counts cannot tell (every take is then fresh)."""
    pool = StatsPool.__new__(StatsPool)
    pool.spare = SwitchStats(None)

    def probe() -> int:
        s = pool.spare
        return sys.getrefcount(s)

    free = probe()
    keep = pool.spare
    held = probe()
    del keep
    return free if held > free else -1


class StatsPool:
    """The two alternating SwitchStats of one PCPU.

    Its fields are public so the hottest caller (Hypervisor.switch_context)
    can inline take() - the same steps, without the call.
    """

    __slots__ = ("spare", "last", "free", "pcpu", "index")

    def __init__(self, pcpu: object = None, index: int | None = None) -> None:
        self.pcpu = pcpu                    # the C PCPU the descriptors are bound to
        self.index = index                  # its number on the platform, if it has one
        self.spare = SwitchStats(pcpu)
        self.last = SwitchStats(pcpu)
        self.free = _free_refcount()

    def take(self) -> SwitchStats:
        s = self.spare
        if sys.getrefcount(s) > self.free:  # somebody holds it: its values are theirs
            s = SwitchStats(self.pcpu)
        self.spare = self.last
        self.last = s
        return s
