"""The driver core: buses, devices and drivers of one kernel instance, with
Linux's semantics (drivers/base).  No global state: build as many as you like.

Not thread-safe by itself; every public method takes the kernel's lock.
"""
from __future__ import annotations

import errno
import functools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from . import dd, links
from .async_probe import AsyncProbe
from .bus import Bus, PlatformBus
from .device import Device
from .dmaengine import DmaEngine
from .driver import Driver
from .errors import KernelError, UnknownName
from .module import Module, ModuleRegistry
from .sysfs import Sysfs
from .uevent import UEvent, UEventBus

log = logging.getLogger("pyvswitch.kernel")
F = TypeVar("F", bound=Callable[..., Any])


def locked(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: "Kernel", *args: Any, **kw: Any) -> Any:
        with self.lock:
            return fn(self, *args, **kw)
    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str


class Kernel:
    """One emulated kernel: a platform bus to start with, modules from the
    ``pyvswitch.drivers`` entry points (plus ``modules``), sysfs and uevents."""

    def __init__(self, modules: Iterable[ModuleType] = (), use_entry_points: bool = True,
                 deferred_probe_timeout: float | None = None) -> None:
        self.lock = threading.RLock()
        self.async_probe = AsyncProbe(self, deferred_probe_timeout)
        self.buses: dict[str, Bus] = {}
        self.deferred: dict[Device, str] = {}
        self.deferred_pending = False
        self.binds = 0                      # successful binds so far: orders each driver's devices
        self._in_deferred = False
        self.probe_errors: dict[str, str] = {}
        self._notifiers: list[Callable[[str, Device], None]] = []
        self.dmesg: list[LogLine] = []
        self._uevents = UEventBus()
        self.sysfs = Sysfs(self)
        self.dma = DmaEngine()
        self.bus_register(PlatformBus())
        self.modules = ModuleRegistry(self, modules, use_entry_points)

    # --- bus notifiers: in-kernel listeners, called synchronously ---------------
    def notifier_register(self, callback: Callable[[str, Device], None]) -> Callable[[], None]:
        """Calls ``callback(event, dev)`` for the bus notifier's events
        (BUS_NOTIFY_*): "add_device", "del_device", "removed_device" (after it
        left: unbound, links purged, devres released), "bind_driver" (before
        probe), "bound_driver", "driver_not_bound" (after a failed probe),
        "unbind_driver" (before remove() and devres run) and "unbound_driver";
        returns the unregister function.  A callback that raises refuses the
        operation whole on "add_device", "del_device" and "unbind_driver", fails
        the probe on "bind_driver", and is logged after the fact (the others)."""
        self._notifiers.append(callback)

        def unregister() -> None:
            if callback in self._notifiers:
                self._notifiers.remove(callback)
        return unregister

    def notify(self, event: str, dev: Device) -> None:
        for cb in list(self._notifiers):
            cb(event, dev)

    # --- logging and uevents -------------------------------------------------
    def printk(self, level: str, message: str) -> None:
        self.dmesg.append(LogLine(level, message))
        getattr(log, level, log.info)(message)

    @property
    def uevents(self) -> list[UEvent]:
        return self._uevents.history

    def subscribe(self, callback: Callable[[UEvent], None]) -> Callable[[], None]:
        """Calls ``callback`` for every later uevent; returns the unsubscribe function."""
        return self._uevents.subscribe(callback)

    def kobject_uevent(self, action: str, devpath: str, subsystem: str, **env: str) -> UEvent:
        """A uevent of a kobject that is not a device (a driver, a module)."""
        return self._uevents.emit(action, devpath, subsystem, **env)

    def uevents_emit(self, action: str, dev: Device, **env: str) -> UEvent:
        """kobject_uevent: the device's variables (dev_uevent, for every action:
        DRIVER from its current driver, then the bus's own) with ``env`` over them."""
        assert dev.bus is not None
        base = {"DRIVER": dev.driver.name} if dev.driver is not None else {}
        base.update(dev.bus.uevent_env(dev))
        return self._uevents.emit(action, dev.devpath, dev.bus.name, **{**base, **env})

    # --- buses --------------------------------------------------------------
    @locked
    def bus_register(self, bus: Bus) -> Bus:
        """Registers a bus type (EEXIST for a name taken)."""
        if bus.name in self.buses:
            raise KernelError(errno.EEXIST, f"bus {bus.name} is already registered")
        self.buses[bus.name] = bus
        return bus

    @locked
    def bus_unregister(self, name: str) -> None:
        """Removes a bus type with its devices.  Drivers still registered on it
        (their modules should have gone first) are unregistered, with a warning."""
        bus = self.bus(name)
        for dev in reversed(list(bus.devices.values())):
            self.device_del(dev)
        for drv in reversed(list(bus.drivers.values())):
            self.printk("warning", f"bus {name} unregistered under driver {drv.name}: unregistering it")
            self.driver_unregister(drv)
        del self.buses[name]

    def bus(self, name: str) -> Bus:
        try:
            return self.buses[name]
        except KeyError:
            raise UnknownName(f"no bus {name!r} (buses: {', '.join(self.buses)})") from None

    # --- devices ------------------------------------------------------------
    @locked
    def device_add(self, dev: Device) -> Device:
        """Registers the device, sends its "add" uevent, then probes it.  EINVAL
        for a device with no name (kobject_add_internal)."""
        if not isinstance(dev, Device):
            raise KernelError(errno.EINVAL, f"device_add takes a Device, not {type(dev).__name__}")
        if not isinstance(dev.name, str) or not dev.name:
            raise KernelError(errno.EINVAL, f"device_add: a device needs a name, got {dev.name!r}")
        if dev.registered:
            raise KernelError(errno.EEXIST, f"device {dev.name} is already registered")
        bus = self.bus(dev.bus_name)
        if dev.name in bus.devices:
            raise KernelError(errno.EEXIST, f"bus {bus.name} already has a device named {dev.name}")
        if dev.parent is not None and not dev.parent.registered:
            raise KernelError(errno.ENODEV, f"parent {dev.parent.name} of {dev.name} is not registered")
        dev.bus, dev.kernel, dev.dead = bus, self, False
        bus.devices[dev.name] = dev
        if dev.parent is not None:
            dev.parent.children.append(dev)
        try:
            self.notify("add_device", dev)
        except BaseException:               # a listener refused it: not added at all
            del bus.devices[dev.name]
            if dev.parent is not None:
                dev.parent.children.remove(dev)
            dev.bus = dev.kernel = None
            raise
        self.uevents_emit("add", dev)
        if bus.drivers_autoprobe:
            dd.device_attach(self, dev, allow_async=True)      # device_initial_probe
        return dev

    @locked
    def device_del(self, dev: Device) -> None:
        """Removes a device as Linux's device_del: marked dead first
        (kill_device: from then on no driver probes it), BUS_NOTIFY_DEL_DEVICE,
        unbinding, off the deferred list, its links purged, its devres released
        (resources taken outside a probe too), BUS_NOTIFY_REMOVED_DEVICE, the
        "remove" uevent.  Its children are not removed with it (whoever added
        them removes them), and no deferred probe is triggered: nothing bound.
        Called from inside the device's probe it waits for the probe to end
        (the device lock), as from another thread in Linux."""
        if not dev.registered or dev.kernel is not self or dev.dead:
            return
        if dev.probing:                 # device_lock: it waits for the probe to end (really_probe carries it out)
            dev.waiting.add("del")
            return
        dev.dead = True
        try:
            self.notify("del_device", dev)
        except BaseException:               # a listener refused it: nothing changed
            dev.dead = False
            raise
        dd.device_release_driver(self, dev)
        self.deferred.pop(dev, None)
        links.purge(dev)
        dev.devres.release_all()
        dd.notify_late(self, "removed_device", dev)     # it is gone whatever a listener says
        self.uevents_emit("remove", dev)
        assert dev.bus is not None
        del dev.bus.devices[dev.name]
        if dev.parent is not None and dev in dev.parent.children:
            dev.parent.children.remove(dev)
        self.deferred.pop(dev, None)
        self.probe_errors.pop(dev.name, None)
        dev.kernel = None

    @locked
    def device(self, name: str, bus: str | None = None) -> Device:
        for b in ([self.bus(bus)] if bus else list(self.buses.values())):
            if name in b.devices:
                return b.devices[name]
        raise UnknownName(f"no device {name!r}" + (f" on bus {bus}" if bus else ""))

    @property
    def devices(self) -> list[Device]:
        """Every registered device (a snapshot, taken under the lock)."""
        with self.lock:
            return [d for b in self.buses.values() for d in b.devices.values()]

    @locked
    def device_link_add(self, consumer: Device, supplier: Device, flags: int = 0) -> None:
        """The consumer probes only once the supplier is bound, and unbinds first
        (links.py: the flags, and what is refused)."""
        links.link_add(consumer, supplier, flags)

    @locked
    def device_link_del(self, consumer: Device, supplier: Device) -> None:
        """device_link_remove / device_link_put_kref: a stateless reference is
        dropped (the link goes with the last); a managed link is the core's
        business while its consumer is registered - not deleted, with a warning."""
        msg = links.link_put(consumer, supplier)
        if msg:
            self.printk("warning", msg)

    # --- drivers ------------------------------------------------------------
    @locked
    def driver_register(self, drv: Driver) -> Driver:
        """driver_register: EINVAL for a bus type that is not registered, EBUSY
        for a name the bus has already; it attaches to the bus's unbound devices,
        then the driver's "add" uevent (SUBSYSTEM=drivers), as driver_register
        sends it after bus_add_driver."""
        if not isinstance(drv, Driver):
            raise KernelError(errno.EINVAL, f"driver_register takes a Driver, not {type(drv).__name__}")
        if not isinstance(drv.name, str) or not drv.name:          # kobject_add_internal
            raise KernelError(errno.EINVAL, f"driver_register: a driver needs a name, got {drv.name!r}")
        if drv.bus not in self.buses:
            raise KernelError(errno.EINVAL, f"driver {drv.name} was not registered because bus {drv.bus!r} is "
                                            f"not registered (buses: {', '.join(self.buses)})")
        bus = self.bus(drv.bus)
        if drv.name in bus.drivers:
            raise KernelError(errno.EBUSY, f"driver '{drv.name}' is already registered on bus {bus.name}, aborting")
        drv.kernel = self
        bus.drivers[drv.name] = drv
        if bus.drivers_autoprobe:                   # bus_add_driver: attached first ...
            dd.driver_attach(self, drv)
        self.kobject_uevent("add", f"/bus/{bus.name}/drivers/{drv.name}", "drivers")     # ... then KOBJ_ADD
        return drv

    @locked
    def driver_unregister(self, drv: Driver) -> None:
        """bus_remove_driver: off the bus first (klist_remove: nothing matches it
        any more, not even a device re-probed while it goes), then every device
        of the driver unbound, then its "remove" uevent."""
        bus = self.buses.get(drv.bus)
        if bus is None or bus.drivers.get(drv.name) is not drv:
            return
        del bus.drivers[drv.name]
        for dev in reversed(drv.devices):            # driver_detach: the last bound first
            dd.device_release_driver(self, dev)     # as in Linux: unbound, not re-probed by itself
        drv.kernel = None
        self.kobject_uevent("remove", f"/bus/{bus.name}/drivers/{drv.name}", "drivers")

    def driver(self, name: str, bus: str = "platform") -> Driver:
        try:
            return self.bus(bus).drivers[name]
        except KeyError:
            raise UnknownName(f"no driver {name!r} on bus {bus}") from None

    # --- binding ------------------------------------------------------------
    @locked
    def bind(self, dev: Device, drv: Driver) -> None:
        """device_driver_attach, as a sysfs bind: dd.device_bind says the errnos."""
        dd.device_bind(self, dev, drv)

    @locked
    def unbind(self, dev: Device) -> None:
        """device_release_driver; from inside the device's probe it waits for the probe to end."""
        if dev.driver is None:
            raise KernelError(errno.ENODEV, f"{dev.name} is not bound to a driver")
        if dev.probing:
            dev.waiting.add("unbind")
            return
        dd.device_release_driver(self, dev)

    @locked
    def probe(self, dev: Device) -> bool:
        """drivers_probe: tries the drivers now; returns whether it bound (a
        deleted device never binds: False)."""
        return dd.device_attach(self, dev)

    def wait_for_device_probe(self, timeout: float | None = None) -> bool:
        """Waits until no asynchronous probe is queued or running (async_probe.py)."""
        return self.async_probe.wait(timeout)

    def deferred_probe_check_state(self, dev: Device) -> int:
        """-EPROBE_DEFER, or -ETIMEDOUT once the deferred-probe timeout passed."""
        return self.async_probe.check_state(dev)

    def trigger_deferred(self) -> None:
        """After a bind: retry the deferred devices (not re-entrantly)."""
        self.deferred_pending = True
        if self._in_deferred:
            return
        self._in_deferred = True
        try:
            dd.deferred_probe(self)
        finally:
            self._in_deferred = False

    # --- modules ------------------------------------------------------------
    @locked
    def modprobe(self, name: str, **params: object) -> list[str]:
        """Loads the registered module of that name, else every one whose alias
        matches it (fnmatch, as kmod); parameters as keywords or in ``name``
        ("vsw_mover max_burst=4096")."""
        return self.modules.modprobe(name, params)

    @locked
    def insmod(self, name: str, **params: object) -> list[str]:
        """Loads the module (its dependencies first); EEXIST when it is loaded already."""
        return self.modules.insmod(name, params)

    @locked
    def rmmod(self, name: str) -> None:
        """Refused with EBUSY while the module is pinned or needed; unbinds its
        devices.  "-" and "_" are the same in the name."""
        self.modules.unload(name)

    def module(self, name: str) -> Module:
        return self.modules.get(name)

    def lsmod(self) -> list[Module]:
        with self.lock:
            return [m for m in self.modules.modules.values() if m.loaded]
