"""What the host offers, through pyudev (libudev): KVM, DMA engines, PCI devices.

Degrades cleanly: without pyudev or libudev it reads /sys directly, and says
so; without udevd, libudev still enumerates sysfs (the udev database adds
nothing here).
"""
from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .hw.kvm import KvmInfo, kvm_info


@dataclass
class HostDevice:
    subsystem: str
    name: str
    driver: str | None
    ident: str | None = None        # vendor:device for PCI
    modalias: str | None = None


@dataclass
class HostReport:
    udev: str                       # "libudev" or "sysfs (why)"
    udevd_running: bool
    kvm: KvmInfo
    dma: list[HostDevice]
    pci: list[HostDevice]
    kvm_backend: str = ""           # "usable" or why pyvswitch's KVM backend cannot run here
    kvm_absent_msrs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kvm"]["usable"] = self.kvm.usable
        return d


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _sysfs_devices(subsystem: str) -> list[HostDevice]:
    """/sys/bus/<s>/devices or /sys/class/<s>: the fallback without libudev."""
    out = []
    for p in sorted(glob.glob(f"/sys/bus/{subsystem}/devices/*") + glob.glob(f"/sys/class/{subsystem}/*")):
        drv = os.path.realpath(os.path.join(p, "driver"))
        ident = None
        v, d = _read(os.path.join(p, "vendor")), _read(os.path.join(p, "device"))
        if v and d:
            ident = f"{v[2:]}:{d[2:]}".lower()
        out.append(HostDevice(subsystem, os.path.basename(p), os.path.basename(drv) if os.path.exists(
            os.path.join(p, "driver")) else None, ident, _read(os.path.join(p, "modalias"))))
    return out


def _udev_devices(ctx: Any, subsystem: str) -> list[HostDevice]:
    out = []
    for dev in ctx.list_devices(subsystem=subsystem):
        ident = dev.properties.get("PCI_ID")
        out.append(HostDevice(subsystem, dev.sys_name, dev.driver, ident.lower() if ident else None,
                              dev.properties.get("MODALIAS")))
    return sorted(out, key=lambda d: d.name)


def host_report() -> HostReport:
    """KVM, DMA engines (subsystems dma, dsa) and PCI devices with their drivers."""
    udevd = os.path.exists("/run/udev/control")
    try:
        import pyudev
        ctx = pyudev.Context()
        source = "libudev" + ("" if udevd else " (udevd not running: sysfs data only)")

        def devices(s: str) -> list[HostDevice]:
            return _udev_devices(ctx, s)
    except Exception as exc:  # no pyudev, or no libudev.so
        source = f"sysfs (pyudev unavailable: {exc})"

        def devices(s: str) -> list[HostDevice]:
            return _sysfs_devices(s)
    kvm = kvm_info()            # one probe of /dev/kvm: no VM, no vCPU
    return HostReport(source, udevd, kvm, devices("dma") + devices("dsa"), devices("pci"),
                      kvm_backend=kvm.reason or "usable", kvm_absent_msrs=list(kvm.absent_msrs))
