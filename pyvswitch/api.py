"""The hypervisor-facing API: ``open()`` a platform, create VMs, and
``switch_context(frm, to)`` between them.

The driver stack sets the switch path up; the switch itself never walks it:
each ``switch_context`` is one C call on handles the bound drivers expose.
When the mover, the context store or the storage bus goes away (its driver
unbinds, its module unloads), every context moves to MEM and switching goes
on over the prior-art memory path - and says so in ``SwitchStats.path``;
when they come back, the contexts move back to the store (``migration.py``).

``Hypervisor`` is a facade: the hardware the bound drivers expose (PCPUs and
their switcher, paths, cache, epoch) is a ``BoundHardware`` (``bound.py``), the machines a
``MachineTable``, and when either changes is the ``Migration``'s decision.

Threads: every call is safe while other threads switch, run, read registers
or unbind and bind devices.  A switch or run is one C call that needs no
Python lock; a migration freezes the PCPUs in C and holds the hypervisor's
lock, and whatever it refused waits at the gate and then goes on over the
new path (``migration.py`` states the rules).

Failure contract - every public call either does all of what it says or
changes nothing, and says why with a ``VswError`` carrying the errno:

* ``switch_context`` (method and module function), ``Machine.restore``,
  ``set_state``, register writes, ``create_vm``, ``destroy_vm``,
  ``cache.pin``/``unpin``/``plan``: all or nothing.  A migration in the way is
  waited out at the gate, never reported (no ESRCH, EAGAIN or "idle" because
  one was running); after ``close()`` every call is EBADF, and ENODEV while the
  contexts are parked (a PCPU, MEM or the memory bus without a driver).
* ``run`` and ``run_schedule`` change state step by step, so they report what
  they did: ``run`` runs all its steps or none; ``run_schedule`` returns its
  (partial) ``ScheduleStats`` with ``why``/``errno`` when a refused switch,
  ``close()`` or parked contexts end it after it changed anything, and raises
  only when nothing of it happened.
* ``bind``/``unbind``: the device is (un)bound as the kernel decides; a move
  between paths that fails is undone whole - the contexts stay on (or return
  to) the memory path, every PCPU running what it ran - and ``bind`` warns
  (``FallbackWarning``) naming why.
* ``close``: calls in flight finish or end with EBADF; nothing a call can
  reach is freed before they have left.
"""
from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .bound import BoundHardware
from .controller import Controller, ControllerReport
from .errors import UnknownName, bytes_of, check, check_uint
from .hw import (
    Layout,
    Pcpu,
    RegisterView,
    Slot,
    SwitchStats,
    VswError,
    ffi,
    lib,
)
from .hw.cache import hit_rate, where
from .hw.pcpu import check_count, raise_switch_error
from .hw.stats import ContextHandle, SwitchMethod, SwitchRunning, Switcher
from .hw.store import IMAGE_ERRORS, describe_image_error
from .kernel import Kernel
from .migration import RETRY, FallbackWarning, Migration, MigrationStats
from .platform import KINDS, Platform, boot
from .store_cache import StoreCache

HOST_ID = 1
_RETRY = RETRY          # a migration (or another thread) got in the way: migration.py's one retry rule


@dataclass(frozen=True)
class PcpuStatus:
    """One PCPU as ``Hypervisor.pcpus`` lists it."""

    index: int
    running: "Machine | None"
    switches: int
    now_ns: float                   # its model time
    dirty_mask: int                 # groups written since the running machine was loaded


