"""Binding devices to drivers (the kernel's drivers/base/dd.c): probe, the
deferred-probe list, and unbinding."""
from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import links
from .errors import EPROBE_DEFER, KernelError

if TYPE_CHECKING:
    from .core import Kernel
    from .device import Device
    from .driver import Driver


def really_probe(k: "Kernel", dev: "Device", drv: "Driver", queue: bool = True) -> int:
    """__driver_probe_device + really_probe, with Linux's return convention: 0
    bound; -ENODEV for a device being deleted or not registered (never probed);
    -EBUSY when it is bound already or holds resources from outside a probe
    ("Resources present before probing"); -EPROBE_DEFER when a supplier is
    not bound yet (device_links_check_suppliers: no driver can bind now); a
    positive errno when the probe failed - EPROBE_DEFER when it asked to be
    deferred, by that errno from any error path, not only by raising
    ProbeDefer.  A deferral puts the device on the deferred list when
    ``queue`` (driver_deferred_probe_add; a sysfs bind does not queue).
    BUS_NOTIFY_BIND_DRIVER before the probe; after a failed one
    BUS_NOTIFY_DRIVER_NOT_BOUND, then whatever it took is released.  A driver
    unregistered while its probe ran (from inside it) unbinds the device once
    it bound, as driver_detach does once the device lock is free."""
    if dev.dead or dev.kernel is not k:
        return -errno.ENODEV
    if dev.driver is not None:
        return -errno.EBUSY
    waiting = links.check_suppliers(dev)
    if waiting:
        if queue:
            defer(k, dev, f"waiting for supplier {', '.join(waiting)}")
        return -EPROBE_DEFER
    if len(dev.devres):
        k.printk("critical", f"{dev.name}: Resources present before probing ({', '.join(dev.devres.names())})")
        links.no_driver(dev)
        return -errno.EBUSY
    dev.driver = drv            # visible to the probe, as dev->driver is
    dev.probing = True
    try:
        k.notify("bind_driver", dev)
        drv.probe(dev)
    except Exception as exc:    # a driver bug is a failed probe, not a dead kernel
        dev.probing = False
        code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EINVAL
        if code == EPROBE_DEFER:
            if queue:
                defer(k, dev, f"{drv.name}: {getattr(exc, 'reason', None) or exc}")
        elif not isinstance(exc, OSError):
            k.printk("error", f"{dev.name}: probe with driver {drv.name} raised {type(exc).__name__}: {exc}")
            k.probe_errors[dev.name] = f"{drv.name}: {type(exc).__name__}: {exc}"
        elif code not in (errno.ENODEV, errno.ENXIO):   # those are "not mine": silently
            k.printk("warning", f"{dev.name}: probe with driver {drv.name} failed with error {code}: {exc}")
            k.probe_errors[dev.name] = f"{drv.name}: {exc}"
        k.notify("driver_not_bound", dev)
        links.no_driver(dev)
        undo_probe(dev)
        _after_probe(k, dev)
        return code
    finally:
        dev.probing = False
    driver_bound(k, dev)
    if dev.driver is drv and dev.bus is not None and dev.bus.drivers.get(drv.name) is not drv:
        device_release_driver(k, dev)   # unregistered during its probe: driver_detach waited for it, and unbinds
    _after_probe(k, dev)
    return 0


def _after_probe(k: "Kernel", dev: "Device") -> None:
    """What was called during the probe and waited on the device lock: a device_del, an unbind."""
    waiting, dev.waiting = dev.waiting, set()
    if "del" in waiting:
        k.device_del(dev)
    elif "unbind" in waiting and dev.driver is not None:
        device_release_driver(k, dev)


def driver_bound(k: "Kernel", dev: "Device") -> None:
    """After a successful probe (driver_bound): off the deferred list, its links
    moved on and consumers whose link asks for it queued to probe again
    (device_links_driver_bound, DL_FLAG_AUTOPROBE_CONSUMER), sync_state where
    it is due, the notifier and the bind uevent, then the deferred devices retried."""
    k.deferred.pop(dev, None)
    k.probe_errors.pop(dev.name, None)
    k.binds += 1
    dev.bound_seq = k.binds
    suppliers = list(dev.suppliers)             # a sync-state-only link is dropped below; its supplier still syncs
    for consumer in links.driver_bound(dev):
        if consumer.driver is None:
            defer(k, consumer, f"supplier {dev.name} bound")
    for supplier in [*suppliers, dev]:          # device_links_flush_sync_list: before the notifier
        sync_state(k, supplier)
    notify_late(k, "bound_driver", dev)
    k.uevents_emit("bind", dev)
    k.trigger_deferred()


