"""vsw_membus: the shared memory bus between the PCPU and MEM (and everyone else)."""
from __future__ import annotations

from ..hw import Bus, BusParams
from ..kernel import Device, Driver
from .common import devm_hw, param

MODULE_NAME = "vsw_membus"
MODULE_DESCRIPTION = "shared memory bus cost model"


class MemoryBusDriver(Driver):
    name = "vsw-membus"
    of_match_table = ("vsw,memory-bus",)

    def probe(self, dev: Device) -> None:
        p = BusParams(kind="memory", shared=True, **{k: param(dev, k) for k in (
            "width_bytes", "clock_mhz", "setup_cycles", "utilisation", "other_bytes", "seed")})
        dev.driver_data = devm_hw(dev, Bus(p), "memory bus")


DRIVERS = (MemoryBusDriver,)
