"""Buses of the cost model: the private storage bus and the shared memory bus."""
from __future__ import annotations

import errno
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import VswError, check
from ..schema import KINDS as SCHEMA
from ._ffi import ffi, lib
from .cparams import c_types, c_value, refused

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

    def to_c(self) -> object:
        """The C parameters: each value as C's type holds it (the bounds are C's: ``create``
        and ``configure`` say what it refused, through :meth:`refusals`)."""
        if self.kind not in KINDS:
            raise VswError(errno.EINVAL, f"bus kind {self.kind!r} is not one of {', '.join(KINDS)}")
        p = ffi.new("struct vsw_bus_params *")
        p.kind, p.shared = KINDS[self.kind], int(self.shared)
        for name, ctype in _C_TYPES.items():
            if name not in ("kind", "shared"):
                setattr(p, name, c_value(ctype, getattr(self, name), self._schema(name), name, f"{self.kind} bus"))
        return p

    def _schema(self, name: str) -> str:
        """The schema's kind that states parameter ``name`` (masters: the storage bus's;
        utilisation, other_bytes, seed: the memory bus's)."""
        own = f"{self.kind}-bus"
        return own if any(p.name == name for p in SCHEMA[own].params) else \
            "memory-bus" if own == "storage-bus" else "storage-bus"

    def refusals(self) -> dict[int, str]:
        """What C's refusal of these parameters means, in the schema's words."""
        values = [(SCHEMA[self._schema(n)].param(n), getattr(self, n)) for n in _C_TYPES if n not in ("kind", "shared")]
        return refused(values, "" if self.shared else
                       "a point-to-point bus has no other masters: utilisation must be 0")


#: Each field of struct vsw_bus_params and its C type (csrc/vsw.h, through cffi).
_C_TYPES = c_types("struct vsw_bus_params")


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
        check(lib.vsw_bus_create(self._params.to_c(), out), "bus create", self._params.refusals())
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
            check(lib.vsw_bus_configure(self.handle, new.to_c()), "bus configure", new.refusals())
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
        if isinstance(nbytes, bool) or not isinstance(nbytes, int):
            raise VswError(errno.EINVAL, f"bus transaction: nbytes is a byte count, an integer, "
                                         f"got {type(nbytes).__name__} {nbytes!r}")
        wait, ps = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        try:
            r = lib.vsw_bus_transact(self.handle, nbytes, wait, ps)
        except OverflowError:       # C's uint32_t decides what fits
            raise VswError(errno.EINVAL if nbytes < 0 else errno.ERANGE,
                           f"bus transaction: nbytes {nbytes!r} does not fit C's uint32_t byte count") from None
        check(r, "bus transaction", {errno.EINVAL: f"a transaction moves at least one byte, got {nbytes!r}"})
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
