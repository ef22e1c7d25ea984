"""vsw_kvm: the driver of a PCPU that is a real KVM vCPU (compatible "vsw,pcpu-kvm").

Its probe opens /dev/kvm and creates a VM with one vCPU and guest memory; where
that is impossible it fails with the reason (no /dev/kvm, no permission, API
version, no KVM in this build), which the controller and the probe report.
"""
from __future__ import annotations

import errno

from ..guest.layout import Regions
from ..hw.kvm import KvmPcpu, KvmVcpu
from ..kernel import Device, Driver, KernelError
from .common import devm_hw, param

MODULE_NAME = "vsw_kvm"
MODULE_DESCRIPTION = "PCPU backed by a KVM vCPU"


class KvmPcpuDriver(Driver):
    name = "vsw-kvm-pcpu"
    of_match_table = ("vsw,pcpu-kvm",)

    def probe(self, dev: Device) -> None:
        if param(dev, "layout") != "x86_64":
            raise KernelError(errno.EINVAL, f"a KVM vCPU holds x86_64 state, not {param(dev, 'layout')}")
        mem = param(dev, "guest_memory_bytes")
        vcpu = KvmVcpu(param(dev, "kvm_device"), mem, regions=Regions(mem))     # guests get a region each
        try:
            pcpu = KvmPcpu(vcpu, param(dev, "cpu_mhz"), param(dev, "exit_entry_cycles"))
        except Exception:
            vcpu.close()
            raise
        dev.driver_data = devm_hw(dev, pcpu, "kvm pcpu")


DRIVERS = (KvmPcpuDriver,)