def notify_late(k: "Kernel", event: str, dev: "Device") -> None:
    """A notifier event after the fact (bound, unbound, removed): a listener
    that raises cannot undo it, nor stop the operation (or the walk it is
    part of, a driver_detach, a supplier's consumers) - it is logged."""
    try:
        k.notify(event, dev)
    except Exception as exc:
        k.printk("error", f"{dev.name}: a bus notifier raised on {event}: {type(exc).__name__}: {exc}")


def sync_state(k: "Kernel", dev: "Device", force: bool = False) -> None:
    """__device_links_queue_sync_state: once every managed link to a consumer of
    a bound device is active (each consumer has probed), its driver's
    sync_state runs - once, until it unbinds; ``force`` (a write of 1 to
    state_synced) runs it now."""
    drv = dev.driver
    if drv is None or drv.sync_state is None or dev.state_synced or dev.dead:
        return
    if not force and any(link.managed and link.state != links.ACTIVE
                         for link in (c.supplier_links[dev] for c in dev.consumers)):
        return
    dev.state_synced = True
    try:
        drv.sync_state(dev)     # type: ignore[operator]
    except Exception as exc:
        k.printk("error", f"{dev.name}: sync_state() of {drv.name} raised {type(exc).__name__}: {exc}")


def undo_probe(dev: "Device") -> None:
    """device_unbind_cleanup: the devres released, newest first; no driver."""
    dev.devres.release_all()
    dev.driver = None
    dev.driver_data = None
    dev.state_synced = False


def defer(k: "Kernel", dev: "Device", reason: str) -> None:
    """driver_deferred_probe_add.  A device that went (device_del) is not kept:
    Linux's deferred work would take it off the list and find it dead."""
    if dev.dead or dev.kernel is not k:
        return
    k.deferred[dev] = reason
    k.printk("debug", f"{dev.name}: probe deferred: {reason}")


def device_attach(k: "Kernel", dev: "Device", allow_async: bool = False) -> bool:
    """Tries the bus's matching drivers in registration order until one binds
    (__device_attach).  With ``allow_async`` (a device's initial probe), drivers
    that prefer asynchronous probing are left to a second pass on the worker
    pool, should no synchronous one bind and no supplier hold the device back."""
    if dev.driver is not None:
        return True
    if dev.dead or dev.kernel is not k:         # __device_attach: a dead device is not probed
        return False
    assert dev.bus is not None
    ret = _try_drivers(k, dev, lambda drv: not (allow_async and drv.allows_async_probing))
    if ret > 0 and allow_async and any(d.allows_async_probing and dev.bus.match(dev, d)
                                       for d in dev.bus.drivers.values()):
        k.async_probe.schedule(lambda: _attach_async(k, dev))
    return ret == 0


def bus_rescan_devices_helper(k: "Kernel", dev: "Device") -> int:
    """drivers_probe_store's helper: device_attach on a device with no driver
    (every matching driver, synchronously); its negative return - -EBUSY for
    resources present before probing, -EPROBE_DEFER for a supplier not bound -
    is the write's error, anything else 0 (bound, no driver, a failed probe)."""
    if dev.driver is not None or dev.dead or dev.kernel is not k:
        return 0
    ret = _try_drivers(k, dev, lambda drv: True)
    return ret if ret < 0 else 0


def _try_drivers(k: "Kernel", dev: "Device", wanted: Callable[["Driver"], bool]) -> int:
    """__device_attach_driver over the wanted matching drivers: a probe that
    fails or defers lets the next driver try its luck; an unbound supplier stops
    the walk.  0 bound, < 0 stopped, > 0 no driver bound."""
    assert dev.bus is not None
    for drv in list(dev.bus.drivers.values()):
        if wanted(drv) and dev.bus.match(dev, drv):
            ret = really_probe(k, dev, drv)
            if ret <= 0:
                return ret
    return 1


def _attach_async(k: "Kernel", dev: "Device") -> None:
    """__device_attach_async_helper: the asynchronous drivers' pass."""
    if dev.registered and not dev.dead and dev.driver is None and dev.bus is not None:
        _try_drivers(k, dev, lambda drv: drv.allows_async_probing)


