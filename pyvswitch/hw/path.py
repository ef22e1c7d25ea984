"""Switch paths: the mover over the storage bus, or the PCPU over the memory bus."""
from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import VswError, check, check_uint
from ..schema import KINDS as SCHEMA
from ._ffi import ffi, lib
from .bus import Bus
from .cparams import c_types, c_value, refused
from .store import Store

PATH_NAMES = {lib.VSW_PATH_STORE: "store", lib.VSW_PATH_MEMORY: "memory"}
FAULTS = {"none": lib.VSW_FAULT_NONE, "save": lib.VSW_FAULT_SAVE, "load": lib.VSW_FAULT_LOAD}


@dataclass(frozen=True)
class MoverParams:
    """The mover: bursts of at most max_burst bytes; every save needs N < write_threshold
    bursts and every load M < read_threshold (the patent's first and second thresholds)."""

    max_burst: int = SCHEMA["mover"].param("max_burst").default
    write_threshold: int = SCHEMA["mover"].param("write_threshold").default
    read_threshold: int = SCHEMA["mover"].param("read_threshold").default

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> "MoverParams":
        """From a platform device's parameters (other keys are ignored), over the defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})

    def to_c(self) -> object:
        """The C parameters, each as C's type holds it; C decides the bounds (``refusals``)."""
        p = ffi.new("struct vsw_mover_params *")
        for name, ctype in _C_TYPES.items():
            setattr(p, name, c_value(ctype, getattr(self, name), "mover", name, "mover"))
        return p

    def refusals(self) -> dict[int, str]:
        """What C's EINVAL for these parameters means, in the schema's words."""
        return refused((SCHEMA["mover"].param(n), getattr(self, n)) for n in _C_TYPES)


#: Each field of struct vsw_mover_params and its C type (csrc/vsw.h, through cffi).
_C_TYPES = c_types("struct vsw_mover_params")


@dataclass(frozen=True)
class PathLimits:
    full_units: int
    worst_save_units: int
    worst_load_units: int


class Path:
    """How contexts move between a PCPU and a store; create with :meth:`mover` or :meth:`memory`."""

    def __init__(self, kind: int, store: Store, bus: Bus, params: MoverParams | None) -> None:
        self.kind, self.store, self.bus = kind, store, bus
        self.params = params
        self.baseline: Bus | None = None
        self.fetch_via = "pcpu"         # who copies contexts between MEM and a caching store (hw/cache.py)
        out = ffi.new("struct vsw_path **")
        check(lib.vsw_path_create(kind, store.handle, bus.handle, params.to_c() if params else ffi.NULL, out),
              "path create", self._config_errors(params))
        self._h = ffi.gc(out[0], lib.vsw_path_destroy)

    @classmethod
    def mover(cls, store: Store, storage_bus: Bus, params: MoverParams | None = None) -> "Path":
        """The patented path; refused with E2BIG when a transfer could break a threshold."""
        if storage_bus.params.kind != "storage":
            raise VswError(errno.EINVAL, "the mover moves over the storage bus, not the memory bus")
        return cls(lib.VSW_PATH_STORE, store, storage_bus, params or MoverParams())

    @classmethod
    def memory(cls, mem: Store, memory_bus: Bus) -> "Path":
        """The prior-art path: the PCPU stores registers over the memory bus into MEM."""
        if memory_bus.params.kind != "memory":
            raise VswError(errno.EINVAL, "the prior-art path stores over the memory bus, not the storage bus")
        return cls(lib.VSW_PATH_MEMORY, mem, memory_bus, None)

    @property
    def name(self) -> str:
        return PATH_NAMES[self.kind]

    @property
    def handle(self) -> object:
        if self._h is None:
            raise VswError(errno.EBADF, "this path is closed")
        return self._h

    @property
    def closed(self) -> bool:
        """Whether the path or a part C reaches through it (its store, its bus, the
        baseline's memory bus) is closed: freed, so nothing may switch over it."""
        baseline = self.baseline
        return self._h is None or self.store._h is None or self.bus._h is None or \
            (baseline is not None and baseline._h is None)

    def check_open(self) -> None:
        """EBADF, saying which part is closed, when ``closed``."""
        self.handle, self.store.handle, self.bus.handle      # noqa: B018
        if self.baseline is not None:
            self.baseline.handle                                # noqa: B018

    def _config_errors(self, params: MoverParams | None) -> dict[int, str]:
        if params is None:
            return {}
        lay = self.store.layout
        mapped = params.refusals()
        full = -(-lay.size // params.max_burst) if params.max_burst else 0
        return {errno.E2BIG: (
            f"max_burst {params.max_burst} cannot keep every transfer of the {lay.size}-byte {lay.name} context "
            f"below the thresholds (write_threshold {params.write_threshold}, read_threshold "
            f"{params.read_threshold}): a full "
            f"transfer takes {full} bursts and a save of scattered groups more; raise max_burst or the thresholds"),
            **mapped}

    def set_baseline(self, memory_bus: "Bus | None") -> None:
        """The memory bus that prices the prior-art path in every switch's stats."""
        if memory_bus is not None and memory_bus.params.kind != "memory":
            raise VswError(errno.EINVAL, "the prior art is priced on the memory bus, not the storage bus")
        check(lib.vsw_path_set_baseline(self.handle, memory_bus.handle if memory_bus else ffi.NULL), "set baseline")
        self.baseline = memory_bus

    def configure(self, params: MoverParams) -> None:
        """New mover parameters, checked against the thresholds before they take effect."""
        check(lib.vsw_path_configure(self.handle, params.to_c()), "mover configure", self._config_errors(params))
        self.params = params

    def limits(self) -> PathLimits:
        lim = ffi.new("struct vsw_path_limits *")
        check(lib.vsw_path_limits(self.handle, lim), "path limits")
        return PathLimits(lim.full_units, lim.worst_save_units, lim.worst_load_units)

    def units(self, mask: int) -> int:
        """Bursts (store path) or register stores (memory path) needed to move the groups in mask."""
        return check(lib.vsw_path_units(self.handle, mask), "path units",
                     {errno.EINVAL: f"mask {mask:#x} names groups beyond the layout's {len(self.store.layout.groups)}"})

    def price(self, mask: int) -> tuple[int, float]:
        """(units, ns) of moving the groups of mask as one transfer - the switch's own
        cost model, without moving data or counting it (the memory bus draws its waits)."""
        units, ps = ffi.new("uint32_t *"), ffi.new("uint64_t *")
        check(lib.vsw_path_price(self.handle, mask, units, ps), "price",
              {errno.EINVAL: f"mask {mask:#x} names groups beyond the layout's {len(self.store.layout.groups)}"})
        return int(units[0]), ps[0] / 1000.0

    def inject(self, direction: str, unit: int) -> None:
        """Fault injection: unit ``unit`` of the next ``direction`` ("save"/"load") transfer fails with EIO."""
        if direction not in FAULTS:
            raise VswError(errno.EINVAL, f"fault direction {direction!r} is not one of {', '.join(FAULTS)}")
        check_uint(unit, "fault unit")
        check(lib.vsw_path_inject(self.handle, FAULTS[direction], unit), "inject")

    def close(self) -> None:
        if self._h is not None:
            ffi.release(self._h)
            self._h = None
