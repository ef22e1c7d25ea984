"""Booting a platform: its devices into a kernel, with the resources their
drivers read, and the device links its suppliers name.  One ``boot()``, used
by the API and by the probe."""
from __future__ import annotations

from typing import Any

from ..errors import VswError
from ..kernel import Device, Kernel
from ..schema import STORAGE_BUS_TYPE
from .description import DeviceSpec, Platform


def resources(plat: Platform, s: DeviceSpec) -> dict[str, Any]:
    """What a driver reads from its device: the parameters, the platform's
    layout, and for a storage bus the descriptions of its children."""
    res = dict(s.params)
    res["layout"] = plat.layout.name
    res["suppliers"] = list(s.suppliers)
    res["given"] = s.given          # device properties the file sets: they win over module parameters
    if s.kind == "storage-bus":
        res["children"] = plat.children_of(s.name)
        res["bus_type"] = STORAGE_BUS_TYPE
    return res


def make_device(plat: Platform, s: DeviceSpec, parent: Device | None = None) -> Device:
    return Device(s.name, STORAGE_BUS_TYPE if s.bus else "platform", parent=parent, compatible=s.compatible,
                  vendor=s.vendor, device=s.device, resources=resources(plat, s))


def boot(plat: Platform, kernel: Kernel | None = None) -> Kernel:
    """A kernel (a new one unless given) with the platform's devices added: the
    platform bus's devices (the storage bus's own come when its driver
    enumerates them), then the device links the suppliers name.  Adding a
    device probes it, so the drivers that match are bound on return."""
    kernel = kernel if kernel is not None else Kernel()
    added: dict[str, Device] = {}
    for s in plat.devices:
        if s.bus is None:
            parent = added.get(s.parent) if s.parent else None
            added[s.name] = kernel.device_add(make_device(plat, s, parent))
    link(plat, kernel)
    return kernel


def link(plat: Platform, kernel: Kernel) -> None:
    """Creates the device links between devices present in the kernel (again
    after the storage bus enumerates its children)."""
    for s in plat.devices:
        for sup in s.suppliers:
            try:
                consumer, supplier = kernel.device(s.name), kernel.device(sup)
            except VswError:
                continue
            kernel.device_link_add(consumer, supplier, s.link_flags_of(sup))
