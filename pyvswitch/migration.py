"""Moving every context between switch paths while other threads keep working.

When a device the switch uses is about to unbind (its hardware still there),
or a better path appears, the hypervisor migrates - as Linux quiesces a
device before it unbinds:

1. **quiesce**: under the hypervisor's lock, every PCPU is frozen in C
   (``vsw_pcpu_freeze``): a call already inside finishes, new calls from other
   threads are refused with EAGAIN and wait at the hypervisor's gate until the
   migration ends (they never fail because one raced);
2. **park**: each running machine is saved out of its PCPU, every context
   exported into a self-checking image, every slot freed, the epoch bumped so
   that context handles a thread still holds are refused (ESTALE) before they
   reach a path that is about to go;
3. the kernel unbinds the device (its driver's remove and devres run);
4. **unpark**: the best path the bound drivers allow is taken, every image
   imported, each PCPU given back the machine it ran, the PCPUs thawed with the
   new epoch, and the waiting threads let through.

If no path is left (a PCPU, MEM or the memory bus lost its driver) the images
stay parked and switching says so (ENODEV) until the device binds again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import check
from .hw import VswError, ffi, lib

if TYPE_CHECKING:
    from .api import Hypervisor, Machine


@dataclass
class MigrationStats:
    """What one move between paths carried (every context, once)."""

    reason: str
    from_path: str
    to_path: str = "none"
    contexts: int = 0
    bytes: int = 0
    modeled_ns: float = 0.0     # every context saved out over the old path and loaded over the new one
    running: dict[int, int] = field(default_factory=dict)   # pcpu -> machine id, as before the move


@dataclass
class Parked:
    """Every context out of the hardware: images by machine id, and who ran where."""

    images: dict[int, bytes]
    running: dict[int, int]
    stats: MigrationStats


class Migration:
    """The park/unpark machine of one hypervisor; every method runs under its lock."""

    def __init__(self, hv: "Hypervisor") -> None:
        self.hv = hv
        self.parked: Parked | None = None
        self.why = ""
        self.history: list[MigrationStats] = []

    def park(self, why: str) -> None:
        """Quiesces every PCPU and moves every context out of the hardware into images."""
        hv = self.hv
        if self.parked is not None:
            return
        assert hv._path is not None
        for p in hv._pcpus:
            p.freeze()
            if p not in hv._frozen:
                hv._frozen.append(p)
        path = hv._path
        running = {i: p.owner for i, p in enumerate(hv._pcpus) if p.owner}
        for i, owner in running.items():
            hv._pcpus[i].switch(path, owner, None)
        images = {mid: m.snapshot() for mid, m in hv._machines.items() if m._c is not None}
        hv._epoch += 1                      # handles still held by threads are stale from here
        for m in hv._machines.values():
            hv._release(m)
        if path.name == "store":
            hv.controller.release()
        stats = MigrationStats(why, path.name, contexts=len(images),
                               bytes=sum(len(i) for i in images.values()), running=dict(running),
                               modeled_ns=len(images) * path.price(hv.layout.all_groups)[1])
        self.parked, self.why = Parked(images, running, stats), why
        hv._drop_handles()

    def unpark(self) -> bool:
        """Back on the best path the bound drivers allow, every context restored and
        every PCPU running what it ran; False (still parked, and why) otherwise.
        Contexts that do not fit the store stay on the memory path, and say why."""
        hv = self.hv
        parked = self.parked
        assert parked is not None
        ok, why = hv._bring_up()
        if not ok:
            self.why = why
            return False
        for p in hv._pcpus:                 # new ones, and those an earlier migration left frozen
            p.freeze()
            if p not in hv._frozen:
                hv._frozen.append(p)
        try:
            placed = self._place_all(parked)
        except VswError as exc:             # e.g. the store is too small for them all
            if hv._path is hv._memory:
                raise
            self.why = f"contexts do not fit the store path ({exc}); staying on the memory path"
            hv.kernel.printk("error", self.why)
            hv.controller.release()
            hv._drop_handles()
            hv._bring_up(fast=False)
            placed = self._place_all(parked)
        assert hv._path is not None
        for p in hv._pcpus:
            check(lib.vsw_pcpu_rekey(p.handle, hv._epoch), "rekey")
        for i, owner in parked.running.items():
            hv._pcpus[i].switch_ctx(None, hv._machines[owner]._c)
        parked.stats.to_path = hv._path.name
        parked.stats.modeled_ns += len(placed) * hv._path.price(hv.layout.all_groups)[1]
        self.history.append(parked.stats)
        self.parked = None
        hv.kernel.printk("info", f"switching over the {hv._path.name} path ({len(placed)} contexts)")
        return True

    def _place_all(self, parked: Parked) -> list["Machine"]:
        """Every image into a context of the current path, all or none."""
        hv = self.hv
        placed: list[Machine] = []
        try:
            for mid, img in parked.images.items():
                m = hv._machines[mid]
                hv._place_new(m)
                placed.append(m)
                info = ffi.new("struct vsw_image_info *")
                check(lib.vsw_ctx_import(m._c, img, len(img), info), f"import the context of {m.name}")
        except VswError:
            for m in placed:
                hv._release(m)
            raise
        return placed


__all__ = ["Migration", "MigrationStats", "Parked"]
