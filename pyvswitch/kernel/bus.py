"""struct bus_type, in Python: how a bus matches devices to drivers and names
them with modaliases.  Two kinds: the DT-style platform bus, and ID buses
(the storage bus) whose devices carry numeric vendor/device ids."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .modalias import id_modalias, of_modalias

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
    """Devices described by compatible strings, as in a device tree."""

    def __init__(self, name: str = "platform") -> None:
        super().__init__(name)

    def match_ids(self, dev: "Device", drv: "Driver") -> bool:
        return any(c in drv.of_match_table for c in dev.compatible)

    def modalias(self, dev: "Device") -> str:
        return of_modalias(dev.name, dev.of_type, dev.compatible)

    def uevent_env(self, dev: "Device") -> dict[str, str]:
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
