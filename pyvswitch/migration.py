"""Moving every context between switch paths while other threads keep working.

The whole mechanism lives here: the gate, the epoch (when it moves; the
hardware carries it), park, unpark and the one retry rule.  Its rules, as drivers/base/dd.c states deferred probing:

* **Who migrates.**  The hypervisor's lock guards its tables; the gate is a
  condition on it.  One thread at a time migrates (``begin``/``end``); every
  call that needs the hardware first waits at the gate (``wait_gate``) while
  another thread migrates, then is refused with EBADF once the hypervisor is
  closed and ENODEV while the contexts are parked (no switch path) - never
  with ESRCH or "idle" because a migration was in progress.
* **Quiesce.**  A migration freezes every PCPU in C (``vsw_pcpu_freeze``)
  before it touches anything: a call inside finishes, later calls from other
  threads are refused with EAGAIN before they look at a handle.  A PCPU a
  driver newly probed is frozen before the hypervisor publishes it, so no
  call ever finds it open and idle in the middle of a migration.
* **Park.**  Every context is exported into a self-checking image (a running
  machine's from its PCPU), each PCPU saved out to idle, every slot freed and
  the epoch bumped: a context handle a thread still holds carries the old
  epoch, and C refuses it (ESTALE) before it reaches a path that may be gone.
* **Unpark, all or nothing.**  The best path the bound drivers allow is taken
  (the epoch bumped again), every image imported and every PCPU given back the
  machine it ran.  If the fast path cannot take them all - the store holds
  fewer contexts than are pinned or running, a transfer fails - every step of
  the attempt is undone (PCPUs saved out, contexts released, the mover channel
  given back) and the memory path is taken instead; ``take_warnings`` hands
  the reason to the call that bound the device, which warns
  (``FallbackWarning``).  If no path is left the images stay parked, the PCPUs
  frozen, and calls are refused with ENODEV until a device binds again.
* **End.**  The PCPUs are thawed with the new epoch (unless parked or closed)
  and the waiting threads let through.
* **Close** is the last migration (``close``): it waits its turn, waits for the
  calls holding the hypervisor (``using``) to leave, freezes every PCPU (a call
  inside finishes first) and forgets every handle; it never thaws.
* **The one retry rule** (``retry``, ``back_off``): a C call refused with
  EAGAIN while no thread migrates (another thread is inside the PCPU, a switch
  in flight holds the only slot that could make room, the machine moved between
  being looked up and being reached) is tried again after a yield; every other
  refusal in ``RETRY`` (EAGAIN during a migration, ESTALE, ENODEV, or no
  handles at all) waits at the gate first and then is tried again - or ends
  with EBADF/ENODEV from the gate.  Nothing else is retried.  Every "busy, try
  again" above the hardware goes through ``retry`` (a switch's slow path,
  ``run``, ``run_schedule`` between its C calls, register access, ``cache.pin``,
  the KVM scheduler's pull and push).  Three loops differ, on purpose:
  ``Pcpu``'s own access (``hw/pcpu.py``) sits below this layer and waits only
  for the call inside the PCPU; ``_save_out`` below tries an injected EIO
  again (a fault strikes once), which is not "busy"; and the module-level
  ``switch_context`` asks again where its machine runs when it moved away
  (ESRCH), which is a look-up, each try of which goes through this rule.
* **Who holds what.**  The hardware (PCPUs, switcher, paths, cache, epoch) is a
  ``BoundHardware`` (``bound.py``) and the machines a ``MachineTable``
  (``api.py``); this module decides when they change, through their public
  methods only (``tests/unit/api/test_one_home.py`` checks it).
"""
from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import check
from .hw import VswError, ffi, lib

if TYPE_CHECKING:
    from .api import Hypervisor, Machine, MachineTable
    from .bound import BoundHardware
    from .hw import Pcpu

#: C refusals that mean "a migration (or another thread) got in the way": the one retry rule.
RETRY = (-errno.EAGAIN, -errno.ESTALE, -errno.ENODEV)


class FallbackWarning(UserWarning):
    """A platform that declares the invention's devices came up on (or stayed on)
    the prior-art memory path; the message names each device or reason."""


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
    fallback: str = ""          # why the fast path it was meant to reach refused them (then to_path "memory")


@dataclass
class Parked:
    """Every context out of the hardware: images by machine id, and who ran where."""

    images: dict[int, bytes]
    running: dict[int, int]
    stats: MigrationStats


