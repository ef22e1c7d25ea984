"""struct bus_type, in Python: how a bus matches devices to drivers and names
them with modaliases.  Two kinds: the DT-style platform bus, and ID buses
(the storage bus) whose devices carry numeric vendor/device ids."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .modalias import PLATFORM_PREFIX, id_modalias, of_modalias

if TYPE_CHECKING:
    from .device import Device
    from .driver import Driver


class Bus:
    """A bus type: its devices and drivers, in registration order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.devices: dict[str, Device] = {}
        self.drivers: dict[str, Driver] = {}
        self.drivers_autoprobe = True

    def match(self, dev: "Device", drv: "Driver") -> bool:
        """driver_override, when set, is the only driver allowed (as the kernel's platform bus)."""
        if dev.driver_override is not None:
            return dev.driver_override == drv.name
        return self.match_ids(dev, drv)

    def match_ids(self, dev: "Device", drv: "Driver") -> bool:
        raise NotImplementedError

    def modalias(self, dev: "Device") -> str:
        raise NotImplementedError

    def uevent_env(self, dev: "Device") -> dict[str, str]:
        return {"MODALIAS": self.modalias(dev)}


class PlatformBus(Bus):
    """Devices described by compatible strings, as in a device tree - or, with
    none (no device-tree node), legacy platform devices known by name."""

    def __init__(self, name: str = "platform") -> None:
        super().__init__(name)

    def match_ids(self, dev: "Device", drv: "Driver") -> bool:
        """platform_match: an OF match first, then the driver's platform_device_id
        table, and without one the driver's name against the device's."""
        if any(c in drv.of_match_table for c in dev.compatible):
            return True
        if drv.platform_ids:
            return dev.pdev_name in drv.platform_ids
        return dev.pdev_name == drv.name

    def modalias(self, dev: "Device") -> str:
        """modalias_show / platform_uevent: the OF form for a device with a node, else platform:<name>."""
        if dev.of_node:
            return of_modalias(dev.name, dev.of_type, dev.compatible)
        return f"{PLATFORM_PREFIX}{dev.pdev_name}"

    def uevent_env(self, dev: "Device") -> dict[str, str]:
        """of_device_uevent's OF_* variables (with a node only), then MODALIAS."""
        env: dict[str, str] = {}
        if dev.of_node:
            env = {"OF_NAME": dev.name, "OF_COMPATIBLE_N": str(len(dev.compatible))}
            env.update({f"OF_COMPATIBLE_{i}": c for i, c in enumerate(dev.compatible)})
        env["MODALIAS"] = self.modalias(dev)
        return env


class IdBus(Bus):
    """Devices named by numeric vendor/device ids, PCI-style: <prefix>:v%08Xd%08X."""

    def __init__(self, name: str, prefix: str = "vsw") -> None:
        super().__init__(name)
        self.prefix = prefix

    def match_ids(self, dev: "Device", drv: "Driver") -> bool:
        return any(i.matches(dev) for i in drv.id_table)

    def modalias(self, dev: "Device") -> str:
        return id_modalias(dev.vendor, dev.device_id, self.prefix)
