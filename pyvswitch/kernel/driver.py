"""struct device_driver, in Python: a name on a bus, an ID table, probe and remove."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .async_probe import PROBE_DEFAULT_STRATEGY, PROBE_PREFER_ASYNCHRONOUS

if TYPE_CHECKING:
    from .core import Kernel
    from .device import Device
    from .module import Module

ANY_ID = None


@dataclass(frozen=True)
class DeviceId:
    """A numeric ID-table entry; None matches any value (the kernel's *_ANY_ID)."""

    vendor: int | None = ANY_ID
    device: int | None = ANY_ID

    def matches(self, dev: "Device") -> bool:
        return ((self.vendor is None or self.vendor == dev.vendor) and
                (self.device is None or self.device == dev.device_id))


class Driver:
    """Subclass, set ``name``, ``bus`` and an ID table, and implement probe/remove.

    ``probe`` binds by returning; it refuses with ``no_device`` (ENODEV/ENXIO:
    "not mine"), asks to be tried again with ``ProbeDefer``, or fails with any
    other error.  Resources taken with ``dev.devm_add_action`` are released for
    it.  One instance serves one kernel.
    """

    name: ClassVar[str] = "driver"
    bus: ClassVar[str] = "platform"
    #: PROBE_DEFAULT_STRATEGY, PROBE_PREFER_ASYNCHRONOUS or PROBE_FORCE_SYNCHRONOUS (async_probe.py)
    probe_type: ClassVar[str] = PROBE_DEFAULT_STRATEGY
    of_match_table: ClassVar[tuple[str, ...]] = ()
    id_table: ClassVar[tuple[DeviceId, ...]] = ()
    #: platform_device_id names (a platform driver's id_table): legacy platform
    #: devices of these names match; without one, the driver's own name does.
    platform_ids: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.kernel: Kernel | None = None
        self.module: Module | None = None

    def probe(self, dev: "Device") -> None:
        raise NotImplementedError

    def remove(self, dev: "Device") -> None:
        """Undoes what probe did beyond its devres (default: nothing)."""

    #: Optional: ``sync_state(dev)``, called once every consumer of ``dev`` has
    #: probed - the supplier may then drop what it kept for consumers that never
    #: came (Linux's device_driver.sync_state).  None: the driver has none.
    sync_state: ClassVar[object] = None

    @property
    def devices(self) -> list["Device"]:
        """The devices bound to this driver, in the order they bound (the
        driver's klist_devices)."""
        k = self.kernel
        if k is None:
            return []
        with k.lock:            # a snapshot: threads add and delete devices
            bus = k.buses.get(self.bus)
            return sorted((d for d in bus.devices.values() if d.driver is self), key=lambda d: d.bound_seq) if bus else []

    @property
    def allows_async_probing(self) -> bool:
        """driver_allows_async_probing: PROBE_PREFER_ASYNCHRONOUS, or the default
        strategy with the module loaded with ``async_probe`` (no command line here)."""
        if self.probe_type == PROBE_DEFAULT_STRATEGY:
            return self.module is not None and self.module.async_probe_requested
        return self.probe_type == PROBE_PREFER_ASYNCHRONOUS

    def __repr__(self) -> str:
        return f"<Driver {self.bus}:{self.name}>"
