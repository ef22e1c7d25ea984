"""vsw_sbus: the storage bus - a private bus between the PCPU and the context store.

Loading the module registers the storage bus as a bus type (bus_register in
its init, as a Linux bus module does; the context store's module depends on
it); probing the controller enumerates the devices on it (the context store),
which then find their own drivers by id, and unbinding it deletes them.
"""
from __future__ import annotations

import errno

from ..hw import Bus, BusParams
from ..kernel import Device, Driver, IdBus, Kernel, KernelError
from ..schema import STORAGE_BUS_TYPE
from .common import devm_hw, param

MODULE_NAME = "vsw_sbus"
MODULE_DESCRIPTION = "storage bus controller (bus type vsw-storage)"


class StorageBusDriver(Driver):
    name = "vsw-sbus"
    of_match_table = ("vsw,storage-bus",)

    def probe(self, dev: Device) -> None:
        k = dev.kernel
        assert k is not None
        dev.driver_data = devm_hw(dev, Bus(BusParams.of("storage", dev.resources)), "storage bus")
        bus_type = param(dev, "bus_type")
        if bus_type not in k.buses:
            raise KernelError(errno.ENODEV, f"bus type {bus_type} is not registered (module vsw_sbus registers "
                                            f"{STORAGE_BUS_TYPE})")
        taken = [d.name for d in k.buses[bus_type].devices.values() if d.parent is not dev]
        if taken:
            raise KernelError(errno.EEXIST, f"bus type {bus_type} already carries {', '.join(taken)} of another "
                                            "storage bus")
        # enumerate the children, as a bus controller scans its slots; they go when it unbinds
        for child in param(dev, "children"):
            res = dict(dev.resources)
            res.pop("children", None)
            res.update(child.params)
            added = k.device_add(Device(child.name, bus_type, parent=dev, compatible=child.compatible,
                                        vendor=child.vendor, device=child.device,
                                        resources={**res, "suppliers": list(child.suppliers)}))
            dev.devm_add_action(lambda added=added: k.device_del(added), f"{bus_type} device {added.name}")

    def sync_state(self, dev: Device) -> None:
        """Every consumer (the mover) has probed: the storage bus serves the switch now."""
        assert dev.kernel is not None
        users = ", ".join(c.name for c in dev.consumers) or "no consumers"
        dev.kernel.printk("info", f"{dev.name}: state synced with {users}")


def init_module(kernel: Kernel) -> None:
    """Registers the storage bus type."""
    kernel.bus_register(IdBus(STORAGE_BUS_TYPE))


def cleanup_module(kernel: Kernel) -> None:
    """Unregisters it (its devices went when the controllers unbound)."""
    kernel.bus_unregister(STORAGE_BUS_TYPE)


DRIVERS = (StorageBusDriver,)
