"""``pyvswitch run a.elf b.elf ...``: C guests preempted on one KVM vCPU through
the context store, each one's console output (streamed as it is written, each
line prefixed by its guest) and how it ended - and, with ``check_solo``, whether
they equal what it gives running alone.

``ok`` only when every guest ended by returning from main or calling vsw_exit
(and, with ``check_solo``, matched its solo run); a guest still running when the
slice budget or ``timeout`` ran out, or when ``stop()`` said so (Ctrl-C), did not
finish and the run is not ok."""
from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .. import api
from ..guest import GuestImage
from ..hw import VswError
from ..errors import DEFAULT_GUEST_MEM_MIB, DEFAULT_SLICE_US
from ..guest.layout import MAX_MEM
from ..hw.kvm import why_unusable
from ..kvm.scheduler import Job, Scheduler
from ..platform.description import DEFAULT_KVM_PLATFORM

MAX_SLICES = 1_000_000


def _row(path: str, job: Job) -> dict[str, Any]:
    return {"path": path, "machine": job.machine.name, "output": job.text, "exit_status": job.status,
            "ended": job.ended or "unfinished", "error": job.error, "slices": job.slices, "clock_ns": job.clock_ns}


def _ending(row: dict[str, Any]) -> str:
    st = row["exit_status"]
    return {"exit": f"exit status {st}", "crash": f"CRASHED: {st['text'] if isinstance(st, dict) else st}",
            "error": f"ERROR {row['error']}", "unfinished": "DID NOT FINISH"}[row["ended"]]


class LinePrinter:
    """Console bytes to whole lines, each prefixed by its guest's label; what is
    left without a newline comes out at ``flush``.  Thread-safe."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write, self._lock = write, threading.Lock()
        self._partial: dict[str, bytes] = {}

    def feed(self, label: str, data: bytes) -> None:
        with self._lock:
            buf = self._partial.get(label, b"") + data
            *lines, rest = buf.split(b"\n")
            self._partial[label] = rest
            for line in lines:
                self._write(f"[{label}] {line.decode('utf-8', errors='replace')}")

    def flush(self) -> None:
        with self._lock:
            for label, rest in self._partial.items():
                if rest:
                    self._write(f"[{label}] {rest.decode('utf-8', errors='replace')}")
            self._partial.clear()


def run_guests(paths: Sequence[str | os.PathLike[str]], slice_us: float = DEFAULT_SLICE_US, order: str = "round-robin",
               check_solo: bool = False, seed: int = 0, mem_mib: int = DEFAULT_GUEST_MEM_MIB,
               platform: str | None = None,
               timeout: float | None = None, stream: Callable[[str], None] | None = None,
               stop: Callable[[], bool] | None = None, max_slices: int = MAX_SLICES) -> dict[str, Any]:
    """Runs the guests together (and, with ``check_solo``, each alone first).
    ``stream(line)`` gets each console line as the guests write it, prefixed by
    the guest's label; ``timeout`` bounds each run's wall time in seconds."""
    if not paths:
        raise VswError(errno.EINVAL, "pyvswitch run needs at least one guest ELF image")
    if not isinstance(mem_mib, int) or isinstance(mem_mib, bool):
        raise VswError(errno.EINVAL, f"--mem-mib is a whole number of MiB, got {mem_mib!r}")
    if not 2 <= mem_mib <= MAX_MEM >> 20 or mem_mib % 2:
        need = f"at most {MAX_MEM >> 20} MiB" if mem_mib > MAX_MEM >> 20 else "at least 2 MiB" if mem_mib < 2 \
            else "an even number of MiB (guest memory comes in 2 MiB pages)"
        raise VswError(errno.EINVAL, f"--mem-mib: got {mem_mib} MiB, {need}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                or not timeout > 0):
        raise VswError(errno.EINVAL, f"--timeout is a positive number of seconds, got {timeout!r}")
    why = why_unusable()
    if why is not None:
        raise VswError(errno.ENODEV, f"running guests needs a usable /dev/kvm: {why}")
    images = [GuestImage.read(p) for p in paths]
    names = [os.fspath(p) for p in paths]
    plat = platform or DEFAULT_KVM_PLATFORM
    mem = mem_mib << 20
    alone: list[Job] = []
    alone_rows: list[dict[str, Any]] = []
    stopped = None
    if check_solo:
        with api.open(plat) as hv:
            for i, img in enumerate(images):
                if stopped:
                    break
                sched = Scheduler(hv)
                job = sched.add(hv.create_vm(f"solo{i}-{img.name}"), img, mem_bytes=mem)
                stopped = sched.run(slice_us=10_000_000, timeout=timeout, stop=stop).stopped
                alone.append(job)
            alone_rows = [_row(n, j) for n, j in zip(names, alone)]
    printer = LinePrinter(stream) if stream is not None else None
    labels: dict[int, str] = {}
    rep = None
    with api.open(plat) as hv:
        sched = Scheduler(hv)
        jobs = [sched.add(hv.create_vm(f"vm{i}-{img.name}"), img, mem_bytes=mem) for i, img in enumerate(images)]
        for i, j in enumerate(jobs):
            labels[id(j)] = f"vm{i} {names[i]}" if len(set(names)) < len(names) else names[i]
        if not stopped:
            rep = sched.run(slice_us=slice_us, order=order, rng_seed=seed, max_slices=max_slices, timeout=timeout,
                            stop=stop, on_output=None if printer is None else
                            lambda job, data: printer.feed(labels[id(job)], data))
            stopped = rep.stopped
        if printer is not None:
            printer.flush()
        rows = [_row(n, j) for n, j in zip(names, jobs)]
    ok = stopped is None and all(j.ended == "exit" for j in jobs)
    for i, row in enumerate(rows):
        if check_solo:
            row["solo"] = alone_rows[i] if i < len(alone_rows) else None
            row["matches_solo"] = i < len(alone) and jobs[i].outcome() == alone[i].outcome()
            ok = ok and row["matches_solo"]
    lines = []
    for row in rows:
        lines.append(f"== {row['path']} ({row['machine']}): {_ending(row)}, {row['slices']} slices"
                     + ("" if not check_solo else ", same as alone" if row["matches_solo"] else ", DIFFERS from alone"))
        if stream is None and row["output"]:
            lines.append(row["output"].rstrip("\n"))
    if rep is not None:
        kept = rep.slice_us()
        lines.append(f"{len(rows)} guests, {rep.slices} slices of {slice_us:g} us asked ({order}"
                     + (f"; kept p50 {kept['p50']:.0f} us, p99 {kept['p99']:.0f} us" if kept["n"] else "")
                     + f"), {rep.switches} switches over the {', '.join(rep.paths) or 'no'} path; per switch "
                     f"{rep.per_switch()['ioctl_us']:.1f} us in KVM ioctls")
    unfinished = sum(1 for r in rows if r["ended"] == "unfinished")
    why_stopped = {"budget": f"the budget of {max_slices} slices ran out",
                   "timeout": f"the timeout of {timeout:g} s ran out" if timeout else "the timeout ran out",
                   "interrupted": "interrupted"}
    if stopped:
        lines.append(f"stopped: {why_stopped[stopped]}; {unfinished} of {len(rows)} guests did not finish")
    return {"platform": plat, "slice_us": slice_us, "order": order, "check_solo": check_solo, "timeout": timeout,
            "ok": ok, "stopped": stopped, "guests": rows,
            "run": {k: v for k, v in rep.as_dict().items() if k != "jobs"} if rep is not None else None,
            "text": "\n".join(lines)}
