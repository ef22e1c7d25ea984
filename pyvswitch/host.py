"""What the host offers, through pyudev (libudev): KVM, DMA engines, PCI devices.

Degrades cleanly: without pyudev or libudev it reads /sys directly, and says
so; without udevd, libudev still enumerates sysfs (the udev database adds
nothing here).
"""
from __future__ import annotations

import errno
import fcntl
import glob
import os
from dataclasses import asdict, dataclass, field
from typing import Any

KVM_GET_API_VERSION = 0xAE00          # _IO(KVMIO, 0x00)
KVM_CHECK_EXTENSION = 0xAE03          # _IO(KVMIO, 0x03)
KVM_CAPS = {"XSAVE": 55, "XCRS": 56, "DEBUGREGS": 50, "VCPU_EVENTS": 41, "XSAVE2": 208, "IMMEDIATE_EXIT": 136}


@dataclass
class KvmInfo:
    path: str = "/dev/kvm"
    present: bool = False
    accessible: bool = False
    api_version: int | None = None
    capabilities: dict[str, bool] = field(default_factory=dict)
    nested: str | None = None
    reason: str | None = None       # why it is not usable, when it is not

    @property
    def usable(self) -> bool:
        return self.present and self.accessible and self.api_version == 12


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


def kvm_info(path: str = "/dev/kvm") -> KvmInfo:
    info = KvmInfo(path=path, present=os.path.exists(path))
    for module in ("kvm_intel", "kvm_amd"):
        p = f"/sys/module/{module}/parameters/nested"
        if os.path.exists(p):
            with open(p) as f:
                info.nested = f"{module}: {f.read().strip()}"
    if not info.present:
        info.reason = f"{path} does not exist (no KVM module, or not a bare-metal/nested-capable host)"
        return info
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        info.reason = f"cannot open {path}: {os.strerror(exc.errno or errno.EACCES)} (add yourself to the kvm group)"
        return info
    try:
        info.accessible = True
        info.api_version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        if info.api_version != 12:
            info.reason = f"KVM API version {info.api_version}, expected 12"
        for name, cap in KVM_CAPS.items():
            info.capabilities[name] = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, cap) > 0
    except OSError as exc:
        info.reason = f"KVM ioctl failed: {exc}"
    finally:
        os.close(fd)
    return info


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
    rep = HostReport(source, udevd, kvm_info(), devices("dma") + devices("dsa"), devices("pci"))
    from .kvm.vcpu import KvmVcpu, why_unusable
    why = why_unusable(rep.kvm.path)
    rep.kvm_backend = why or "usable"
    if why is None:
        vcpu = KvmVcpu(rep.kvm.path, 2 << 20)
        rep.kvm_absent_msrs = vcpu.absent_msrs
        vcpu.close()
    return rep