@dataclass
class ScheduleStats:
    """What ``Hypervisor.run_schedule`` did: totals over its switches (model ns)."""

    switches: int = 0
    steps: int = 0
    save_bursts: int = 0
    load_bursts: int = 0
    bytes_saved: int = 0
    bytes_loaded: int = 0
    data_ns: float = 0.0
    modeled_ns: float = 0.0
    baseline_ns: float = 0.0
    min_modeled_ns: float = 0.0
    max_modeled_ns: float = 0.0
    hits: int = 0                       # loads whose context was in the store
    misses: int = 0                     # loads that fetched it from MEM
    writebacks: int = 0
    bytes_fetched: int = 0
    bytes_written_back: int = 0
    cache_ns: float = 0.0               # write-back + fetch, part of data_ns
    running: "Machine | None" = None    # on the PCPU at the end
    stopped: bool = False               # ended before all switches ran (its StopFlag, or ``why``)
    why: str = ""                       # why it ended early ("" when every switch ran): "stopped" by its
    #                                     StopFlag, or the error that ended it after it had changed things
    errno: int = 0                      # that error's errno (0: none)

    @property
    def changed(self) -> bool:
        """Whether it switched or ran anything."""
        return bool(self.switches or self.steps)

    @property
    def hit_rate(self) -> float:
        """Hits over loads (0 without a caching store)."""
        return hit_rate(self.hits, self.misses)

    def _add(self, c: Any) -> None:
        ps = 1000.0
        self.switches += c.switches
        self.steps += c.steps
        self.save_bursts += c.save_units
        self.load_bursts += c.load_units
        self.bytes_saved += c.bytes_saved
        self.bytes_loaded += c.bytes_loaded
        self.data_ns += c.data_ps / ps
        self.modeled_ns += c.modeled_ps / ps
        self.baseline_ns += c.baseline_ps / ps
        self.hits += c.hits
        self.misses += c.misses
        self.writebacks += c.writebacks
        self.bytes_fetched += c.bytes_fetched
        self.bytes_written_back += c.bytes_written_back
        self.cache_ns += c.cache_ps / ps
        if c.switches:
            lo, hi = c.min_modeled_ps / ps, c.max_modeled_ps / ps
            self.min_modeled_ns = min(self.min_modeled_ns, lo) if self.min_modeled_ns else lo
            self.max_modeled_ns = max(self.max_modeled_ns, hi)


class StopFlag:
    """Ends a ``run_schedule`` early from another thread: ``set()`` is seen by the C
    loop before its next switch."""

    def __init__(self) -> None:
        self._c = ffi.new("int *")

    def set(self) -> None:
        self._c[0] = 1

    def is_set(self) -> bool:
        return bool(self._c[0])


ORDERS = {"round-robin": lib.VSW_ORDER_ROUND_ROBIN, "random": lib.VSW_ORDER_RANDOM}


