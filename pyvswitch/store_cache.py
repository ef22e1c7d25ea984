"""``Hypervisor.cache``: the context store as a cache of contexts, seen from the API.

Every machine has a home in MEM; the store holds the hot contexts and a switch
to a machine whose context is not there fetches it (``SwitchStats.cache`` says
"hit" or "miss").  This view reads the statistics and takes the few decisions
a hypervisor makes about it: which machines stay (``pin``), what comes next
(``plan``, for Belady's offline optimum), and - for tests - faults.
Each call holds the hypervisor's lock and waits out a migration.
"""
from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .hw import VswError
from .hw.cache import Cache, CacheStats, Where, where

if TYPE_CHECKING:
    from .api import Hypervisor, Machine, MachineTable
    from .bound import BoundHardware


class StoreCache:
    """The cache of one hypervisor's context store (the fast path's); every call goes
    through ``_cache_of`` (the lock, the gate, the machines checked).  It reaches the
    hypervisor's hardware and machines through their public methods only."""

    def __init__(self, hv: "Hypervisor", hw: "BoundHardware", machines: "MachineTable") -> None:
        self._hv = hv
        self._hw = hw
        self._machines = machines

    @contextmanager
    def _cache_of(self, *machines: "Machine") -> Iterator[tuple[Cache, list[Any]]]:
        """Under the hypervisor's lock, past the gate, each machine checked alive: the
        store's cache (ENODEV on the memory path) and the machines' context handles."""
        mig = self._hv.migration
        with mig.lock:
            mig.wait_gate()
            cache = self._hw.cache
            if cache is not None:
                for m in machines:
                    self._machines.check(m)
                yield cache, [self._machines.handle(m) for m in machines]
                return
        # the reasons ask the kernel: never under the lock (a bind holds the kernel's, then its notifier takes ours)
        raise VswError(errno.ENODEV, "no context store in use: switching goes over the memory path "
                                     f"({'; '.join(self._hv.fallback_reasons()) or 'no mover channel'})")

    @property
    def policy(self) -> str:
        """"lru", "clock", "belady" or "lru-time" (the context-store device's ``policy``)."""
        with self._cache_of() as (cache, _):
            return cache.policy

    def stats(self) -> CacheStats:
        """Hits, misses, write-backs and what they moved, since the path came up or the last reset."""
        with self._cache_of() as (cache, _):
            return cache.stats()

    def reset_stats(self) -> None:
        with self._cache_of() as (cache, _):
            cache.reset_stats()

    def where(self, m: "Machine") -> Where:
        """Whether ``m``'s context is in the store (and its slot) or only at home."""
        with self._cache_of(m) as (_, (ctx,)):
            return where(ctx)

    def pin(self, m: "Machine", pinned: bool = True) -> None:
        """Keeps ``m``'s context in the store from now on (fetching it now), or
        (``pinned=False``) lets the policy evict it again.  The host is pinned
        from the start; a pin outlives a move to the memory path and back."""
        if not isinstance(pinned, bool):        # "no" would pin and [] unpin: truthiness is not a flag
            raise VswError(errno.EINVAL, f"pinned is True or False, not {type(pinned).__name__} (a bool)")

        def attempt() -> int:
            with self._cache_of(m) as (cache, (ctx,)):
                try:
                    cache.pin(ctx, pinned)
                except VswError as e:
                    if e.errno != errno.EAGAIN:
                        raise
                    return -errno.EAGAIN    # a switch in flight holds the slot that could make room
                self._machines.keep_pinned(m, pinned)
                return 0
        self._hv.migration.retry(attempt)

    def unpin(self, m: "Machine") -> None:
        self.pin(m, False)

    def plan(self, loads: Iterable["Machine"]) -> None:
        """The machines the next switches load, in order: what Belady evicts by (the
        context needed again last).  A switch off the plan abandons it."""
        if isinstance(loads, (str, bytes)) or not isinstance(loads, Iterable):
            raise VswError(errno.EINVAL, f"a plan is an iterable of machines, not {type(loads).__name__}")
        try:
            ms = list(loads)
        except (TypeError, ValueError) as exc:      # e.g. a released memoryview
            raise VswError(errno.EINVAL, f"a plan is an iterable of machines: {exc}") from None
        with self._cache_of(*ms) as (cache, handles):
            cache.plan(handles)

    def inject(self, kind: str, group: int = 0) -> None:
        """Fault injection: the next fetch (``kind`` "fetch") or write-back ("writeback")
        fails with EIO after ``group`` groups moved; the switch is refused, nothing lost."""
        with self._cache_of() as (cache, _):
            cache.inject(kind, group)

    def __repr__(self) -> str:
        try:
            s = self.stats()
        except VswError as e:
            return f"<StoreCache: {e.strerror}>"
        return (f"<StoreCache {s.policy}: {s.resident}/{s.capacity} in the store, {s.machines} machines, "
                f"hit rate {s.hit_rate:.3f}>")


__all__ = ["StoreCache"]
