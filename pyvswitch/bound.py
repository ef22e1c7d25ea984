"""The hardware the bound drivers expose, as the switch uses it.

Once the controller has bound the drivers, the hypervisor takes what they
expose - the PCPUs (and their C handles, which the fast path passes), the
switcher that switches on them from Python, the prior art's MEM path, the fast path over the store
when the controller holds a mover channel, the store's cache of contexts -
and the epoch every context handle must carry.  ``BoundHardware`` holds them;
``drop`` forgets the handles (a switch then finds none and takes the slow
path) and ``bring_up`` takes them again from the drivers.  When it does either
is the migration's decision (``migration.py``); this object only holds.

Threads: every attribute is replaced, never mutated in place, and only under
the hypervisor's lock by the migrating thread; the fast path reads them
without a lock and C refuses a handle that went stale meanwhile.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import check
from .hw import Path, Pcpu, Slot, Store, VswError, ffi, lib
from .hw.cache import Cache
from .hw.stats import Switcher
from .schema import REQUIRED

if TYPE_CHECKING:
    from .controller import Controller
    from .kernel import Kernel
    from .platform import Platform


class BoundHardware:
    """The PCPUs, their switcher, paths, cache and epoch of one hypervisor.

    ``pcpus``/``handles`` are indexed by PCPU; ``switcher`` switches on them from
    Python (``hw.stats.Switcher``; ``publish`` hands every new one to the
    hypervisor's ``switch_context``); ``memory`` is the prior-art path, ``path``
    the one in use (``memory`` or the store's), ``cache`` the store's cache of
    contexts on the fast path (None on the memory path).  All are empty / None
    while the contexts are parked or the hypervisor is closed.
    """

    __slots__ = ("platform", "kernel", "pcpus", "handles", "switcher", "publish", "memory", "path", "cache",
                 "epoch", "slot_bytes")

    def __init__(self, platform: "Platform", kernel: "Kernel", publish: "Callable[[Switcher], None]") -> None:
        self.platform = platform
        self.publish = publish
        self.kernel = kernel
        # what context handles must carry; the migration bumps it.  Unique to this
        # hypervisor, so a handle of another one is refused as stale
        self.epoch = int.from_bytes(os.urandom(7), "little") + 1
        self.slot_bytes = 0         # a MEM slot's size, for scratch slots (kept across drops)
        self.drop()

    def drop(self) -> None:
        """Forgets every C handle (the fast path then finds none and takes the slow path)."""
        self.pcpus: list[Pcpu] = []
        self.handles: list[Any] = []
        self.switcher = Switcher()          # none of the PCPUs: every switch takes the slow path
        self.publish(self.switcher)
        self.memory: Path | None = None
        self.path: Path | None = None
        self.cache: Cache | None = None

    def bring_up(self, controller: "Controller", freeze: "Callable[[list[Pcpu]], None]",
                 fast: bool = True) -> tuple[bool, str]:
        """Takes the PCPUs, the prior art's MEM path and, when the controller holds
        a mover channel (and ``fast``), the fast path from the bound drivers;
        False and why when a part the switch needs has no driver.  The PCPUs are
        passed to ``freeze`` before they are published: no call finds a new PCPU
        open and idle."""
        need = {s.name for kind in REQUIRED for s in self.platform.of_kind(kind)}
        for d in controller.report().devices:        # what the controller found, not found again
            if d.name in need and d.state != "bound":
                return False, d.why_unbound()
        k = self.kernel
        pcpus = [k.device(s.name) for s in self.platform.of_kind("pcpu")]
        mem, membus = (k.device(self.platform.of_kind(kind)[0].name) for kind in ("mem", "memory-bus"))
        freeze([d.driver_data for d in pcpus])
        self.pcpus = [d.driver_data for d in pcpus]
        self.handles = [p.handle for p in self.pcpus]
        self.switcher = Switcher(self.handles)
        self.publish(self.switcher)         # before any machine is placed: they bind for it
        self.memory = Path.memory(mem.driver_data, membus.driver_data)
        self.path = self.memory
        if not self.slot_bytes:
            self.slot_bytes = self.memory.store.slot_bytes
        chan = controller.acquire_channel() if fast else None
        if chan is not None:
            self.path = chan.context
            self.path.set_baseline(membus.driver_data)
            self.cache = Cache(self.path, mem.driver_data, membus.driver_data, self.path.store.policy,
                               self.path.fetch_via)
        return True, ""

    @property
    def path_name(self) -> str:
        """"store", "memory", or "none" while there is no path."""
        path = self.path
        return path.name if path is not None else "none"

    @property
    def fast(self) -> bool:
        """Whether the path in use is the store's."""
        return self.path is not None and self.path is not self.memory

    def owner(self, pcpu: int) -> int:
        """The machine id running on ``pcpu`` (0: idle); one C call, no lock."""
        return self.switcher.owner(pcpu)

    def running_on(self, mid: int, hint: int | None = None) -> int | None:
        """The PCPU running machine ``mid``: ``hint`` (where it was last loaded) when
        it is still there (one C call), else every PCPU asked.  One switcher read
        once, its own PCPUs counted: a bring-up replaces ``handles`` and then
        ``switcher``, and a caller without the lock may come between the two."""
        switcher = self.switcher
        owner, n = switcher.owner, switcher.npcpus
        if hint is not None and hint < n and owner(hint) == mid:
            return hint
        for i in range(n):
            if owner(i) == mid:
                return i
        return None

    def new_context(self, mid: int, pinned: bool) -> tuple[Slot | None, Any]:
        """A context for machine ``mid`` in its reset state on the current path, all or
        nothing: on the memory path (its slot of MEM, the C handle bound to it); on the
        fast path (None, an entry of the store's cache - MEM bounds how many), pinned
        in the store when ``pinned``."""
        path = self.path
        assert path is not None
        if self.cache is None:
            slot = path.store.alloc(mid)
            out = ffi.new("struct vsw_ctx **")
            r = lib.vsw_ctx_create(path.handle, slot.index, slot.owner, self.epoch, out)
            if r < 0:
                slot.free()
                check(r, "context handle")
            return slot, ffi.gc(out[0], lib.vsw_ctx_destroy)
        c = self.cache.new_context(mid, self.epoch)
        if pinned:
            try:
                self.cache.pin(c)
            except VswError:
                self.release(None, c, f"machine {mid}")
                raise
        return None, c

    def release(self, slot: Slot | None, ctx: Any, what: str) -> None:
        """Frees a context ``new_context`` made (its slot, or its cache entry and home
        in MEM); its handle is retired or stale from here."""
        if slot is not None:
            slot.free()
        elif ctx is not None:
            check(lib.vsw_ctx_release(ctx), f"release {what}")

    def slot_of(self, slot_index: int, owner: int) -> Slot | None:
        """The slot ``slot_index`` of the current path's store, as ``owner``'s."""
        path = self.path
        return Slot(path.store, slot_index, owner) if path is not None else None

    def scratch_slot(self, layout: Any) -> Slot:
        """A slot of a store of its own, the size of a MEM slot (validating an image)."""
        return Store(layout, self.slot_bytes).alloc(1 << 63)

    def check_fits(self, pinned: set[int], running: set[int]) -> None:
        """ENOSPC, before anything moves, when the store cannot hold every context that
        must stay in it: the ``pinned`` ones and the ``running`` ones (machine ids)."""
        if self.cache is None:
            return
        cap = self.cache.path.store.capacity_slots
        if len(pinned | running) > cap:
            raise VswError(errno.ENOSPC, f"{len(pinned | running)} contexts must be in the store ({len(pinned)} "
                                         f"pinned, {len(running - pinned)} more running) and it holds {cap}")


__all__ = ["BoundHardware"]
