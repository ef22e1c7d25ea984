"""vsw_mem: the MEM device - the DRAM region where the prior art keeps contexts."""
from __future__ import annotations

from ..kernel import Device, Driver
from .common import store_of

MODULE_NAME = "vsw_mem"
MODULE_DESCRIPTION = "MEM device: the prior art's context region"


class MemDriver(Driver):
    name = "vsw-mem"
    of_match_table = ("vsw,mem",)

    def probe(self, dev: Device) -> None:
        dev.driver_data = store_of(dev, "mem")


DRIVERS = (MemDriver,)