class Machine(ContextHandle):
    """The host or a VM: a register context that runs on a PCPU or rests in a slot.

    Its base (``hw.stats.ContextHandle``) holds what the switch takes from it: the C
    context handle (``_c``) and the PCPU it was last loaded onto (``_hint``)."""

    __slots__ = ("_hv", "name", "_id", "_mslot", "destroyed")

    def __init__(self, hv: "Hypervisor", name: str, mid: int) -> None:
        self._hv = hv
        self.name = name
        self._id = mid
        self._mslot: Slot | None = None   # its slot in MEM on the memory path (the store's cache places it itself)
        self._c = None              # the C context handle the switch passes
        self.destroyed = False
        self._hint = None           # the PCPU it was last loaded onto: where to look first

    @property
    def _c(self) -> Any:
        """The C context handle (None: not placed); setting it binds it for the hypervisor's switcher."""
        return self._handle

    @_c.setter
    def _c(self, c: Any) -> None:
        self._hv._switcher.bind(self, c)

    def _unplace(self) -> None:
        # never freed here: a thread may be passing the handle to C right now;
        # it goes with its last reference, and C refuses it as stale meanwhile
        self._mslot, self._c = None, None

    @property
    def _slot(self) -> Slot | None:
        """The slot of the current path's store holding the context now (None while it is only at home)."""
        if self._mslot is not None or self._c is None:
            return self._mslot
        w = where(self._c)
        return self._hv._hw.slot_of(w.slot, self._id) if w.slot is not None else None

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
        runs and its saved context otherwise - never another machine's."""
        return RegisterView(self.layout, self._read, self._write)

    def _access(self, on_pcpu: Callable[[Pcpu], int], on_saved: Callable[[Any], int], what: str,
                explain: dict[int, str] | None = None) -> int:
        """Runs ``on_pcpu`` while the machine runs or ``on_saved`` (on its context
        handle, wherever the context is: a slot of the store or its home) while it is saved,
        each a C call that refuses (ESRCH, EBUSY) when it moved meanwhile: then
        it is asked again (the one retry rule, ``migration.py``), so the access
        reaches this machine and no other."""
        hv = self._hv

        def attempt() -> int:
            with hv._lock:
                hv._wait_gate()
                hv._check_alive(self)
                i = hv._running_on(self)
                if i is not None:
                    r = on_pcpu(hv._hw.pcpus[i])
                    return -errno.EAGAIN if r == -errno.ESRCH else r     # it was switched out: again
                r = on_saved(self._c)
                return -errno.EAGAIN if r == -errno.EBUSY else r         # it was switched in: again
        return check(hv.migration.retry(attempt), f"{what} of {self.name}", explain or {})

    def _read(self, offset: int, size: int) -> bytes:
        buf = ffi.new("char[]", size)
        self._access(lambda p: lib.vsw_pcpu_read(p.handle, self._id, offset, buf, size),
                     lambda c: lib.vsw_ctx_read(c, offset, buf, size),
                     "register read", {errno.EINVAL: f"bytes {offset}+{size} are outside the "
                                                     f"{self.layout.size}-byte register file"})
        return ffi.buffer(buf)[:]

    def _write(self, offset: int, data: bytes) -> None:
        self._access(lambda p: lib.vsw_pcpu_write(p.handle, self._id, offset, data, len(data)),
                     lambda c: lib.vsw_ctx_write(c, offset, data, len(data)),
                     "register write", {errno.EINVAL: f"bytes {offset}+{len(data)} are outside the "
                                                      f"{self.layout.size}-byte register file"})

    def state(self) -> bytes:
        """The whole register file of the machine (``layout.size`` bytes), running or
        saved - what ``set_state`` takes and ``pyvswitch.replay`` gives."""
        return self._read(0, self.layout.size)

    def compare(self, other: "Machine | bytes | bytearray | memoryview") -> list[str]:
        """The names of the groups whose registers differ from ``other`` (a machine or
        a register file, e.g. ``pyvswitch.replay(n)``); empty when they are the same."""
        mine = self.state()
        theirs = other.state() if isinstance(other, Machine) else \
            bytes_of(other, f"compare takes a machine or a {self.layout.size}-byte register file: it")
        if len(theirs) != len(mine):
            raise VswError(errno.EINVAL, f"compare takes a machine or a {self.layout.size}-byte register file, "
                                         f"got {len(theirs)} bytes")
        return [g.name for g in self.layout.groups
                if mine[g.offset:g.offset + g.size] != theirs[g.offset:g.offset + g.size]]

    def set_state(self, raw: "bytes | bytearray | memoryview") -> None:
        """Replaces the whole register file of the machine (``layout.size`` bytes), running or saved."""
        data = bytes_of(raw, "a register file")
        if len(data) != self.layout.size:
            raise VswError(errno.EINVAL, f"a {self.layout.name} register file is {self.layout.size} bytes, "
                                         f"got {len(data)}")
        self._write(0, data)

    def snapshot(self) -> bytes:
        """The machine's whole register context as a self-checking image."""
        buf = bytearray(self.layout.image_size)
        cbuf = ffi.from_buffer(buf)

        def on_pcpu(p: Pcpu) -> int:
            return lib.vsw_pcpu_export(p.handle, self._id, where(self._c).generation, cbuf, len(buf))

        n = self._access(on_pcpu, lambda c: lib.vsw_ctx_export(c, cbuf, len(buf)), "snapshot")
        return bytes(buf[:n])

    def restore(self, image: "bytes | bytearray | memoryview") -> None:
        """Replaces the context with an image (validated whole first: a bad image changes nothing).

        Any machine's image restores into any machine of the same layout - cloning a
        context is a feature; the image header's owner and generation say where it came
        from and are not checked against this machine."""
        data = bytes_of(image, "an image")
        info = ffi.new("struct vsw_image_info *")
        # validated (and decoded, groups it lacks reset) in a scratch slot first
        scratch = self._hv._hw.scratch_slot(self.layout)
        try:
            r = lib.vsw_store_import(scratch.store.handle, scratch.index, scratch.owner, data, len(data), info)
            if r < 0 and -r in IMAGE_ERRORS:
                raise VswError(-r, "image import: " + describe_image_error(-r, info, self.layout, len(data)))
            check(r, "image import")
            regs = scratch.read(0, self.layout.size)
        finally:
            scratch.free()
        self._access(lambda p: lib.vsw_pcpu_write(p.handle, self._id, 0, regs, len(regs)),
                     lambda c: lib.vsw_ctx_import(c, data, len(data), info),
                     "restore")

    def __repr__(self) -> str:
        where = f"pcpu{self.pcpu}" if self.pcpu is not None else "saved"
        return f"<Machine {self.name} id={self._id} {where}>"