def _driver_attach_async(k: "Kernel", dev: "Device", drv: "Driver") -> None:
    """__driver_attach_async_helper: unless the device went or bound, or the driver went, meanwhile."""
    if dev.registered and not dev.dead and dev.driver is None and drv.kernel is k:
        really_probe(k, dev, drv)


def driver_attach(k: "Kernel", drv: "Driver") -> None:
    """A newly registered driver tries every unbound device of its bus
    (__driver_attach) - on the worker pool when it prefers asynchronous probing."""
    bus = k.buses[drv.bus]
    for dev in list(bus.devices.values()):
        if dev.driver is None and dev.registered and bus.match(dev, drv):
            if drv.allows_async_probing:
                k.async_probe.schedule(lambda dev=dev: _driver_attach_async(k, dev, drv))
            else:
                really_probe(k, dev, drv)


def device_bind(k: "Kernel", dev: "Device", drv: "Driver") -> None:
    """A sysfs bind (bind_store, device_driver_attach): ENODEV for a device that
    is deleted (or being deleted) or a driver that does not match it, EBUSY when
    the device is bound or holds resources from outside a probe, the probe's own
    errno when it fails, EAGAIN when it defers - and a deferral is not queued."""
    if dev.dead or dev.kernel is not k:
        raise KernelError(errno.ENODEV, f"{dev.name} is not a registered device (deleted?)")
    if dev.bus is None or drv.bus != dev.bus.name or not dev.bus.match(dev, drv):
        raise KernelError(errno.ENODEV, f"driver {drv.name} does not match device {dev.name}")
    if dev.driver is not None:
        raise KernelError(errno.EBUSY, f"{dev.name} is already bound to {dev.driver.name}")
    ret = really_probe(k, dev, drv, queue=False)
    if ret == -errno.EBUSY:
        raise KernelError(errno.EBUSY, f"{dev.name} holds resources taken outside a probe "
                                       f"({', '.join(dev.devres.names())}): release them first")
    if abs(ret) == EPROBE_DEFER:
        raise KernelError(errno.EAGAIN, f"{drv.name} deferred the probe of {dev.name}: try again later")
    if ret:
        raise KernelError(abs(ret), k.probe_errors.get(dev.name, f"{drv.name} declined {dev.name}"))


def device_release_driver(k: "Kernel", dev: "Device") -> None:
    """Unbinds (__device_release_driver): the consumers whose link is active
    first (device_links_busy, device_links_unbind_consumers - a consumer bound
    before its link was added stays bound; none is probed again unless its
    link says DL_FLAG_AUTOPROBE_CONSUMER, and then once this device binds
    again), BUS_NOTIFY_UNBIND_DRIVER, remove(), the devres newest first
    (device_unbind_cleanup), the links cleaned up (device_links_driver_cleanup),
    BUS_NOTIFY_UNBOUND_DRIVER and the unbind uevent - which carries no DRIVER,
    the device has none by then."""
    drv = dev.driver
    if drv is None or dev.probing or dev.unbinding:     # re-entered from its own unbind: released once
        return
    dev.unbinding = True
    try:
        for consumer in links.busy(dev):
            device_release_driver(k, consumer)
        if dev.driver is not drv:
            return
        try:
            k.notify("unbind_driver", dev)  # before anything is released: users can still leave
        except BaseException:               # a listener refused: still bound, its consumer links usable
            links.unbind_refused(dev)
            raise
        try:
            drv.remove(dev)
        except Exception as exc:
            k.printk("error", f"{dev.name}: remove() of {drv.name} raised {type(exc).__name__}: {exc}")
        undo_probe(dev)
        links.driver_cleanup(dev)
    finally:
        dev.unbinding = False
    notify_late(k, "unbound_driver", dev)
    k.uevents_emit("unbind", dev)


def deferred_probe(k: "Kernel") -> None:
    """Retries every deferred device, until a pass binds nothing new
    (deferred_probe_work_func): each leaves the list as it is tried, and is
    back on it only if it defers again."""
    while k.deferred_pending:
        k.deferred_pending = False
        for dev in list(k.deferred):
            if dev.dead or dev.kernel is not k:
                k.deferred.pop(dev, None)
            elif dev.driver is None and dev.bus is not None and dev.bus.drivers_autoprobe:
                k.deferred.pop(dev, None)
                device_attach(k, dev)
