"""vsw_mem: the MEM device - the DRAM region where the prior art keeps contexts."""
from __future__ import annotations

from ..hw import Store
from ..kernel import Device, Driver
from .common import devm_hw, param

MODULE_NAME = "vsw_mem"
MODULE_DESCRIPTION = "MEM device: the prior art's context region"


class MemDriver(Driver):
    name = "vsw-mem"
    of_match_table = ("vsw,mem",)

    def probe(self, dev: Device) -> None:
        dev.driver_data = devm_hw(dev, Store(param(dev, "layout"), param(dev, "capacity_bytes")), "mem")


DRIVERS = (MemDriver,)