class MachineTable:
    """The machines of one hypervisor by id and by name, and which of them the store's
    cache keeps pinned (across moves between paths).  The hypervisor, its migration
    and its cache view reach a machine's context only through these methods, under
    the hypervisor's lock."""

    def __init__(self, hv: "Hypervisor", hw: BoundHardware) -> None:
        self._hv = hv
        self._hw = hw
        self._by_id: dict[int, Machine] = {}
        self._by_name: dict[str, Machine] = {}
        self.pinned = {HOST_ID}                 # ids of the machines the store's cache keeps (the host)
        self._next_id = HOST_ID

    def __iter__(self) -> Iterator[Machine]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __getitem__(self, mid: int) -> Machine:
        return self._by_id[mid]

    def get(self, mid: int) -> Machine | None:
        """The machine with id ``mid`` (None: none, e.g. 0 for an idle PCPU)."""
        return self._by_id.get(mid)

    def named(self, name: object) -> Machine:
        m = self._by_name.get(name) if isinstance(name, str) else None
        if m is None:
            raise VswError(errno.ENOENT, f"no machine named {name!r}")
        return m

    def check(self, m: object) -> None:
        """EINVAL unless ``m`` is a machine of this hypervisor (one its table holds: not
        a ``Machine`` made by hand), ENOENT once destroyed."""
        if not isinstance(m, Machine) or m._hv is not self._hv:
            raise VswError(errno.EINVAL, f"{m!r} is not a machine of this hypervisor")
        if m.destroyed:
            raise VswError(errno.ENOENT, f"{m.name} was destroyed")
        if self._by_id.get(m._id) is not m:
            raise VswError(errno.EINVAL, f"{m!r} is not a machine of this hypervisor (made by hand, not by create_vm)")

    @staticmethod
    def handle(m: Machine) -> Any:
        """The C context handle of ``m`` (None while it has none: parked, closed)."""
        return m._c

    def add(self, name: str) -> Machine:
        """A new machine, its context placed on the current path."""
        if name in self._by_name:
            raise VswError(errno.EEXIST, f"a machine named {name!r} exists already")
        m = Machine(self._hv, name, self._next_id)
        self.place(m)
        self._next_id += 1
        self._by_id[m._id] = self._by_name[name] = m
        return m

    def remove(self, m: Machine) -> None:
        """``m`` is destroyed (its context released first)."""
        self.pinned.discard(m._id)
        m.destroyed = True
        del self._by_id[m._id], self._by_name[m.name]

    def place(self, m: Machine) -> None:
        """A context for ``m`` in its reset state on the current path (``BoundHardware.new_context``)."""
        m._mslot, m._c = self._hw.new_context(m._id, m._id in self.pinned)

    def release(self, m: Machine) -> None:
        """Frees ``m``'s context (its slot, or its cache entry and home in MEM); its
        handle is retired or stale from here."""
        self._hw.release(m._mslot, m._c, m.name)
        m._unplace()

    def unplace_all(self) -> None:
        """Every machine forgets its context handle (close: the hardware goes)."""
        for m in self._by_id.values():
            m._unplace()

    def keep_pinned(self, m: Machine, pinned: bool) -> None:
        """``m`` is pinned (or not) from now on, across moves between paths."""
        (self.pinned.add if pinned else self.pinned.discard)(m._id)


