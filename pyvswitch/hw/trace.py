"""The trace ring of bus transactions, readable from Python."""
from __future__ import annotations

import errno
from dataclasses import dataclass

from ..errors import VswError, check, check_uint
from ._ffi import ffi, lib

KIND_NAMES = {lib.VSW_TRACE_SWITCH: "switch", lib.VSW_TRACE_EXIT_ENTRY: "exit_entry", lib.VSW_TRACE_BURST: "burst"}
BUS_NAMES = {lib.VSW_BUS_STORAGE: "storage", lib.VSW_BUS_MEMORY: "memory"}
DIR_NAMES = {lib.VSW_DIR_SAVE: "save", lib.VSW_DIR_LOAD: "load"}


@dataclass(frozen=True)
class TraceRecord:
    """One traced event; times in model nanoseconds."""

    seq: int
    kind: str
    bus: str
    dir: str
    start_ns: float
    end_ns: float
    bytes: int
    count: int
    group: int
    from_owner: int
    to_owner: int


class Trace:
    """A fixed-capacity ring; attach it to one PCPU (it is that PCPU's timeline)."""

    def __init__(self, capacity: int = 65536) -> None:
        check_uint(capacity, "trace capacity", 32, minimum=1)
        out = ffi.new("struct vsw_trace **")
        check(lib.vsw_trace_create(capacity, out), "trace create")
        self._h = ffi.gc(out[0], lib.vsw_trace_destroy)
        self.capacity = capacity

    @property
    def handle(self) -> object:
        if self._h is None:
            raise VswError(errno.EBADF, "this trace is closed")
        return self._h

    def records(self) -> list[TraceRecord]:
        """Every record still in the ring, oldest first."""
        buf = ffi.new("struct vsw_trace_record[]", self.capacity)
        n = check(lib.vsw_trace_read(self.handle, buf, self.capacity), "trace read")
        return [
            TraceRecord(r.seq, KIND_NAMES[r.kind], BUS_NAMES[r.bus], DIR_NAMES[r.dir], r.start_ps / 1000.0,
                        r.end_ps / 1000.0, r.bytes, r.count, r.group, r.from_owner, r.to_owner)
            for r in (buf[i] for i in range(n))
        ]

    @property
    def dropped(self) -> int:
        return int(lib.vsw_trace_dropped(self.handle))

    def clear(self) -> None:
        check(lib.vsw_trace_clear(self.handle), "trace clear")

    def close(self) -> None:
        if self._h is not None:
            ffi.release(self._h)
            self._h = None
