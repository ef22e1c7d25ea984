"""Per-switch statistics, handed out from a free list so a switch allocates nothing.

A hypervisor prototype switches thousands of times a second and mostly drops
the stats; allocating a C struct and a Python object per switch would cost more
than the switch itself.  So each PCPU keeps a small ring of SwitchStats objects
and reuses one only when nobody else holds it (CPython's reference count says
so, as CPython's own free lists do).  A caller that keeps a SwitchStats keeps
its values: the ring then takes a fresh object in its place.
"""
from __future__ import annotations

import itertools
import sys

from ._ffi import ffi
from .path import PATH_NAMES

_STATS = ffi.typeof("struct vsw_switch_stats *")
_RING = 64


class SwitchStats:
    """What one switch did and what it would cost (model nanoseconds)."""

    __slots__ = ("_s",)

    def __init__(self) -> None:
        self._s = ffi.new(_STATS)

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


def _held_elsewhere_threshold() -> int | None:
    """The reference count of a ring entry nobody else holds, as take() sees it;
    None where counts cannot tell (then every switch gets a fresh object)."""
    ring = [SwitchStats()]

    def probe() -> int:
        s = ring[0]
        return sys.getrefcount(s)

    free = probe()
    keep = ring[0]
    held = probe()
    del keep
    return free if held > free else None


class StatsRing:
    """The free list of one PCPU; take() is safe under concurrent callers."""

    __slots__ = ("_items", "_seq", "_free")

    def __init__(self) -> None:
        self._items = [SwitchStats() for _ in range(_RING)]
        self._seq = itertools.count()
        self._free = _held_elsewhere_threshold()

    def take(self) -> SwitchStats:
        i = next(self._seq) % _RING        # distinct for concurrent callers (atomic under the GIL)
        s = self._items[i]
        if self._free is None or sys.getrefcount(s) > self._free:
            s = self._items[i] = SwitchStats()
        return s
