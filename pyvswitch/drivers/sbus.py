"""vsw_sbus: the storage bus - a private bus between the PCPU and the context store.

Probing it registers the storage bus as a bus type and enumerates the devices
on it (the context store), which then find their own drivers by id.
"""
from __future__ import annotations

import errno

from ..hw import Bus, BusParams
from ..kernel import Device, Driver, IdBus, KernelError
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
        if bus_type in k.buses:
            raise KernelError(errno.EEXIST, f"bus type {bus_type} is already registered by another storage bus")
        k.bus_register(IdBus(bus_type))
        dev.devm_add_action(lambda: k.bus_unregister(bus_type), f"bus type {bus_type}")
        # enumerate the children, as a bus controller scans its slots
        for child in param(dev, "children"):
            res = dict(dev.resources)
            res.pop("children", None)
            res.update(child.params)
            k.device_add(Device(child.name, bus_type, parent=dev, compatible=child.compatible,
                                vendor=child.vendor, device=child.device,
                                resources={**res, "suppliers": list(child.suppliers)}))

    def sync_state(self, dev: Device) -> None:
        """Every consumer (the mover) has probed: the storage bus serves the switch now."""
        assert dev.kernel is not None
        users = ", ".join(c.name for c in dev.consumers) or "no consumers"
        dev.kernel.printk("info", f"{dev.name}: state synced with {users}")


DRIVERS = (StorageBusDriver,)
