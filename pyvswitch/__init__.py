"""pyvswitch - a reference emulator of hardware-assisted VM context switching.

Models patent CN105718300B: a context store on a private storage bus and a
burst mover save and load a PCPU's register state in a few large transfers,
against the prior art of the PCPU storing registers to DRAM.

    import pyvswitch
    with pyvswitch.open() as hv:            # the built-in reference platform
        vm = hv.create_vm("vm1")
        stats = hv.switch_context(hv.host, vm)
        stats.path, stats.save_bursts, stats.modeled_ns, stats.baseline_ns
"""
import logging as _logging
from importlib import metadata as _metadata

from .api import (
                  FallbackWarning,
                  Hypervisor,
                  Machine,
                  PcpuStatus,
                  ScheduleStats,
                  StopFlag,
                  open,
                  switch_context,
)
from .controller import Controller, ControllerReport, DeviceReport
from .hw import Layout, RegisterView, SwitchStats, UnknownName, VswError
from .kernel import Kernel, KernelError, ProbeDefer
from .migration import MigrationStats
from .platform import Platform
from .replay import replay

# a library logs only where its user asks (the kernel's printk goes to dmesg and here)
_logging.getLogger("pyvswitch").addHandler(_logging.NullHandler())

try:  # the one statement of the version is pyproject.toml; the installed metadata carries it
    __version__ = _metadata.version("pyvswitch")
except _metadata.PackageNotFoundError:  # a tree on sys.path that was never installed
    __version__ = "0+unknown"
__all__ = [
    "Controller", "ControllerReport", "DeviceReport", "FallbackWarning", "Hypervisor", "Kernel", "KernelError", "Layout", "Machine",
    "MigrationStats", "PcpuStatus", "Platform", "ScheduleStats", "StopFlag", "ProbeDefer", "RegisterView", "SwitchStats", "UnknownName", "VswError", "__version__", "open",
    "replay", "switch_context",
]
