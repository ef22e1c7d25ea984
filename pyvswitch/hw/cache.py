"""The context store as a cache of contexts over their homes in MEM (csrc/cache.c).

Every machine has a home in MEM; the store holds the hot contexts.  A switch to
a machine whose context is not in the store fetches it, evicting a victim the
policy picks (LRU, CLOCK, or Belady's offline optimum for comparison) and
writing the victim's changed groups back first.  Pinned machines stay in the store.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from ..errors import VswError, check, check_uint
from ._ffi import ffi, lib
from .bus import Bus
from .path import Path
from .store import Store

#: LRU goes by the order of loads as the cache sees them (the textbook's, with one
#: PCPU or several); "lru-time" by the loading PCPU's model clock, ties in load order.
POLICIES = {"lru": lib.VSW_POLICY_LRU, "clock": lib.VSW_POLICY_CLOCK, "belady": lib.VSW_POLICY_BELADY,
            "lru-time": lib.VSW_POLICY_LRU_TIME}
FETCH_VIA = {"pcpu": lib.VSW_FETCH_PCPU, "mover": lib.VSW_FETCH_MOVER}
CACHE_FAULTS = {"none": lib.VSW_CACHE_FAULT_NONE, "fetch": lib.VSW_CACHE_FAULT_FETCH,
                "writeback": lib.VSW_CACHE_FAULT_WRITEBACK}
RESULTS = {lib.VSW_CACHE_NONE: None, lib.VSW_CACHE_HIT: "hit", lib.VSW_CACHE_MISS: "miss"}


def hit_rate(hits: int, misses: int) -> float:
    """Hits over loads (0 before the first load)."""
    loads = hits + misses
    return hits / loads if loads else 0.0


@dataclass(frozen=True)
class CacheStats:
    """What the cache did since it was made (or reset): loads that found their
    context in the store (hits) or fetched it (misses), and what moved."""

    policy: str
    hits: int
    misses: int
    writebacks: int
    bytes_fetched: int
    bytes_written_back: int
    fetch_ns: float
    writeback_ns: float
    resident: int               # contexts in the store now
    pinned: int
    machines: int               # with a home in MEM
    capacity: int               # contexts the store holds
    home_capacity: int          # machines MEM holds

    @property
    def hit_rate(self) -> float:
        return hit_rate(self.hits, self.misses)


@dataclass(frozen=True)
class Where:
    """Where one machine's context is: in the store (its slot) or only at home."""

    resident: bool
    slot: int | None
    loaded: bool                # on a PCPU
    pinned: bool
    changed_mask: int           # groups the store copy changed since its fetch
    generation: int


def where(ctx: Any) -> Where:
    """Where the context of a handle (cached or plain) is now."""
    w = ffi.new("struct vsw_ctx_where *")
    check(lib.vsw_ctx_where(ctx, w), "context where", {errno.ENOENT: "the machine's context was released"})
    return Where(bool(w.resident), w.slot if w.resident else None, bool(w.loaded), bool(w.pinned),
                 w.changed_mask, w.generation)


class Cache:
    """Owner of a C cache: the store of a mover path over MEM, fetched and written
    back over the memory bus by the PCPU or (``fetch_via="mover"``) by the mover."""

    def __init__(self, path: Path, home: Store, membus: Bus, policy: str = "lru", fetch_via: str = "pcpu") -> None:
        if policy not in POLICIES:
            raise VswError(errno.EINVAL, f"cache policy is one of {', '.join(POLICIES)}, not {policy!r}")
        if fetch_via not in FETCH_VIA:
            raise VswError(errno.EINVAL, f"contexts are fetched via {' or '.join(FETCH_VIA)}, not {fetch_via!r}")
        p = ffi.new("struct vsw_cache_params *", {"policy": POLICIES[policy], "fetch_via": FETCH_VIA[fetch_via]})
        out = ffi.new("struct vsw_cache **")
        check(lib.vsw_cache_create(path.handle, home.handle, membus.handle, p, out), "cache create", {
            errno.EINVAL: "a cache needs the mover's path, MEM and the memory bus",
            errno.EXDEV: "MEM and the store hold different layouts",
            errno.EBUSY: "the store must be empty when it becomes a cache"})
        self._h = ffi.gc(out[0], lib.vsw_cache_destroy)
        self.path, self.home, self.membus = path, home, membus      # kept alive as long as the cache
        self.policy, self.fetch_via = policy, fetch_via

    @property
    def handle(self) -> object:
        return self._h

    def new_context(self, owner: int, epoch: int) -> Any:
        """A context handle for machine ``owner``: in the store if a slot is free, else at home."""
        out = ffi.new("struct vsw_ctx **")
        check(lib.vsw_ctx_create_cached(self._h, owner, epoch, out), "create", {
            errno.ENOSPC: f"MEM is full: it holds the homes of {self.home.capacity_slots} machines "
                          f"({self.home.capacity_bytes} bytes)"})
        return ffi.gc(out[0], lib.vsw_ctx_destroy)

    def stats(self) -> CacheStats:
        c = ffi.new("struct vsw_cache_counters *")
        check(lib.vsw_cache_counters(self._h, c), "cache counters")
        return CacheStats(self.policy, c.hits, c.misses, c.writebacks, c.bytes_fetched, c.bytes_written_back,
                          c.fetch_ps / 1000.0, c.writeback_ps / 1000.0, c.resident, c.pinned, c.machines,
                          self.path.store.capacity_slots, c.home_capacity)

    def reset_stats(self) -> None:
        check(lib.vsw_cache_reset_counters(self._h), "cache reset")

    def pin(self, ctx: Any, pinned: bool = True) -> None:
        """Keeps a context in the store (fetching it now) or lets it go again."""
        check(lib.vsw_ctx_pin(ctx, int(bool(pinned))), "pin", {
            errno.ENOSPC: "no context in the store can make room: every one is pinned or running"})

    def plan(self, handles: list[Any]) -> None:
        """The loads the next switches make, in order (Belady's future)."""
        arr = ffi.new("struct vsw_ctx *[]", handles) if handles else ffi.NULL
        check(lib.vsw_cache_plan(self._h, arr, len(handles)), "cache plan",
              {errno.EINVAL: "a plan names machines of this cache only"})

    def inject(self, kind: str, group: int = 0) -> None:
        """Fault injection: the next ``kind`` ("fetch" or "writeback") fails with EIO
        after ``group`` groups moved (0: before the first)."""
        if not isinstance(kind, str) or kind not in CACHE_FAULTS:
            raise VswError(errno.EINVAL, f"cache fault is one of {', '.join(CACHE_FAULTS)}, not {kind!r}")
        check_uint(group, "fault group")
        check(lib.vsw_cache_inject(self._h, CACHE_FAULTS[kind], group), "cache inject",
              {errno.EINVAL: f"group {group} is beyond the layout's {len(self.path.store.layout.groups)} groups"})


__all__ = ["CACHE_FAULTS", "Cache", "CacheStats", "FETCH_VIA", "POLICIES", "RESULTS", "Where", "hit_rate", "where"]
