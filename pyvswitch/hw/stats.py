"""Per-switch statistics, handed out so that a switch usually allocates nothing.

A hypervisor prototype switches thousands of times a second and mostly drops
the stats - or keeps the last one in a variable while it makes the next
switch.  Allocating a C struct and a Python object per switch would cost more
than the switch itself, so each PCPU keeps two SwitchStats: the last one is
handed out again when nobody else holds it, which CPython's reference count
tells (as its own free lists do) - the usual case, with nothing to store -
else the spare, so a caller that keeps one in a variable while it makes the
next switch alternates between the two.  A caller that keeps its SwitchStats
keeps its values: a fresh object takes its turn when both are held.
Thread-safe without a lock: whoever is using an object holds a reference to
it, so nobody else can see it as free.
"""
from __future__ import annotations

import ctypes
import sys

from ._ffi import ffi
from .cache import RESULTS
from .path import PATH_NAMES

_CHUNK = 32                     # descriptors allocated at once for SwitchStats that callers keep
_DESCS = ffi.typeof(f"struct vsw_switch_desc[{_CHUNK}]")
_ONE = ffi.typeof("struct vsw_switch_desc[1]")
_STATS = ffi.typeof("struct vsw_switch_stats *")   # the descriptor's first member

# struct vsw_switch_stats as ctypes sees it, laid out from what cffi read in vsw.h
# (names, types, offsets; checked below): a SwitchStats *is* its C stats, so an
# integer field reads in one C getter, without cffi's lookup or a Python frame.
# Fields the API shows otherwise (names, nanoseconds) get a leading underscore.
_CTYPES = {"uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64}
_RENAMED = {"save_units": "save_bursts", "load_units": "load_bursts"}
_SHOWN = {"save_mask", "bytes_saved", "bytes_loaded", "generation", "bytes_fetched", "bytes_written_back"}


def _view_fields() -> list[tuple[str, type]]:
    out = []
    for name, f in _STATS.item.fields:
        shown = _RENAMED.get(name, name if name in _SHOWN else f"_{name}")
        out.append((shown, _CTYPES[f.type.cname]))
    return out


class _StatsView(ctypes.Structure):
    _fields_ = _view_fields()
    __slots__ = ()


if ctypes.sizeof(_StatsView) != ffi.sizeof(_STATS.item) or any(
        getattr(_StatsView, shown).offset != f.offset
        for (shown, _), (_, f) in zip(_StatsView._fields_, _STATS.item.fields)):
    raise ImportError("ctypes lays out struct vsw_switch_stats unlike the C compiler")


class SwitchStats(_StatsView):
    """What one switch did and what it would cost (model nanoseconds).

    A view of the stats of a switch descriptor (``_d``, one of a chunk that
    ``_chunk`` keeps alive): bound to a PCPU, it carries one switch and
    receives its stats (``_s``: the same memory as cffi sees it).

    Integers, read straight from C: ``save_bursts`` and ``load_bursts`` (N and
    M: the mover's bursts, or on the memory path the PCPU's stores and loads),
    ``save_mask`` (the groups saved: the dirty ones), ``bytes_saved``,
    ``bytes_loaded``, ``generation`` (of the outgoing slot after the save),
    ``bytes_fetched`` (the incoming context from its home in MEM, on a miss) and
    ``bytes_written_back`` (the evicted context's changed groups)."""

    __slots__ = ("_d", "_s", "_chunk")

    def __new__(cls, pcpu: object = None) -> "SwitchStats":
        return cls._of(ffi.new(_ONE, [{"pcpu": pcpu or ffi.NULL}]), 0)

    def __init__(self, pcpu: object = None) -> None:
        pass                    # all done in __new__ (ctypes would take pcpu for the first field)

    @classmethod
    def _of(cls, chunk: object, i: int) -> "SwitchStats":
        """The SwitchStats of descriptor ``i`` of ``chunk`` (StatsPool.fresh)."""
        d = chunk + i           # type: ignore[operator]
        st = ffi.cast(_STATS, d)
        s = cls.from_buffer(ffi.buffer(st))
        s._chunk, s._d, s._s = chunk, d, st
        return s

    path = property(lambda self: PATH_NAMES[self._path], doc='"store" (the mover) or "memory" (prior art)')
    data_ns = property(lambda self: self._data_ps / 1000.0, doc="modelled data movement on this path")
    exit_entry_ns = property(lambda self: self._exit_entry_ps / 1000.0, doc="fixed VM exit + entry (both paths)")
    modeled_ns = property(lambda self: self._modeled_ps / 1000.0, doc="data movement + exit/entry")
    baseline_ns = property(lambda self: self._baseline_ps / 1000.0,
                           doc="the prior-art path for the same groups (0 without a memory bus to price it)")
    cache = property(lambda self: RESULTS[self._cache],
                     doc='"hit" or "miss": whether the incoming context was in the store (None on the memory path)')
    cache_ns = property(lambda self: self._cache_ps / 1000.0,
                        doc="modelled write-back + fetch of a miss (part of data_ns)")

    FIELDS = ("path", "save_bursts", "load_bursts", "save_mask", "bytes_saved", "bytes_loaded", "data_ns",
              "exit_entry_ns", "modeled_ns", "baseline_ns", "generation", "cache", "bytes_fetched",
              "bytes_written_back", "cache_ns")

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
    """The SwitchStats of one PCPU's switches: the last one again, the spare
    when its caller keeps the last, fresh ones when it keeps both - carved from
    chunks of descriptors (one allocation per 32, not one per switch).

    Its fields are public so the hottest caller (Hypervisor.switch_context)
    can inline take() - the same steps, without the call.
    """

    __slots__ = ("spare", "last", "free", "pcpu", "index", "_chunk", "_used")

    def __init__(self, pcpu: object = None, index: int | None = None) -> None:
        self.pcpu = pcpu                    # the C PCPU the descriptors are bound to
        self.index = index                  # its number on the platform, if it has one
        self._used = _CHUNK
        self.spare = self.fresh()
        self.last = self.fresh()
        self.free = _free_refcount()

    def fresh(self) -> SwitchStats:
        """A SwitchStats nobody else holds."""
        if self._used == _CHUNK:
            self._chunk = ffi.new(_DESCS, [{"pcpu": self.pcpu or ffi.NULL}] * _CHUNK)
            self._used = 0
        s = SwitchStats._of(self._chunk, self._used)
        self._used += 1
        return s

    def take(self) -> SwitchStats:
        """The last one again when its caller dropped it (the usual case: nothing
        to store); else the spare, else a fresh one - a held one's values are its
        holder's, so ``x = switch(...)`` in a loop alternates between the two."""
        s = self.last
        if sys.getrefcount(s) > self.free:
            s = self.spare
            if sys.getrefcount(s) > self.free:
                s = self.fresh()
            self.spare = self.last
            self.last = s
        return s
