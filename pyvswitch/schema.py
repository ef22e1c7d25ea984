"""The one schema of device kinds and their parameters.

Every kind of device a platform may describe, its compatible string and every
parameter with its type, unit, default, bounds and where the default comes
from.  Platform validation, the drivers' defaults, the hw owners' defaults,
``bench``, ``scripts/platforms`` (the tables of docs/reference) and the tests all read
it; nothing else writes a default down.

Pure data with no imports from pyvswitch, so every layer may read it - the hw
owners below the platform layer included.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

U32 = (1 << 32) - 1


@dataclass(frozen=True)
class Param:
    """One parameter of a device kind."""

    name: str
    type: type                  # int, float or str
    default: Any
    unit: str = ""
    minimum: float = 0          # inclusive (ints and floats)
    maximum: float | None = None  # inclusive; None: no bound (floats: exclusive when below_maximum)
    source: str = ""            # where the default comes from
    below_maximum: bool = False  # the maximum itself is excluded (a fraction < 1)
    multiple_of: int = 1
    choices: tuple[str, ...] = ()   # strings: the values allowed (empty: any)

    def expected(self) -> str:
        """What a valid value is, in words, for error messages."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type is str:
            return "a string"
        if self.type is float:
            top = f", below {self.maximum}" if self.below_maximum else ""
            return f"a number from {self.minimum}{top}"
        what = "a positive integer" if self.minimum >= 1 else "a non-negative integer"
        if self.multiple_of > 1:
            what += f", a multiple of {self.multiple_of}"
        if self.maximum is not None:
            what += f" (at most {self.maximum:#x})" if self.maximum >= 1 << 20 else f" (at most {self.maximum})"
        return what

    def accepts(self, value: object) -> bool:
        if self.type is str:
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.type is float else int):
            return False
        assert isinstance(value, (int, float))
        if value != value:          # NaN: no bound holds it
            return False
        if value < self.minimum or (self.maximum is not None and (
                value >= self.maximum if self.below_maximum else value > self.maximum)):
            return False
        return self.type is float or value % self.multiple_of == 0


@dataclass(frozen=True)
class Kind:
    """A device kind: what it is, its compatible string and its parameters."""

    name: str
    what: str
    params: tuple[Param, ...]
    invention: bool = False     # one of the patent's three devices
    required: bool = False      # every platform has one: the prior-art path every switch can take needs it
    only_one: bool = True       # at most one per platform (PCPUs: as many as you like)

    @property
    def compatible(self) -> str:
        return f"vsw,{self.name}"

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def _bus(width: int, clock: int, setup: int, source: str) -> tuple[Param, ...]:
    return (Param("width_bytes", int, width, "bytes", 1, U32, source),
            Param("clock_mhz", int, clock, "MHz", 1, U32, source),
            Param("setup_cycles", int, setup, "bus cycles", 0, U32, source))


_DDR4 = "one DDR4-3200 channel; CL22 = 13.75 ns = 44 clocks (JEDEC DDR4-3200AA)"
_LINK = "an on-die cache-line-wide link, like an uncore interconnect"

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("pcpu", "a physical CPU: the register file contexts are switched on", required=True, only_one=False, params=(
        Param("layout", str, "x86_64", source="the layout KVM's x86_64 ABI gives"),
        Param("cpu_mhz", int, 3000, "MHz", 1, U32, "a typical server core"),
        Param("exit_entry_cycles", int, 1500, "CPU cycles", 0, U32,
              "published VM exit + entry round trips on recent x86 are roughly 1,300-2,000 cycles"),
        # a vsw,pcpu-kvm: the KVM device and the guest memory all its machines share
        Param("kvm_device", str, "/dev/kvm", source="the kernel's KVM device"),
        Param("guest_memory_bytes", int, 2 << 30, "bytes", 2 << 20, 3 << 30,
              "reserved, not committed; below the device registers at 3 GiB", multiple_of=2 << 20))),
    Kind("mem", "DRAM the prior art saves contexts to", required=True, params=(
        Param("capacity_bytes", int, 64 << 20, "bytes", 1, 1 << 40, "the prior art's MEM region for contexts"),)),
    Kind("memory-bus", "the shared bus between the PCPUs and MEM", required=True, params=_bus(8, 3200, 44, _DDR4) + (
        Param("utilisation", float, 0.0, "fraction", 0.0, 1.0, "an idle bus; raise it to model load",
              below_maximum=True),
        Param("other_bytes", int, 64, "bytes", 1, U32, "other masters move cache lines"),
        Param("seed", int, 1, "", 0, (1 << 64) - 1, "any fixed seed: waits are reproducible"))),
    Kind("storage-bus", "the bus that connects only the context store and the PCPU",
         _bus(64, 2000, 4, _LINK) + (
             Param("masters", int, 1, "PCPUs", 1, 64, "one PCPU per storage bus; more take turns, first come "
                                                      "first served, a transfer at a time"),), invention=True),
    Kind("context-store", "the dedicated store of contexts", (
        Param("capacity_bytes", int, 8 << 20, "bytes", 1, 1 << 40, "on-die SRAM, the size of a large L2"),
        Param("policy", str, "lru", source="which context the store gives up when it is full and another "
                                            "must come in: least recently used",
              choices=("lru", "clock", "belady", "lru-time"))),
         invention=True),
    Kind("mover", "the engine that moves a context in bursts over the storage bus", (
        Param("max_burst", int, 8192, "bytes", 8, U32, "one x86_64 context per burst", multiple_of=8),
        Param("write_threshold", int, 16, "bursts", 1, U32, "the patent's first threshold: N below it"),
        Param("read_threshold", int, 16, "bursts", 1, U32, "the patent's second threshold: M below it"),
        Param("channels", int, 1, "", 1, 64, "one switch client per PCPU sharing the mover"),
        Param("reaches_dram", int, 0, "", 0, 1, "0: the PCPU copies a context between MEM and the store "
                                                 "(the patent's mover serves the storage bus only); 1: the mover "
                                                 "does, in bursts")), invention=True),
)}

#: The kinds in bring-up order (suppliers first), as the controller scans them.
ORDER = tuple(KINDS)
#: The invention's devices.
INVENTION = tuple(k.name for k in KINDS.values() if k.invention)
#: What every platform has: what the prior-art path, and so every switch, needs.
REQUIRED = tuple(k.name for k in KINDS.values() if k.required)
#: Variants of a kind: vsw,pcpu-kvm is a PCPU that is a real KVM vCPU.
VARIANTS = {"pcpu-kvm": "pcpu"}
#: The dmaengine capability the mover offers and the switch requests.
CAP_CONTEXT = "vsw-context"
#: The storage bus's bus type and the ids of the device on it.
STORAGE_BUS_TYPE = "vsw-storage"
VENDOR_VSW = 0x5653             # "VS": the emulator's vendor id on the storage bus
DEVICE_CONTEXT_STORE = 0x0001


def kind_of(compatible: tuple[str, ...]) -> str | None:
    """The device kind of the first compatible string we know: vsw,<kind>,
    vsw,<kind>-v<N> or a variant such as vsw,pcpu-kvm."""
    for c in compatible:
        m = re.fullmatch(r"vsw,([a-z-]+?)(?:-v\d+)?", c)
        if m:
            kind = VARIANTS.get(m.group(1), m.group(1))
            if kind in KINDS:
                return kind
    return None


def default(kind: str, name: str) -> Any:
    """The default of one parameter."""
    return KINDS[kind].param(name).default
