"""vsw_mover: the mover - a burst engine between the PCPU and the context store
over the storage bus, offered to clients as a dmaengine provider.

Its suppliers (the context store, the storage bus) must be bound first; its
parameters must keep every save below the write threshold and every load below
the read threshold, or the probe fails (E2BIG) and nothing binds.
"""
from __future__ import annotations

from ..hw import MoverParams, Path
from ..kernel import Device, Driver, ProbeDefer
from ..kernel.dmaengine import DmaDevice
from ..schema import CAP_CONTEXT
from .common import devm_hw, module_params, param, require_suppliers

MODULE_NAME = "vsw_mover"
MODULE_DESCRIPTION = "mover: burst engine over the storage bus (dmaengine provider)"
MODULE_PARAMS = module_params("mover", "max_burst", "write_threshold", "read_threshold", "channels",
                               "reaches_dram")


class MoverDriver(Driver):
    name = "vsw-mover"
    of_match_table = ("vsw,mover",)

    def probe(self, dev: Device) -> None:
        k = dev.kernel
        assert k is not None
        sups = require_suppliers(dev, dev.resources.get("suppliers", []))
        store = next((s.driver_data for s in sups if s.bus_name != "platform"), None)
        sbus = next((s.driver_data for s in sups if s.compatible and "vsw,storage-bus" in s.compatible), None)
        if store is None or sbus is None:
            raise ProbeDefer("needs a context store and a storage bus among its suppliers")
        params = MoverParams(*(param(dev, k) for k in ("max_burst", "write_threshold", "read_threshold")))
        path = devm_hw(dev, Path.mover(store, sbus, params), "mover path")
        path.fetch_via = "mover" if param(dev, "reaches_dram") else "pcpu"
        dma = DmaDevice(dev, CAP_CONTEXT, channels=param(dev, "channels"), context=path)
        k.dma.register(dma)
        dev.devm_add_action(lambda: k.dma.unregister(dma), "dma device")
        dev.driver_data = dma


DRIVERS = (MoverDriver,)
