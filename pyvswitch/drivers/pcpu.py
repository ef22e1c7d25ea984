"""vsw_pcpu: the physical CPU - its register file and the machine running on it."""
from __future__ import annotations

from ..hw import Pcpu
from ..kernel import Device, Driver
from .common import devm_hw, param

MODULE_NAME = "vsw_pcpu"
MODULE_DESCRIPTION = "PCPU register file model"


class PcpuDriver(Driver):
    name = "vsw-pcpu"
    of_match_table = ("vsw,pcpu",)

    def probe(self, dev: Device) -> None:
        dev.driver_data = devm_hw(dev, Pcpu(param(dev, "layout"), param(dev, "cpu_mhz"),
                                            param(dev, "exit_entry_cycles")), "pcpu")


DRIVERS = (PcpuDriver,)