class Migration:
    """The gate and the park/unpark machine of one hypervisor: it moves the contexts
    of ``machines`` between the paths of ``hw`` as ``hv``'s drivers come and go."""

    def __init__(self, hv: "Hypervisor", hw: "BoundHardware", machines: "MachineTable") -> None:
        self.hv = hv                            # its platform, kernel, controller and layout
        self.hw = hw
        self.machines = machines
        self.lock = threading.RLock()
        self.gate = threading.Condition(self.lock)
        self.migrator: int | None = None        # the thread migrating, if one is
        self.frozen: list[Pcpu] = []            # PCPUs it froze, thawed when it ends
        self.closed = False                     # close() is the last migration
        self.parked: Parked | None = None
        self.why = ""
        self.history: list[MigrationStats] = []
        self.calls = 0                          # threads inside ``using``
        self.holders: dict[int, int] = {}       # those threads: ident -> holds (``close`` from one would wait for itself)
        self._warnings: list[str] = []

    @property
    def epoch(self) -> int:
        """The epoch context handles must carry: bumped by every park and restore,
        so a handle a thread still holds is refused (ESTALE) once its path may be gone."""
        return self.hw.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.hw.epoch = value

    # --- the gate -------------------------------------------------------------------
    def check_closed(self) -> None:
        """EBADF once the hypervisor is closed."""
        if self.closed:
            raise VswError(errno.EBADF, "this hypervisor is closed")

    def check_open(self) -> None:
        """EBADF once closed, ENODEV while the contexts are parked (no switch path)."""
        self.check_closed()
        if self.parked is not None:
            raise VswError(errno.ENODEV, f"no switch path: {self.why}")

    def wait_for_migrator(self) -> None:
        """Under the lock: waits while another thread migrates."""
        me = threading.get_ident()
        while self.migrator is not None and self.migrator != me:
            self.gate.wait()

    def begin(self) -> None:
        """Under the lock: this thread migrates (after any other has ended)."""
        self.wait_for_migrator()
        self.migrator = threading.get_ident()

    def end(self, thaw: bool = True) -> None:
        """Thaws every PCPU the migration froze (with the current epoch) unless the
        contexts stay parked or ``thaw`` is False, and lets the waiting threads on."""
        if self.migrator != threading.get_ident():
            return
        if thaw and self.parked is None:        # still parked: they stay frozen (idle, no handles)
            for p in self.frozen:
                if not p.closed:                # a retired PCPU stays shut
                    p.thaw(self.epoch)
            self.frozen.clear()
        self.migrator = None
        self.gate.notify_all()

    def freeze(self, pcpus: "list[Pcpu]") -> None:
        """Under the lock, migrating: freezes each PCPU (a call inside finishes first)
        and keys it to the current epoch (the migrating thread switches on it).  A
        PCPU already closed (its driver gone) refuses everyone for good: skipped."""
        for p in pcpus:
            if p.closed:
                continue
            p.freeze()
            check(lib.vsw_pcpu_rekey(p.handle, self.epoch), "rekey")
            if p not in self.frozen:
                self.frozen.append(p)

    def wait_gate(self) -> None:
        """Under the lock: waits while another thread migrates, then EBADF once
        closed and ENODEV while parked (no switch path).  Closed is answered at
        once: ``close`` may be the migrator, waiting for this thread's ``using``."""
        self.check_closed()
        self.wait_for_migrator()
        self.check_open()

    def back_off(self, r: int) -> None:
        """The one retry rule, after a C call refused with one of ``RETRY`` (or made
        without handles): a yield while another thread is inside the PCPU, else a
        wait at the gate (EBADF, ENODEV once there is no path)."""
        if r == -errno.EAGAIN and self.migrator is None and self.hw.handles:
            time.sleep(0)
        else:
            with self.lock:
                self.wait_gate()

    def retry(self, call: "Callable[[], int]") -> int:
        """``call()`` (a C call: >= 0 or -errno) under the one retry rule until it
        answers something outside ``RETRY``; an IndexError means the hypervisor's
        handles were dropped (a migration, or parked) and counts as EAGAIN."""
        while True:
            try:
                r = call()
            except IndexError:
                r = -errno.EAGAIN
            if r not in RETRY:
                return r
            self.back_off(r)

    @contextmanager
    def using(self, parked_ok: bool = False) -> Iterator[None]:
        """A call that needs the hypervisor's hardware outside a PCPU's gate (a KVM
        slice, a bind): ``close`` waits for it to leave.  EBADF once closed; ENODEV
        while parked unless ``parked_ok`` (a bind is how the contexts come back)."""
        with self.lock:
            if parked_ok:
                self.check_closed()
                self.wait_for_migrator()
                self.check_closed()
            else:
                self.wait_gate()
            self.calls += 1
            me = threading.get_ident()
            self.holders[me] = self.holders.get(me, 0) + 1
        try:
            yield
        finally:
            with self.lock:
                self.calls -= 1
                if self.holders[me] == 1:
                    del self.holders[me]
                else:
                    self.holders[me] -= 1
                self.gate.notify_all()

    def close(self) -> bool:
        """The last migration: waits for one in flight, marks the hypervisor closed
        (from here every gate answers EBADF), waits for every ``using`` hold to leave
        (new ones wait, then EBADF), freezes every PCPU for good (a call inside
        finishes first) and forgets every handle - never thawed.  False when it
        was closed already; EDEADLK, changing nothing, from a thread that holds
        ``using`` itself (it would wait for itself)."""
        with self.lock:
            if self.closed:
                return False
            if threading.get_ident() in self.holders:
                raise VswError(errno.EDEADLK, "close() from inside work that holds the hypervisor open on this "
                                              "thread (using(): a Scheduler.run callback or policy) would wait for "
                                              "itself; close it once that work has returned")
            self.begin()
            try:
                self.closed = True
                while self.calls:
                    self.gate.wait()
                self.freeze(self.hw.pcpus)
                self.machines.unplace_all()
                self.hw.drop()
            finally:
                self.end(thaw=False)            # waiters see EBADF
        return True

    def take_warnings(self) -> list[str]:
        """Why moves to the fast path fell back since the last call (each once)."""
        with self.lock:
            out, self._warnings = self._warnings, []
        return out

    # --- following the drivers: when to park and unpark ---------------------------------
    def _in_use(self, dev: object) -> bool:
        """Whether the switch uses ``dev`` now: a part every path needs, or an invention
        device while the fast path is in use."""
        spec = self.hv.platform.spec(dev.name)  # type: ignore[attr-defined]
        if spec is None:
            return False
        return not spec.invention or self.hw.path_name == "store"

    def on_driver_event(self, event: str, dev: object) -> None:
        """The hypervisor's bus notifier.  Before a device the switch uses unbinds (its
        hardware is still there), every context is parked; once the unbind is done,
        or a device binds, the switch comes back on the best path bound."""
        with self.lock:
            if self.closed:         # close() waits for this bind or unbind; its hardware goes now:
                if event == "unbind_driver":    # nothing may be inside it meanwhile
                    self.freeze(self.hw.pcpus)
                return
            try:
                if event == "unbind_driver" and self._in_use(dev):
                    self.begin()
                    self.park(f"{dev.name} unbound")     # type: ignore[attr-defined]
                elif event in ("unbound_driver", "bound_driver"):
                    if (event == "bound_driver" and self.parked is None and self.hw.path_name == "memory"
                            and self.hv.controller.acquire_channel() is not None):
                        self.begin()
                        self.park("moving to the fast path")
                    if self.parked is not None:
                        self.begin()
                        self.unpark()
                    self.end()
            except BaseException:
                self.end()
                raise

    # --- park and unpark ----------------------------------------------------------------
    def park(self, why: str) -> None:
        """Quiesces every PCPU and moves every context out of the hardware into images."""
        hw, ms = self.hw, self.machines
        if self.parked is not None:
            return
        assert hw.path is not None
        self.freeze(hw.pcpus)
        path = hw.path
        running = {i: p.owner for i, p in enumerate(hw.pcpus) if p.owner}
        images = {m.id: m.snapshot() for m in ms if ms.handle(m) is not None}
        saved: list[int] = []
        try:
            for i, owner in running.items():
                self._save_out(hw.pcpus[i], ms.handle(ms[owner]))
                saved.append(i)
        except BaseException:               # a fault on every try, Ctrl-C: the unbind is refused, so
            for i in reversed(saved):       # every PCPU saved out gets its machine back (its slot holds it)
                hw.pcpus[i].switch_ctx(None, ms.handle(ms[running[i]]))
            raise
        self.epoch += 1                     # handles still held by threads are stale from here
        for m in ms:
            ms.release(m)
        if path.name == "store":
            self.hv.controller.release()
        stats = MigrationStats(why, path.name, contexts=len(images),
                               bytes=sum(len(i) for i in images.values()), running=dict(running),
                               modeled_ns=len(images) * path.price(self.hv.layout.all_groups)[1])
        self.parked, self.why = Parked(images, running, stats), why
        hw.drop()

    @staticmethod
    def _save_out(p: "Pcpu", ctx: object) -> None:
        """Leaves a PCPU idle.  Its machine's image was taken already; a fault
        injected into the path's next save strikes once, so the save is tried again."""
        for attempt in range(3):
            try:
                p.switch_ctx(ctx, None)
                return
            except VswError as exc:
                if exc.errno != errno.EIO or attempt == 2:
                    raise

    def unpark(self) -> bool:
        """Back on the best path the bound drivers allow, every context restored and
        every PCPU running what it ran - all of it, or (on the fast path) none of it
        and the memory path instead; False (still parked, and why) when no path is bound."""
        hv, hw = self.hv, self.hw
        parked = self.parked
        assert parked is not None
        ok, why = self._bring_up()          # new PCPUs come frozen
        if not ok:
            self.why = why
            return False
        fast = hw.fast
        interrupted: BaseException | None = None
        try:
            placed = self._restore(parked)
        except BaseException as exc:        # noqa: BLE001 - Ctrl-C too: the attempt is undone, the memory path taken
            if not fast:
                if not isinstance(exc, VswError):
                    raise
                return self._stay_parked(f"the contexts cannot be restored on the memory path: {exc}")
            if not isinstance(exc, VswError):
                interrupted = exc           # raised once the contexts are back, whole, on the memory path
            note = f"the contexts do not fit the store path ({exc!r}); staying on the memory path" if interrupted \
                else f"the contexts do not fit the store path ({exc}); staying on the memory path"
            hv.kernel.printk("error", note)
            hv.controller.release()
            hw.drop()
            self._bring_up(fast=False)
            try:
                placed = self._restore(parked)
            except VswError as exc2:
                return self._stay_parked(f"{note}, and the memory path refused them too: {exc2}")
            parked.stats.fallback = note
            self._warnings.append(note)
        assert hw.path is not None
        parked.stats.to_path = hw.path.name
        parked.stats.modeled_ns += len(placed) * hw.path.price(hv.layout.all_groups)[1]
        self.history.append(parked.stats)
        self.parked = None
        hv.kernel.printk("info", f"switching over the {hw.path.name} path ({len(placed)} contexts)")
        if interrupted is not None:
            raise interrupted
        return True

    def _bring_up(self, fast: bool = True) -> tuple[bool, str]:
        """The hardware taken from the bound drivers again, its PCPUs frozen for this migration."""
        return self.hw.bring_up(self.hv.controller, self.freeze, fast)

    def _stay_parked(self, why: str) -> bool:
        self.why = why
        self.hv.kernel.printk("error", why)
        self.hw.drop()
        return False

    def _restore(self, parked: Parked) -> list["Machine"]:
        """Every image into a context of the current path and every PCPU given back
        its machine, under a new epoch - all, or every step undone and the error raised."""
        hw, ms = self.hw, self.machines
        self.freeze(hw.pcpus)
        self.epoch += 1                     # handles of an attempt undone are stale too
        for p in hw.pcpus:
            check(lib.vsw_pcpu_rekey(p.handle, self.epoch), "rekey")
        placed: list[Machine] = []
        loaded: list[int] = []
        try:
            hw.check_fits({mid for mid in parked.images if mid in ms.pinned}, set(parked.running.values()))
            for mid, img in parked.images.items():
                m = ms[mid]
                ms.place(m)
                placed.append(m)
                info = ffi.new("struct vsw_image_info *")
                check(lib.vsw_ctx_import(ms.handle(m), img, len(img), info), f"import the context of {m.name}")
            for i, owner in parked.running.items():
                hw.pcpus[i].switch_ctx(None, ms.handle(ms[owner]))
                loaded.append(i)
        except BaseException:
            for i in reversed(loaded):      # just loaded, clean: the save moves nothing
                hw.pcpus[i].switch_ctx(ms.handle(ms[parked.running[i]]), None)
            for m in placed:
                ms.release(m)
            raise
        return placed


__all__ = ["FallbackWarning", "Migration", "MigrationStats", "Parked", "RETRY"]
