"""pyvswitch.hw - Python owners of the C models of the invention's hardware.

Each class owns one C object (``close()``; also freed with the object), turns
``-errno`` into :class:`VswError`, and shares buffers with C without copying
where it can.
"""
from ..errors import UnknownName, VswError
from ._ffi import ffi, lib
from .bus import Bus, BusCounters, BusParams
from .layout import Field, Group, Layout, RegisterView, layout_names
from .path import MoverParams, Path, PathLimits
from .pcpu import Pcpu, PcpuState
from .stats import SwitchStats
from .store import Slot, SlotInfo, Store
from .trace import Trace, TraceRecord

__all__ = [
    "Bus", "BusCounters", "BusParams", "Field", "Group", "Layout", "MoverParams", "Path", "PathLimits", "Pcpu",
    "PcpuState", "RegisterView", "Slot", "SlotInfo", "Store", "SwitchStats", "Trace", "TraceRecord", "UnknownName",
    "VswError", "crc32c", "crc32c_hw", "ffi", "layout_names", "lib",
]


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C of data (continuing from crc)."""
    return int(lib.vsw_crc32c(crc, data, len(data)))


def crc32c_hw() -> bool:
    """Whether the CPU's CRC32C instructions are in use."""
    return bool(lib.vsw_crc32c_hw())