class Hypervisor:
    """A platform brought up: its kernel, the controller's report, the host and VMs.

    Thread-safe: switches on different PCPUs run in parallel; callers on one
    PCPU are serialised; unbinding or binding any device meanwhile migrates
    every context without losing any (``migration.py``).
    """

    def __init__(self, platform: Platform, strict: bool = False) -> None:
        if not isinstance(platform, Platform):
            raise VswError(errno.EINVAL, f"a Hypervisor is built from a Platform, not {type(platform).__name__}; "
                                         "pyvswitch.open() takes a name, a path or TOML text")
        self.platform = platform
        self.layout = platform.layout
        self.npcpus = len(platform.of_kind("pcpu"))
        self.kernel = Kernel()
        # the hardware the bound drivers expose; each Switcher it makes (a bring-up's
        # PCPUs, or none) becomes self._switcher, where switch_context finds it
        self._hw = BoundHardware(platform, self.kernel, self._use_switcher)
        self._machines = MachineTable(self, self._hw)
        self.migration = Migration(self, self._hw, self._machines)  # the gate, park and unpark
        self._lock = self.migration.lock
        self._unsubscribe: Callable[[], None] = lambda: None
        try:
            boot(platform, self.kernel)
            self.controller = Controller(self.kernel, platform)
            self.controller.enable()
            with self._lock:
                self.migration.begin()
                try:
                    ok, why = self._hw.bring_up(self.controller, self.migration.freeze)   # PCPUs come frozen
                    if not ok:
                        raise VswError(errno.ENODEV, f"platform {platform.name}: {why}")
                    self._check_fallback(strict)
                    self.host = self._machines.add("host")
                    self._hw.pcpus[0].switch_ctx(None, self.host._c)
                finally:
                    self.migration.end()            # thawed with the epoch
        except BaseException:
            self._teardown()
            raise
        self._unsubscribe = self.kernel.notifier_register(self.migration.on_driver_event)

    # --- the paths and the drivers ---------------------------------------------------
    def _check_fallback(self, strict: bool) -> None:
        """A platform that declares the fast path but came up on the memory path says
        so: FallbackWarning, or (strict) ENODEV - naming each device and why."""
        report = self.controller.report()
        if self.path == "store" or not report.declared:
            return
        msg = (f"platform {self.platform.name} declares the invention's devices but switches over the memory "
               f"path: {'; '.join(report.problems)}")
        if strict:
            raise VswError(errno.ENODEV, msg)
        warnings.warn(msg, FallbackWarning, stacklevel=4)

    def unbind(self, kind: str) -> list[str]:
        """Unbinds the driver of every bound device of ``kind`` (e.g. "mover"), as
        writing its name to the driver's sysfs ``unbind`` does; switching then
        falls back or waits exactly as it does for a hot-unplug.  Returns the
        devices unbound."""
        done = []
        try:
            with self.migration.using(parked_ok=True):      # close() waits for it
                for dev in self._devices_of(kind):
                    if dev.driver is not None:
                        self.kernel.unbind(dev)
                        done.append(dev.name)
        finally:
            self._warn_fallbacks()
        return done

    def bind(self, kind: str) -> list[str]:
        """Binds every unbound device of ``kind`` to its matching driver (a probe,
        as the kernel's device_attach); the fast path returns once the
        invention's devices are all bound.  A move back to the fast path that
        cannot place every context leaves the system on the memory path, whole,
        and warns (:class:`FallbackWarning`, naming why).  Returns the devices bound."""
        done = []
        try:
            with self.migration.using(parked_ok=True):      # close() waits for it
                for dev in self._devices_of(kind):
                    if dev.driver is None and self.kernel.probe(dev):
                        done.append(dev.name)
        finally:
            self._warn_fallbacks()
        return done

    def _warn_fallbacks(self) -> None:
        for why in self.migration.take_warnings():
            warnings.warn(f"platform {self.platform.name}: {why}", FallbackWarning, stacklevel=3)

    def _devices_of(self, kind: str) -> list[Any]:
        self._check_closed()
        if not isinstance(kind, str) or kind not in KINDS:
            raise VswError(errno.EINVAL, f"no device kind {kind!r}; kinds are {', '.join(KINDS)}")
        devs = []
        for s in self.platform.of_kind(kind):
            try:
                devs.append(self.kernel.device(s.name))
            except UnknownName:
                pass        # gone with its bus (the storage bus's unbind removes the store): back with it
        return devs

    def fallback_reasons(self) -> list[str]:
        """Why the fast path is not in use: one sentence per invention device that
        did not bind (empty on the fast path)."""
        self._check_closed()
        if self.path == "store":
            return []
        last = self.migration.history[-1] if self.migration.history else None
        return ([last.fallback] if last is not None and last.fallback else []) + self.controller.report().problems

    @property
    def path(self) -> str:
        """"store" while the fast path is in use, "memory" on the prior-art path,
        "none" while a part every switch needs (a PCPU, MEM, the memory bus) has no driver."""
        self._check_closed()
        return self._hw.path_name

    def report(self) -> ControllerReport:
        self._check_closed()
        return self.controller.report()

    @property
    def cache(self) -> StoreCache:
        """The context store as a cache: its statistics, pinning, a plan for Belady,
        fault injection (on the memory path there is no store: ENODEV)."""
        self._check_closed()
        return StoreCache(self, self._hw, self._machines)

    @property
    def migrations(self) -> list[MigrationStats]:
        """Every move of the contexts between paths so far: what moved, from where to where."""
        return list(self.migration.history)

    def _wait_gate(self) -> None:
        """Under the lock: the gate (``migration.py``)."""
        self.migration.wait_gate()

    def using(self) -> "AbstractContextManager[None]":
        """Holds the hypervisor open around work on its hardware that does not go
        through a PCPU's gate (a KVM slice): ``close()`` waits for it to end.
        Raises EBADF once closed (ENODEV while parked).  Calls of this API need
        no such hold."""
        return self.migration.using()

    # --- machines -----------------------------------------------------------
    def create_vm(self, name: str, layout: "str | Layout | None" = None) -> Machine:
        """A new VM in the layout's reset state, saved (not running)."""
        if not isinstance(name, str) or not name:
            raise VswError(errno.EINVAL, f"a VM needs a non-empty name, got {name!r}")
        if layout is not None:
            if not isinstance(layout, (str, Layout)):
                raise VswError(errno.EINVAL, f"layout is a name or a Layout, not {type(layout).__name__}")
            if Layout.get(layout) is not self.layout:
                raise VswError(errno.EINVAL, f"this platform's PCPUs run {self.layout.name} contexts, "
                                             f"not {Layout.get(layout).name}")
        with self._lock:
            self._wait_gate()
            return self._machines.add(name)

    def destroy_vm(self, vm: Machine) -> None:
        """Removes a saved VM and frees its slot (EBUSY while it runs)."""
        with self._lock:
            self._wait_gate()
            self._check_alive(vm)
            if vm.is_host:
                raise VswError(errno.EPERM, "the host cannot be destroyed")
            # take its handle from every PCPU first: no switch can load it from here on
            hw = self._hw
            lib.vsw_ctx_retire(vm._c, hw.handles, len(hw.handles))
            on = self._running_on(vm)
            if on is not None:
                check(lib.vsw_ctx_revive(vm._c, hw.epoch), "revive")      # still in use
                raise VswError(errno.EBUSY, f"{vm.name} is running on pcpu{on}; switch away first")
            self._machines.release(vm)
            for p in hw.pcpus:
                p.forget(vm._id)            # e.g. its region of a KVM vCPU's guest memory
            self._machines.remove(vm)

    @property
    def machines(self) -> list[Machine]:
        self._check_closed()
        return list(self._machines)

    @property
    def vms(self) -> list[Machine]:
        return [m for m in self.machines if not m.is_host]

    def machine(self, name: str) -> Machine:
        self._check_closed()
        return self._machines.named(name)

    def running(self, pcpu: int = 0) -> Machine | None:
        """The machine on a PCPU, or None."""
        self._check_pcpu(pcpu)
        with self._lock:
            self._wait_gate()
            return self._machines.get(self._hw.owner(pcpu))

    @property
    def pcpus(self) -> list["PcpuStatus"]:
        """Every PCPU of the platform: its index, the machine it runs, its switches."""
        self._check_closed()
        with self._lock:
            self._wait_gate()
            out = []
            for i, p in enumerate(self._hw.pcpus):
                st = p.state()
                out.append(PcpuStatus(i, self._machines.get(st.owner), st.switches, st.now_ns, st.dirty_mask))
            return out

    def _running_on(self, m: Machine) -> int | None:
        """The PCPU running ``m``: the one it was last loaded onto when it is still
        there (one C call), else every PCPU asked."""
        return self._hw.running_on(m._id, m._hint)

    def pcpu(self, index: int = 0) -> Pcpu:
        """The PCPU model behind ``index`` (on a KVM platform, a ``KvmPcpu`` with its ``vcpu``)."""
        self._check_pcpu(index)
        with self._lock:
            self._wait_gate()
            return self._hw.pcpus[index]

    def _check_pcpu(self, i: object) -> None:
        """One check of a PCPU index for every entry point (``bool`` is not an index)."""
        self._check_closed()
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < self.npcpus:
            raise VswError(errno.EINVAL, f"pcpu must be an integer 0..{self.npcpus - 1} on platform "
                                         f"{self.platform.name}, got {i!r}")

    def _check_closed(self) -> None:
        self.migration.check_closed()

    def _check_alive(self, m: object) -> None:
        """EBADF once closed, ENODEV while parked; EINVAL/ENOENT for ``m`` (``MachineTable.check``)."""
        self.migration.check_open()
        self._machines.check(m)

    # --- the switch -----------------------------------------------------------
    def _use_switcher(self, switcher: Switcher) -> None:
        """What switch_context switches through from now (BoundHardware's publish)."""
        self._switcher = switcher

    if TYPE_CHECKING:
        def switch_context(self, frm: Machine | None, to: Machine | None, pcpu: int | None = None, *,
                           out: SwitchStats | None = None) -> SwitchStats: ...
    else:
        # one vectorcall into C (hw.stats.SwitchMethod): self._switcher switches; what
        # it does not take (0) or C refuses (-errno) goes to self._switch_slow
        switch_context = SwitchMethod("""Saves ``frm`` (running on ``pcpu``, default 0) and loads ``to``; all or nothing.

        One C call over the fast path when the invention's devices are bound,
        over the prior-art memory path otherwise (``SwitchStats.path`` says which).
        ``frm`` None starts ``to`` on an idle PCPU; ``to`` None leaves it idle.
        Returns a new SwitchStats, or fills and returns ``out`` when given (a
        SwitchStats to reuse: nothing is allocated).
        """)

    def _switch_slow(self, frm: Machine | None, to: Machine | None, pcpu: int | None, r: int,
                     out: SwitchStats | None) -> SwitchStats:
        """After the switcher refused (``r`` -errno) or did not take the arguments
        (``r`` 0): says what is wrong with them, waits out a migration or another
        thread (EAGAIN, ESTALE, ENODEV, no handles) and tries again, or says why
        the switch was refused - then nothing changed."""
        pcpu = 0 if pcpu is None else pcpu
        self._check_pcpu(pcpu)
        if frm is None and to is None:
            raise VswError(errno.EINVAL, "switch_context needs a machine to save or to load")
        if out is not None and not isinstance(out, SwitchStats):
            raise VswError(errno.EINVAL, f"out is a SwitchStats to fill, or None, not {type(out).__name__}")
        if r < 0 and r not in _RETRY:
            self._raise_switch_error(r, frm, to, pcpu)     # the switch was tried and refused
        done: list[SwitchStats] = []

        def attempt() -> int:
            with self._lock:
                self._wait_gate()
                for m in (frm, to):
                    if m is not None:
                        self._check_alive(m)
                got = self._switcher.switch(frm, to, pcpu, out)
            if got.__class__ is int:
                if got == 0:                    # checked above: a machine not bound for the switcher is a bug
                    raise RuntimeError(f"switch_context: {frm!r} -> {to!r} not bound for this hypervisor's switcher")
                return got
            done.append(got)
            return 0
        r = self.migration.retry(attempt)
        if r < 0:
            self._raise_switch_error(r, frm, to, pcpu)
        return done[0]

    def _raise_switch_error(self, r: int, frm: Machine | None, to: Machine | None, pcpu: int) -> None:
        raise_switch_error(r, frm.name if frm else None, to.name if to else None, f"pcpu{pcpu}",
                           self._hw.path.name if self._hw.path else "no")

    def run_schedule(self, machines: "list[Machine]", switches: int, steps: int = 0, pcpu: int = 0,
                     order: str = "round-robin", seed: int = 0, stop: StopFlag | None = None) -> ScheduleStats:
        """A whole schedule in one C call, the GIL free throughout: ``steps`` of the
        workload on the machine running on ``pcpu`` (one of ``machines``), a switch to
        the next (``order`` "round-robin" or seeded "random"), ``switches`` times.
        Each switch is as exact and atomic as ``switch_context``; a migration in the
        middle is waited out and the schedule goes on; ``stop.set()`` from another
        thread ends it early.  Returns totals (``ScheduleStats``) - partial ones, with
        ``why`` it ended, when a refused switch, ``close()`` or parked contexts end it
        after it changed something; raises only when nothing of it happened."""
        check_count(switches, "switches")
        check_count(steps, "steps")
        check_uint(seed, "seed", 64)
        self._check_pcpu(pcpu)
        if not isinstance(order, str) or order not in ORDERS:
            raise VswError(errno.EINVAL, f"order is {' or '.join(ORDERS)}, not {order!r}")
        if stop is not None and not isinstance(stop, StopFlag):
            raise VswError(errno.EINVAL, f"stop is a pyvswitch.StopFlag or None, not {type(stop).__name__}")
        ms = list(machines) if isinstance(machines, (list, tuple)) else None
        if ms is None or len(ms) < 2 or len({id(m) for m in ms}) != len(ms):
            raise VswError(errno.EINVAL, "run_schedule takes a list of two or more distinct machines")
        plan = ffi.new("struct vsw_schedule *", {"switches": switches, "steps": steps, "order": ORDERS[order],
                                                 "seed": seed})
        flag = stop._c if stop is not None else ffi.NULL
        out = ffi.new("struct vsw_schedule_stats *")
        total = ScheduleStats()

        def attempt() -> int:
            """One C call of the schedule, from where the last one stopped."""
            with self._lock:
                self._wait_gate()
                for m in ms:
                    self._check_alive(m)
                on = self._machines.get(self._hw.owner(pcpu))
                if on not in ms:
                    raise VswError(errno.EINVAL, f"the schedule must include the machine running on "
                                                 f"pcpu{pcpu} ({_name(on)})")
                handles = [m._c for m in ms]            # alive through the call
                ctxs = ffi.new("struct vsw_ctx *[]", handles)
                h = self._hw.handles[pcpu]
            r = lib.vsw_run_schedule(h, ctxs, len(ms), ms.index(on), plan, flag, out)
            total._add(out)
            plan.switches -= out.switches
            plan.steps_done = out.steps_done          # a retried switch does not run its steps twice
            total.running = ms[out.current]
            if r in _RETRY and (not plan.switches or (stop is not None and stop.is_set())):
                return 0                                # nothing left to try again
            return r
        try:
            r = self.migration.retry(attempt)           # the one retry rule between its C calls
            if r < 0:
                raise_switch_error(r, _name(total.running), "the next machine", f"pcpu{pcpu}", self.path)
        except VswError as exc:
            if not total.changed:
                raise                               # nothing of it happened
            total.why, total.errno = str(exc), exc.errno or 0
        if stop is not None and stop.is_set() and plan.switches > 0 and not total.why:
            total.why = "stopped"
        total.stopped = bool(total.why)
        return total

    def run(self, steps: int, pcpu: int = 0) -> None:
        """Runs the deterministic workload on whatever machine runs on ``pcpu``."""
        check_count(steps, "steps")
        self._check_pcpu(pcpu)
        r = self.migration.retry(lambda: lib.vsw_pcpu_run(self._hw.handles[pcpu], steps))
        check(r, f"run on pcpu{pcpu}", {errno.ESRCH: f"pcpu{pcpu} is idle: no machine runs on it"})

    # --- teardown -----------------------------------------------------------------
    def close(self) -> None:
        """Removes every device (drivers unbind, hardware models close).

        Quiesces first, as the last migration: waits for one in flight, freezes every
        PCPU (a call inside finishes) and waits for ``using`` holds to end; calls
        still waiting end with EBADF, and so does every later call.  No memory a
        call could reach is freed before then."""
        if self.migration.close():
            # outside our lock: the kernel calls back into us under its own
            self._teardown()

    def _teardown(self) -> None:
        self.migration.closed = True
        self._unsubscribe()
        controller = getattr(self, "controller", None)
        if controller is not None:
            controller.release()
        for dev in reversed(self.kernel.devices):
            if dev.parent is None:
                self.kernel.device_del(dev)

    def __enter__(self) -> "Hypervisor":
        self._check_closed()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Machine]:
        return iter(self.machines)

    def __repr__(self) -> str:
        if self.migration.closed:
            return f"<Hypervisor {self.platform.name} closed>"
        path = self._hw.path.name if self._hw.path else "no"
        return (f"<Hypervisor {self.platform.name}: {len(self._machines)} machines, {self.npcpus} PCPU"
                f"{'s' if self.npcpus != 1 else ''}, {self.layout.name}, {path} path>")


