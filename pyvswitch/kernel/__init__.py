"""pyvswitch.kernel - a Linux-style driver core (drivers/base), per instance.

One mechanism per file, as in the kernel: ``core`` (buses, devices, drivers),
``dd`` (probe, deferred probe, unbind, sync_state), ``async_probe`` (the worker
pool, wait_for_device_probe, the deferred-probe timeout), ``devres``, ``links``
(device links, their flags and states), ``module`` (modules.alias, modprobe,
rmmod, module parameters), ``modalias``, ``sysfs``, ``uevent``.
"""
from .async_probe import (
    PROBE_DEFAULT_STRATEGY,
    PROBE_FORCE_SYNCHRONOUS,
    PROBE_PREFER_ASYNCHRONOUS,
)
from .bus import Bus, IdBus, PlatformBus
from .core import Kernel, LogLine
from .device import Device
from .driver import ANY_ID, DeviceId, Driver
from .errors import (
    EPROBE_DEFER,
    KernelError,
    ProbeDefer,
    UnknownName,
    VswError,
    no_device,
)
from .modalias import alias_matches, driver_aliases, id_modalias, of_modalias, pci_alias
from .module import ENTRY_POINT_GROUP, Module, ModuleParam
from .uevent import UEvent

__all__ = [
    "ANY_ID", "Bus", "Device", "DeviceId", "Driver", "ENTRY_POINT_GROUP", "EPROBE_DEFER", "IdBus", "Kernel",
    "KernelError", "LogLine", "Module", "ModuleParam", "PROBE_DEFAULT_STRATEGY", "PROBE_FORCE_SYNCHRONOUS",
    "PROBE_PREFER_ASYNCHRONOUS", "PlatformBus", "ProbeDefer", "UEvent", "UnknownName", "VswError",
    "alias_matches", "driver_aliases",
    "id_modalias", "no_device", "of_modalias", "pci_alias",
]
