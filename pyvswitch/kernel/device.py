"""struct device, in Python: a name on a bus, a parent, identifiers, resources."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .devres import DevresList

if TYPE_CHECKING:
    from .bus import Bus
    from .core import Kernel
    from .driver import Driver
    from .links import DeviceLink


class Device:
    """A device: identified DT-style (``compatible``, most specific first) and/or
    by numeric ``vendor``/``device`` ids; ``resources`` are its parameters.
    A platform device with no ``compatible`` (no device-tree node) is a legacy
    one, matched by name: ``pdev_name`` is that name and ``pdev_id`` the
    instance (platform_device_add names it "<name>.<id>"; None: just <name>).
    A "/" in a name becomes "!", as kobject_set_name makes it.

    Set by the driver core: ``bus``, ``kernel``, ``driver``; by the bound
    driver: ``driver_data``.
    """

    def __init__(self, name: str, bus: str = "platform", *, parent: "Device | None" = None,
                 compatible: tuple[str, ...] | list[str] = (), vendor: int | None = None,
                 device: int | None = None, resources: Mapping[str, Any] | None = None,
                 of_type: str | None = None, pdev_id: int | None = None) -> None:
        if isinstance(name, str):
            name = name.replace("/", "!")
        self.pdev_name = name
        self.pdev_id = pdev_id
        self.name = name if pdev_id is None else f"{name}.{pdev_id}"
        self.bus_name = bus
        self.parent = parent
        self.compatible = tuple(compatible)
        self.vendor = vendor
        self.device_id = device
        self.resources: dict[str, Any] = dict(resources or {})
        self.of_type = of_type
        self.bus: Bus | None = None
        self.kernel: Kernel | None = None
        self.driver: Driver | None = None
        self.driver_data: Any = None
        self.bound_seq = 0          # when it bound, in the kernel's order of binds
        self.driver_override: str | None = None
        self.devres = DevresList()
        self.suppliers: list[Device] = []
        self.supplier_links: dict[Device, DeviceLink] = {}  # per supplier: the link (links.py)
        self.probing = False
        self.waiting: set[str] = set()  # "unbind", "del": called during its probe, they wait for it to end
        self.unbinding = False      # its driver is being released
        self.dead = False           # device_del has begun: no driver probes it any more
        self.state_synced = False   # its driver's sync_state ran (every consumer has probed)
        self.consumers: list[Device] = []
        self.children: list[Device] = []

    @property
    def registered(self) -> bool:
        return self.kernel is not None

    @property
    def devpath(self) -> str:
        """Like the kernel's: /devices/<bus root>/<parents...>/<name>."""
        chain = []
        dev: Device | None = self
        while dev is not None:
            chain.append(dev.name)
            dev = dev.parent
        root = "platform" if self.bus_name == "platform" else self.bus_name
        return "/devices/" + "/".join([root] + chain[::-1]) if self.parent is None else \
            self.parent.devpath + "/" + self.name

    @property
    def modalias(self) -> str:
        return self.bus.modalias(self) if self.bus else ""

    @property
    def of_node(self) -> bool:
        """Whether the device is described by a device-tree node (has compatible strings)."""
        return bool(self.compatible)

    def devm_add_action(self, release: Callable[[], None], name: str = "action") -> None:
        """Registers ``release`` to run when the driver unbinds, its probe fails
        or the device is deleted, newest first.  Outside a probe it holds the
        device: no driver can probe it until the resource is released (EBUSY)."""
        self.devres.add(name, release)

    def devres_open_group(self, gid: object = None) -> object:
        """devres_open_group: resources added from now on belong to the group; returns its id."""
        return self.devres.open_group(gid)

    def devres_close_group(self, gid: object = None) -> None:
        """devres_close_group: the group (the newest open one for None) ends here."""
        self.devres.close_group(gid)

    def devres_remove_group(self, gid: object = None) -> None:
        """devres_remove_group: the group's marks go, its resources stay."""
        self.devres.remove_group(gid)

    def devres_release_group(self, gid: object = None) -> int:
        """devres_release_group: releases the group's resources, newest first; returns how many."""
        return self.devres.release_group(gid)

    def __repr__(self) -> str:
        drv = f" driver={self.driver.name}" if self.driver else ""
        return f"<Device {self.bus_name}:{self.name}{drv}>"