def _name(m: Machine | None) -> str:
    return m.name if m is not None else "idle"


def open(platform: "str | os.PathLike[str] | Platform | None" = None, strict: bool = False) -> Hypervisor:  # noqa: A001
    """Brings a platform up: None is the built-in reference platform; or a
    built-in name, a TOML file, or TOML text.

    A platform that declares the invention's devices but comes up on the memory
    path warns (:class:`FallbackWarning`) with each device's reason; with
    ``strict=True`` it is refused instead (``VswError`` ENODEV).
    """
    return Hypervisor(platform if isinstance(platform, Platform) else Platform.load(platform), strict=strict)


def _switch_running_slow(frm: Machine, to: Machine | None, r: int, out: SwitchStats | None) -> SwitchStats:
    """The module-level switch after the switcher refused (``r`` -errno) on the PCPU
    ``frm`` was last loaded onto, or did not take the arguments (0)."""
    if r < 0 and r != -errno.ESRCH:             # refused on the PCPU it runs on: the method's error path
        return frm._hv._switch_slow(frm, to, frm._hint, r, out)
    return _switch_where_running(frm, to, out)  # not loaded there (any more), or arguments to check


if TYPE_CHECKING:
    def switch_context(frm: Machine, to: Machine | None, *, out: SwitchStats | None = None) -> SwitchStats: ...
