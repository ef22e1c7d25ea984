"""The hypervisor-facing API: ``open()`` a platform, create VMs, and
``switch_context(frm, to)`` between them.

The driver stack sets the switch path up; the switch itself never walks it:
each ``switch_context`` is one C call on handles the bound drivers expose.
When the mover, the context store or the storage bus goes away (its driver
unbinds, its module unloads), every context moves to MEM and switching goes
on over the prior-art memory path - and says so in ``SwitchStats.path``;
when they come back, the contexts move back to the store.
"""
from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from .controller import Controller, ControllerReport
from .hw import Layout, Path, Pcpu, RegisterView, Slot, Store, SwitchStats, VswError, ffi, lib
from .hw.errors import check
from .hw.pcpu import raise_switch_error
from .hw.stats import StatsPool
from .kernel import Kernel
from .platform import Platform

_switch = lib.vsw_switch_ctx
_switch_desc = lib.vsw_switch_desc
_refcount = sys.getrefcount
HOST_ID = 1


class Machine:
    """The host or a VM: a register context that runs on a PCPU or rests in a slot."""

    __slots__ = ("_hv", "name", "_id", "_slot", "_c", "destroyed")

    def __init__(self, hv: "Hypervisor", name: str, mid: int) -> None:
        self._hv = hv
        self.name = name
        self._id = mid
        self._slot: Slot | None = None
        self._c: Any = None         # the C context handle the fast path passes
        self.destroyed = False

    def _place(self, slot: Slot, path: Path) -> None:
        """Binds the machine to its slot on a path (the C handle the switch takes)."""
        out = ffi.new("struct vsw_ctx **")
        check(lib.vsw_ctx_create(path.handle, slot.index, slot.owner, out), "context handle")
        self._slot, self._c = slot, ffi.gc(out[0], lib.vsw_ctx_destroy)

    def _unplace(self) -> None:
        if self._c is not None:
            ffi.release(self._c)
        self._slot, self._c = None, None

    @property
    def id(self) -> int:
        return self._id

    @property
    def hypervisor(self) -> "Hypervisor":
        return self._hv

    @property
    def layout(self) -> Layout:
        return self._hv.layout

    @property
    def is_host(self) -> bool:
        return self._id == HOST_ID

    @property
    def pcpu(self) -> int | None:
        """The PCPU this machine runs on, or None while it is saved."""
        return self._hv._running_on(self)

    @property
    def regs(self) -> RegisterView:
        """Registers by name; reads and writes reach the PCPU while the machine
        runs and its saved context otherwise."""
        return RegisterView(self.layout, self._read, self._write)

    def _where(self) -> "Pcpu | Slot":
        self._hv._check_alive(self)
        i = self.pcpu
        if i is not None:
            return self._hv._pcpus[i]
        assert self._slot is not None
        return self._slot

    def _read(self, offset: int, size: int) -> bytes:
        with self._hv._lock:
            return self._where().read(offset, size)

    def _write(self, offset: int, data: bytes) -> None:
        with self._hv._lock:
            self._where().write(offset, data)

    def set_state(self, raw: bytes) -> None:
        """Replaces the whole register file of the machine (``layout.size`` bytes), running or saved."""
        if not isinstance(raw, (bytes, bytearray, memoryview)) or len(raw) != self.layout.size:
            raise VswError(errno.EINVAL, f"a {self.layout.name} register file is {self.layout.size} bytes, "
                                         f"got {len(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else type(raw).__name__}")
        self._write(0, bytes(raw))

    def snapshot(self) -> bytes:
        """The machine's whole register context as a self-checking image."""
        with self._hv._lock:
            where = self._where()
            if isinstance(where, Pcpu):
                assert self._slot is not None
                return where.export(self._slot.info().generation)
            return where.export()

    def restore(self, image: bytes) -> None:
        """Replaces the context with an image (validated whole first: a bad image changes nothing)."""
        with self._hv._lock:
            where = self._where()
            if isinstance(where, Slot):
                where.import_(image)
                return
            # running: check the image against a scratch slot, then write the register file
            scratch = self._hv._scratch_slot()
            try:
                scratch.import_(image)
                where.write(0, scratch.read(0, self.layout.size))
            finally:
                scratch.free()

    def __repr__(self) -> str:
        where = f"pcpu{self.pcpu}" if self.pcpu is not None else "saved"
        return f"<Machine {self.name} id={self._id} {where}>"


