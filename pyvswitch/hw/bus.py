"""Buses of the cost model: the private storage bus and the shared memory bus."""
from __future__ import annotations

import errno
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import VswError, check, check_uint
from ..schema import KINDS as SCHEMA
from ._ffi import ffi, lib

KINDS = {"storage": lib.VSW_BUS_STORAGE, "memory": lib.VSW_BUS_MEMORY}


@dataclass(frozen=True)
class BusParams:
    """A bus: each transaction costs wait + setup + ceil(bytes / width) beats at clock_mhz."""

    kind: str = "storage"
    width_bytes: int = SCHEMA["storage-bus"].param("width_bytes").default
    clock_mhz: int = SCHEMA["storage-bus"].param("clock_mhz").default
    setup_cycles: int = SCHEMA["storage-bus"].param("setup_cycles").default
    shared: bool = False
    utilisation: float = SCHEMA["memory-bus"].param("utilisation").default
    other_bytes: int = SCHEMA["memory-bus"].param("other_bytes").default
    seed: int = SCHEMA["memory-bus"].param("seed").default
    masters: int = SCHEMA["storage-bus"].param("masters").default

    @classmethod
    def of(cls, kind: str, params: Mapping[str, Any] | None = None) -> "BusParams":
        """The reference bus of ``kind`` ("storage": point-to-point, or "memory":
        shared), from pyvswitch.schema, with ``params`` (e.g. a platform device's
        parameters; other keys are ignored) over its defaults."""
        if kind not in KINDS:
            raise VswError(errno.EINVAL, f"bus kind {kind!r} is not one of {', '.join(KINDS)}")
        values = {**SCHEMA[f"{kind}-bus"].defaults(), **(params or {})}
        names = {f.name for f in fields(cls)} - {"kind", "shared"}
        return cls(kind=kind, shared=kind == "memory", **{k: v for k, v in values.items() if k in names})

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise VswError(errno.EINVAL, f"bus kind {self.kind!r} is not one of {', '.join(KINDS)}")
        for name in ("width_bytes", "clock_mhz"):
            check_uint(getattr(self, name), f"bus {name}", 32, minimum=1)
        check_uint(self.masters, "bus masters", 32, minimum=1)
        for name in ("setup_cycles", "other_bytes", "seed"):
            check_uint(getattr(self, name), f"bus {name}", 64 if name == "seed" else 32)
        if not isinstance(self.utilisation, (int, float)) or not 0.0 <= self.utilisation < 1.0:
            raise VswError(errno.EDOM, f"bus utilisation must be in [0, 1), got {self.utilisation!r}")
        if self.utilisation and not self.shared:
            raise VswError(errno.EINVAL, "a point-to-point bus has no other masters: utilisation must be 0")

    def to_c(self) -> object:
        self.validate()
        p = ffi.new("struct vsw_bus_params *")
        p.kind = KINDS[self.kind]
        p.width_bytes, p.clock_mhz, p.setup_cycles = self.width_bytes, self.clock_mhz, self.setup_cycles
        p.shared, p.utilisation, p.other_bytes, p.seed = int(self.shared), float(self.utilisation), self.other_bytes, self.seed
        p.masters = self.masters
        return p


@dataclass(frozen=True)
class BusCounters:
    transactions: int
    bytes: int
    busy_cycles: int
    wait_cycles: int


class Bus:
    """Owner of a C bus model.  Thread-safe (the C side locks its counters)."""

    def __init__(self, params: BusParams | None = None, **kw: object) -> None:
        self._params = replace(params or BusParams(), **kw)  # type: ignore[arg-type]
        out = ffi.new("struct vsw_bus **")
        check(lib.vsw_bus_create(self._params.to_c(), out), "bus create")
        self._h = ffi.gc(out[0], lib.vsw_bus_destroy)
        self._lock = threading.Lock()

    @property
    def handle(self) -> object:
        if self._h is None:
            raise VswError(errno.EBADF, "this bus is closed")
        return self._h

    @property
    def params(self) -> BusParams:
        return self._params

    def configure(self, **changes: object) -> None:
        """Changes parameters (e.g. utilisation=0.5); the contention sequence restarts from the seed."""
        new = replace(self._params, **changes)  # type: ignore[arg-type]
        with self._lock:
            check(lib.vsw_bus_configure(self.handle, new.to_c()), "bus configure")
            self._params = new

    def counters(self) -> BusCounters:
        c = ffi.new("struct vsw_bus_counters *")
        check(lib.vsw_bus_counters(self.handle, c), "bus counters")
        return BusCounters(c.transactions, c.bytes, c.busy_cycles, c.wait_cycles)

    def reset(self) -> None:
        """Zeroes the counters and restarts contention from the seed."""
        check(lib.vsw_bus_reset(self.handle), "bus reset")

    def transact(self, nbytes: int) -> tuple[float, float]:
        """One modelled transaction: (cost ns, of which waiting ns)."""
        wait, ps = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        check(lib.vsw_bus_transact(self.handle, nbytes, wait, ps), "bus transaction",
              {errno.EINVAL: f"a transaction moves at least one byte, got {nbytes}"})
        return ps[0] / 1000.0, wait[0] / 1000.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self._params)

    def close(self) -> None:
        if self._h is not None:
            ffi.release(self._h)
            self._h = None

    def __enter__(self) -> "Bus":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