else:
    # one vectorcall into C (hw.stats.SwitchRunning): the switcher frm's handle is bound
    # for switches on frm's last PCPU; anything else goes to _switch_running_slow
    switch_context = SwitchRunning("""Switches the PCPU that runs ``frm`` over to ``to`` (``out``: as ``Hypervisor.switch_context``).

    The same switch as the method's, on the PCPU ``frm`` was last loaded onto -
    the C switch refuses (ESRCH, nothing changed) if it no longer runs there -
    and only then asks every PCPU which one runs it.""", _switch_running_slow)


def _switch_where_running(frm: Machine, to: Machine | None, out: SwitchStats | None) -> SwitchStats:
    """switch_context without the hint: asks every PCPU which one runs ``frm``."""
    if not isinstance(frm, Machine):
        raise VswError(errno.EINVAL, f"switch_context takes machines, not {type(frm).__name__}")
    hv = frm._hv
    while True:
        with hv._lock:
            hv._wait_gate()                     # a migration moves it: asked once it ended
            hv._check_alive(frm)
            pcpu = frm.pcpu
        if pcpu is None:
            raise VswError(errno.ESRCH, f"{frm.name} is not running on any PCPU")
        try:
            return hv.switch_context(frm, to, pcpu, out=out)
        except VswError as exc:
            if exc.errno != errno.ESRCH or frm.pcpu == pcpu:
                raise                           # not that it moved away meanwhile
