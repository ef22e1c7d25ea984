"""vsw_store: the context store - SRAM slots, one per machine, on the storage bus."""
from __future__ import annotations

from ..kernel import Device, DeviceId, Driver
from ..schema import DEVICE_CONTEXT_STORE, STORAGE_BUS_TYPE, VENDOR_VSW
from .common import param, store_of

MODULE_NAME = "vsw_store"
MODULE_DESCRIPTION = "context store (storage device of the invention)"
MODULE_DEPENDS = ("vsw_sbus",)          # its bus type is vsw_sbus's


class ContextStoreDriver(Driver):
    name = "vsw-store"
    bus = STORAGE_BUS_TYPE
    id_table = (DeviceId(VENDOR_VSW, DEVICE_CONTEXT_STORE),)

    def probe(self, dev: Device) -> None:
        store = store_of(dev, "store")
        store.policy = param(dev, "policy")
        dev.driver_data = store

    def sync_state(self, dev: Device) -> None:
        """Every consumer (the mover) has probed: the context store serves the switch now."""
        assert dev.kernel is not None
        users = ", ".join(c.name for c in dev.consumers) or "no consumers"
        dev.kernel.printk("info", f"{dev.name}: state synced with {users}")


DRIVERS = (ContextStoreDriver,)