class Hypervisor:
    """A platform brought up: its kernel, the controller's report, the host and VMs.

    Thread-safe: switches on different PCPUs run in parallel; callers on one
    PCPU are serialised.
    """

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.layout = platform.layout
        self._lock = threading.RLock()
        self._machines: dict[int, Machine] = {}
        self._next_id = HOST_ID
        self._closed = False
        self._parked: tuple[dict[int, bytes], dict[int, int]] | None = None
        self._parked_why = ""
        self._drop_handles()
        self.kernel = Kernel()
        platform.populate(self.kernel)
        self.controller = Controller(self.kernel, platform)
        self.controller.enable()
        if not self._bring_up():
            raise VswError(errno.ENODEV, f"platform {platform.name}: {self._parked_why}")
        assert self._path is not None
        self.host = self._new_machine("host")
        assert self.host._slot is not None
        self._pcpus[0].switch(self._path, 0, self.host._slot)
        self._unsubscribe = self.kernel.notifier_register(self._on_driver_event)

    # --- the hardware the bound drivers expose ------------------------------------
    def _drop_handles(self) -> None:
        """Forgets every C handle (the fast path then finds none and takes the slow path)."""
        self._pcpus: list[Pcpu] = []
        self._pcpu_h: list[Any] = []
        self._pools: list[StatsPool] = []
        self._memory: Path | None = None
        self._path: Path | None = None

    def _bring_up(self) -> bool:
        """Takes the PCPUs, the prior art's MEM path and, when the controller holds
        a mover channel, the fast path from the bound drivers; False (and why)
        when a part the switch needs has no driver."""
        k = self.kernel
        try:
            pcpus = [k.device(s.name) for s in self.platform.of_kind("pcpu")]
            mem, membus = (k.device(self.platform.of_kind(kind)[0].name) for kind in ("mem", "memory-bus"))
        except VswError as exc:
            self._parked_why = str(exc)
            return False
        for d in pcpus + [mem, membus]:
            if d.driver is None:
                why = k.deferred.get(d) or k.probe_errors.get(d.name) or "unbound"
                self._parked_why = f"{d.name} has no driver ({why})"
                return False
        self._pcpus = [d.driver_data for d in pcpus]
        self._pcpu_h = [p.handle for p in self._pcpus]
        self._pools = [StatsPool(h) for h in self._pcpu_h]
        self._memory = Path.memory(mem.driver_data, membus.driver_data)
        self._path = self._memory
        chan = self.controller.acquire_channel()
        if chan is not None:
            self._path = chan.context
            self._path.set_baseline(membus.driver_data)
        return True

    @property
    def path(self) -> str:
        """"store" while the fast path is in use, "memory" on the prior-art path,
        "none" while a part every switch needs (a PCPU, MEM, the memory bus) has no driver."""
        return self._path.name if self._path else "none"

    def report(self) -> ControllerReport:
        return self.controller.report()

    # --- following the drivers: park the contexts, come back on what is bound ----
    def _in_use(self, dev: Any) -> bool:
        spec = next((s for s in self.platform.devices if s.name == dev.name), None)
        if spec is None:
            return False
        return not spec.invention or self.path == "store"

    def _on_driver_event(self, event: str, dev: Any) -> None:
        """A bus notifier.  Before a device the switch uses unbinds (its hardware
        is still there), every context is saved out of it; once the unbind is
        done, or a device binds, the switch comes back on the best path bound."""
        if self._closed:
            return
        with self._lock:
            if event == "unbind_driver" and self._in_use(dev):
                self._park(f"{dev.name} unbound")
            elif event in ("unbound_driver", "bound_driver"):
                if event == "bound_driver" and self._parked is None and self.path == "memory":
                    if self.controller.acquire_channel() is not None:
                        self._park("moving to the fast path")
                if self._parked is not None:
                    self._unpark()

    def _park(self, why: str) -> None:
        """Every context out of the hardware into images; all handles dropped."""
        if self._parked is not None:
            return
        assert self._path is not None
        running = {i: p.owner for i, p in enumerate(self._pcpus) if p.owner}
        for i, owner in running.items():
            self._pcpus[i].switch(self._path, owner, None)
        images = {mid: m._slot.export() for mid, m in self._machines.items() if m._slot}
        for m in self._machines.values():
            if m._slot is not None:
                m._slot.free()
            m._unplace()
        if self.path == "store":
            self.controller.release()
        self._parked, self._parked_why = (images, running), why
        self._drop_handles()

    def _unpark(self) -> None:
        """Back on the best path the bound drivers allow, every context restored."""
        assert self._parked is not None
        if not self._bring_up():
            return
        assert self._path is not None
        images, running = self._parked
        placed: list[Slot] = []
        try:
            for mid, img in images.items():
                slot = self._path.store.alloc(mid)
                placed.append(slot)
                slot.import_(img)
        except VswError as exc:     # e.g. the store is too small: stay parked, say why
            for slot in placed:
                slot.free()
            self.controller.release()
            self._parked_why = f"contexts do not fit the {self._path.name} path: {exc}"
            self._drop_handles()
            self.kernel.printk("error", self._parked_why)
            return
        for slot in placed:
            self._machines[slot.owner]._place(slot, self._path)
        for i, owner in running.items():
            self._pcpus[min(i, len(self._pcpus) - 1)].switch(self._path, 0, self._machines[owner]._slot)
        self._parked = None
        self.kernel.printk("info", f"switching over the {self.path} path ({len(images)} contexts)")

    # --- machines -----------------------------------------------------------
    def _new_machine(self, name: str) -> Machine:
        if any(m.name == name for m in self._machines.values()):
            raise VswError(errno.EEXIST, f"a machine named {name!r} exists already")
        assert self._path is not None
        mid = self._next_id
        slot = self._path.store.alloc(mid)
        self._next_id += 1
        m = Machine(self, name, mid)
        m._place(slot, self._path)
        self._machines[mid] = m
        return m

    def create_vm(self, name: str, layout: "str | Layout | None" = None) -> Machine:
        """A new VM in the layout's reset state, saved (not running)."""
        if not isinstance(name, str) or not name:
            raise VswError(errno.EINVAL, f"a VM needs a non-empty name, got {name!r}")
        if layout is not None and Layout.get(layout) is not self.layout:
            raise VswError(errno.EINVAL, f"this platform's PCPUs run {self.layout.name} contexts, "
                                         f"not {Layout.get(layout).name}")
        with self._lock:
            self._check_open()
            return self._new_machine(name)

    def destroy_vm(self, vm: Machine) -> None:
        with self._lock:
            self._check_alive(vm)
            if vm.is_host:
                raise VswError(errno.EPERM, "the host cannot be destroyed")
            if vm.pcpu is not None:
                raise VswError(errno.EBUSY, f"{vm.name} is running on pcpu{vm.pcpu}; switch away first")
            assert vm._slot is not None
            vm._slot.free()
            vm._unplace()
            vm.destroyed = True
            del self._machines[vm._id]

    @property
    def machines(self) -> list[Machine]:
        return list(self._machines.values())

    @property
    def vms(self) -> list[Machine]:
        return [m for m in self._machines.values() if not m.is_host]

    def machine(self, name: str) -> Machine:
        for m in self._machines.values():
            if m.name == name:
                return m
        raise VswError(errno.ENOENT, f"no machine named {name!r}")

    def running(self, pcpu: int = 0) -> Machine | None:
        """The machine on a PCPU, or None."""
        owner = self._pcpu(pcpu).owner
        return self._machines.get(owner)

    def _running_on(self, m: Machine) -> int | None:
        for i, p in enumerate(self._pcpus):
            if p.owner == m._id:
                return i
        return None

    def pcpu(self, index: int = 0) -> Pcpu:
        """The PCPU model behind ``index`` (on a KVM platform, a ``KvmPcpu`` with its ``vcpu``)."""
        return self._pcpu(index)

    def _pcpu(self, i: int) -> Pcpu:
        self._check_open()
        if not isinstance(i, int) or not 0 <= i < len(self._pcpus):
            raise VswError(errno.EINVAL, f"pcpu must be 0..{len(self._pcpus) - 1}, got {i!r}")
        return self._pcpus[i]

    def _check_open(self) -> None:
        if self._closed:
            raise VswError(errno.EBADF, "this hypervisor is closed")
        if self._parked is not None:
            raise VswError(errno.ENODEV, f"no switch path: {self._parked_why}")

    def _check_alive(self, m: Machine) -> None:
        self._check_open()
        if not isinstance(m, Machine) or m._hv is not self:
            raise VswError(errno.EINVAL, f"{m!r} is not a machine of this hypervisor")
        if m.destroyed:
            raise VswError(errno.ENOENT, f"{m.name} was destroyed")

    def _scratch_slot(self) -> Slot:
        assert self._memory is not None
        return Store(self.layout, self._memory.store.slot_bytes).alloc(1 << 63)

    # --- the switch -----------------------------------------------------------
    def switch_context(self, frm: Machine | None, to: Machine | None, pcpu: int = 0) -> SwitchStats:
        """Saves ``frm`` (running on ``pcpu``) and loads ``to``; all or nothing.

        One C call over the fast path when the invention's devices are bound,
        over the prior-art memory path otherwise (``SwitchStats.path`` says which).
        ``frm`` None starts ``to`` on an idle PCPU; ``to`` None leaves it idle.
        """
        try:
            pool = self._pools[pcpu]
            stats = pool.spare                  # StatsPool.take(), inlined: this is the hot path
            if _refcount(stats) > pool.free:
                stats = SwitchStats(pool.pcpu)
            pool.spare = pool.last
            pool.last = stats
            r = _switch_desc(stats._d, frm._c, to._c)  # type: ignore[union-attr]  # None: the slow path
        except (TypeError, AttributeError, IndexError, ValueError):
            return self._switch_slow(None, frm, to, pcpu)     # None, bad arguments, or dropped handles
        if r < 0:
            return self._switch_slow(r, frm, to, pcpu)
        return stats

    def _switch_slow(self, r: int | None, frm: Machine | None, to: Machine | None, pcpu: int) -> SwitchStats:
        """Retries what a migration or another thread got in the way of (no handles,
        EAGAIN); starts or stops a PCPU (None); says why anything else failed -
        then nothing changed."""
        with self._lock:
            for m in (frm, to):
                if m is not None:
                    self._check_alive(m)
            if frm is None and to is None:
                raise VswError(errno.EINVAL, "switch_context needs a machine to save or to load")
            self._pcpu(pcpu)
            stats = self._pools[pcpu].take()
            while r is None or r == -errno.EAGAIN:
                try:
                    r = _switch_desc(stats._d, frm._c if frm else ffi.NULL, to._c if to else ffi.NULL)
                except (TypeError, ValueError):
                    raise VswError(errno.EINVAL, f"switch {_name(frm)} -> {_name(to)}: no context handle") from None
        if r < 0:
            what = f"switch {_name(frm)} -> {_name(to)}"
            if r == -errno.ESRCH:
                if frm is None:
                    raise VswError(errno.ESRCH, f"{what} refused, nothing changed: pcpu{pcpu} is not idle "
                                                f"(it runs {_name(self.running(pcpu))})")
                on = frm.pcpu
                raise VswError(errno.ESRCH, f"{what} refused, nothing changed: {frm.name} is not running on "
                                            f"pcpu{pcpu}" + (f" (it runs on pcpu{on})" if on is not None else
                                                             " (it is saved)"))
            if r == -errno.EBUSY and to is not None:
                raise VswError(errno.EBUSY, f"{what} refused, nothing changed: {to.name} is running on "
                                            f"pcpu{to.pcpu}")
            if r == -errno.EALREADY and to is not None:
                raise VswError(errno.EALREADY, f"{what}: {to.name} is already running")
            raise_switch_error(r, frm._id if frm else 0, to._slot if to else None, self._path)  # type: ignore[arg-type]
        return stats

    def run(self, steps: int, pcpu: int = 0) -> None:
        """Runs the deterministic workload on whatever machine runs on ``pcpu``."""
        self._check_open()
        self._pcpu(pcpu).run(steps)

    # --- teardown -----------------------------------------------------------------
    def close(self) -> None:
        """Removes every device (drivers unbind, hardware models close)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for m in self._machines.values():
                m._unplace()
            self._drop_handles()
        # outside our lock: the kernel calls back into us under its own
        self._unsubscribe()
        self.controller.release()
        for dev in reversed(self.kernel.devices):
            if dev.parent is None:
                self.kernel.device_del(dev)

    def __enter__(self) -> "Hypervisor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Machine]:
        return iter(self.machines)


def _name(m: Machine | None) -> str:
    return m.name if m is not None else "idle"


def open(platform: "str | os.PathLike[str] | Platform | None" = None) -> Hypervisor:  # noqa: A001
    """Brings a platform up: None is the built-in reference platform; or a
    built-in name, a TOML file, or TOML text."""
    return Hypervisor(platform if isinstance(platform, Platform) else Platform.load(platform))


def switch_context(frm: Machine, to: Machine) -> SwitchStats:
    """Switches the PCPU that runs ``frm`` over to ``to``."""
    if not isinstance(frm, Machine):
        raise VswError(errno.EINVAL, f"switch_context takes machines, not {type(frm).__name__}")
    pcpu = frm.pcpu
    if pcpu is None:
        raise VswError(errno.ESRCH, f"{frm.name} is not running on any PCPU")
    return frm.hypervisor.switch_context(frm, to, pcpu)

