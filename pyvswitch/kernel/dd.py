"""Binding devices to drivers (the kernel's drivers/base/dd.c): probe, the
deferred-probe list, and unbinding."""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from .errors import KernelError, ProbeDefer

if TYPE_CHECKING:
    from .core import Kernel
    from .device import Device
    from .driver import Driver


def really_probe(k: "Kernel", dev: "Device", drv: "Driver") -> str:
    """Calls drv.probe(dev).  Returns "bound", "defer" or "next" (not bound, the
    next driver may try).  Whatever the probe took is released on failure."""
    waiting = [s.name for s in dev.suppliers if s.driver is None]
    if waiting:
        defer(k, dev, f"waiting for supplier {', '.join(waiting)}")
        return "defer"
    dev.driver = drv            # visible to the probe, as dev->driver is
    try:
        drv.probe(dev)
    except ProbeDefer as exc:
        undo_probe(dev)
        defer(k, dev, f"{drv.name}: {exc.reason}")
        return "defer"
    except OSError as exc:
        undo_probe(dev)
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            return "next"       # "not mine": silently
        k.printk("warning", f"{dev.name}: probe with driver {drv.name} failed with error {exc.errno}: {exc}")
        k.probe_errors[dev.name] = f"{drv.name}: {exc}"
        return "next"
    except Exception as exc:    # a driver bug is a failed probe, not a dead kernel
        undo_probe(dev)
        k.printk("error", f"{dev.name}: probe with driver {drv.name} raised {type(exc).__name__}: {exc}")
        k.probe_errors[dev.name] = f"{drv.name}: {type(exc).__name__}: {exc}"
        return "next"
    k.deferred.pop(dev, None)
    k.probe_errors.pop(dev.name, None)
    k.notify("bound_driver", dev)
    k.uevents_emit("bind", dev, DRIVER=drv.name)
    k.trigger_deferred()
    return "bound"


def undo_probe(dev: "Device") -> None:
    dev.devres.release_all()
    dev.driver = None
    dev.driver_data = None


def defer(k: "Kernel", dev: "Device", reason: str) -> None:
    k.deferred[dev] = reason
    k.printk("debug", f"{dev.name}: probe deferred: {reason}")


def device_attach(k: "Kernel", dev: "Device") -> bool:
    """Tries the bus's drivers in registration order until one binds."""
    if dev.driver is not None:
        return True
    assert dev.bus is not None
    for drv in list(dev.bus.drivers.values()):
        if not dev.bus.match(dev, drv):
            continue
        outcome = really_probe(k, dev, drv)
        if outcome == "bound":
            return True
        if outcome == "defer":
            return False
    return False


def driver_attach(k: "Kernel", drv: "Driver") -> None:
    """A newly registered driver tries every unbound device of its bus."""
    bus = k.buses[drv.bus]
    for dev in list(bus.devices.values()):
        if dev.driver is None and dev.registered and bus.match(dev, drv):
            really_probe(k, dev, drv)


def device_bind(k: "Kernel", dev: "Device", drv: "Driver") -> None:
    """Explicit bind (sysfs bind, controller): errors say why it did not bind."""
    if dev.driver is not None:
        raise KernelError(errno.EBUSY, f"{dev.name} is already bound to {dev.driver.name}")
    if dev.bus is None or drv.bus != dev.bus.name or not dev.bus.match(dev, drv):
        raise KernelError(errno.ENODEV, f"driver {drv.name} does not match device {dev.name}")
    outcome = really_probe(k, dev, drv)
    if outcome == "defer":
        raise ProbeDefer(k.deferred.get(dev, "deferred"))
    if outcome != "bound":
        raise KernelError(errno.ENODEV, k.probe_errors.get(dev.name, f"{drv.name} declined {dev.name}"))


def device_release_driver(k: "Kernel", dev: "Device", reason: str | None = None) -> None:
    """Unbinds: consumers first, then remove(), then the devres, newest first.
    With ``reason``, the device waits on the deferred list to bind again."""
    drv = dev.driver
    if drv is None:
        return
    for consumer in list(dev.consumers):
        if consumer.driver is not None:
            device_release_driver(k, consumer, reason=f"supplier {dev.name} unbound")
    k.notify("unbind_driver", dev)      # before anything is released: users can still leave
    try:
        drv.remove(dev)
    except Exception as exc:
        k.printk("error", f"{dev.name}: remove() of {drv.name} raised {type(exc).__name__}: {exc}")
    undo_probe(dev)
    if reason:
        defer(k, dev, reason)
    k.notify("unbound_driver", dev)
    k.uevents_emit("unbind", dev, DRIVER=drv.name)


def deferred_probe(k: "Kernel") -> None:
    """Retries every deferred device, until a pass binds nothing new."""
    while k.deferred_pending:
        k.deferred_pending = False
        for dev in list(k.deferred):
            if dev.registered and dev.driver is None and dev.bus is not None and dev.bus.drivers_autoprobe:
                device_attach(k, dev)
