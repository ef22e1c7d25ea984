"""vsw_membus: the shared memory bus between the PCPU and MEM (and everyone else)."""
from __future__ import annotations

from ..hw import Bus, BusParams
from ..kernel import Device, Driver
from .common import devm_hw

MODULE_NAME = "vsw_membus"
MODULE_DESCRIPTION = "shared memory bus cost model"


class MemoryBusDriver(Driver):
    name = "vsw-membus"
    of_match_table = ("vsw,memory-bus",)

    def probe(self, dev: Device) -> None:
        dev.driver_data = devm_hw(dev, Bus(BusParams.of("memory", dev.resources)), "memory bus")


DRIVERS = (MemoryBusDriver,)
