"""Preemptive time slicing of real guests on one KVM vCPU.

Each slice: the timer preempts the running guest (or it exits on a device
register access); before another machine runs, the vCPU's state is pulled into
the PCPU register file, ``switch_context`` saves it through the context store
(or the fallback path) and loads the next machine, and the result is pushed
into the vCPU.  A guest never notices: its output and exit status equal its
solo run's.

Guests are the C core's built-in programs (by name) or any freestanding C
program built with ``pyvswitch guest build`` (an ELF path, or its bytes).
"""
from __future__ import annotations

import errno
import os
import random
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ..api import Hypervisor, Machine
from ..errors import check
from ..guest import GuestImage
from ..errors import DEFAULT_SLICE_US, SLICE_US_RANGE, check_number, check_uint
from ..hw import VswError, ffi, lib
from ..guest import loader
from ..guest.layout import DEFAULT_MEM, PAGE_2M, regions_of
from ..hw.kvm import (
    REG_CLOCK,
    REG_CONSOLE_ADDR,
    REG_CONSOLE_LEN,
    REG_DONE,
    REG_EXIT,
    REG_FAULT,
    REG_PROGRESS,
    REG_RESULT_HI,
    REG_RESULT_LO,
    KvmExit,
    KvmPcpu,
    KvmVcpu,
)

MAX_OUTPUT = 1 << 20            # console bytes a guest may print
C_LOOP_SLICES = 4096            # slices the C loop runs per call at most ...
C_LOOP_NS = 50_000_000          # ... and wall ns: Python (Ctrl-C, the budget) gets a turn at least this often

#: CPU exception vectors by name (Intel SDM vol. 3, 6.3.1)
EXCEPTIONS = {0: "divide error", 1: "debug", 2: "NMI", 3: "breakpoint", 4: "overflow", 5: "bound range exceeded",
              6: "invalid opcode", 7: "device not available", 8: "double fault", 10: "invalid TSS",
              11: "segment not present", 12: "stack fault", 13: "general protection", 14: "page fault",
              16: "x87 floating-point error", 17: "alignment check", 18: "machine check",
              19: "SIMD floating-point exception", 20: "virtualization exception", 21: "control protection"}


@dataclass(frozen=True)
class Crash:
    """How a guest died: a CPU exception (its kind and vector, the instruction's
    RIP, the error code, and for a page fault the address), or a triple fault
    (KVM's shutdown exit; the vCPU state is gone, so no RIP)."""

    kind: str
    vector: int | None = None
    rip: int | None = None
    error_code: int | None = None
    address: int | None = None          # page faults: CR2, the address touched

    def __str__(self) -> str:
        out = self.kind + (f" at rip {self.rip:#x}" if self.rip is not None else "")
        if self.address is not None:
            out += f", address {self.address:#x} ({self._access()})"
        elif self.error_code:
            out += f", error code {self.error_code:#x}"
        return out

    def _access(self) -> str:
        e = self.error_code or 0
        # without EFER.NXE the CPU sets no fetch bit (0x10); a fetch faults at its own RIP
        what = "instruction fetch" if e & 0x10 or self.address == self.rip else "write" if e & 2 else "read"
        return f"{what}, {'protection violation' if e & 1 else 'not mapped'}"

    def as_dict(self) -> dict[str, Any]:
        return {"crash": self.kind, "vector": self.vector, "rip": self.rip, "error_code": self.error_code,
                "address": self.address, "text": str(self)}


@dataclass
class Job:
    machine: Machine
    program: str
    rounds: int = 0
    seed: int = 0
    image: GuestImage | None = None     # None: a built-in program
    base: int = 0                       # its region of guest memory
    mem_bytes: int = 0
    result: int | None = None           # built-in programs: their 64-bit result
    exit_status: int | None = None      # C guests: main()'s return value or vsw_exit()'s
    output: bytearray = field(default_factory=bytearray)
    progress: list[int] = field(default_factory=list)
    slices: int = 0
    clock_ns: int = 0                   # time inside KVM_RUN: the guest's own virtual clock
    crash: Crash | None = None          # a CPU exception or triple fault ended it
    error: str | None = None            # it broke the device ABI (console out of bounds, ...)
    linux: Any = None                   # a Linux program's system-call server (pyvswitch.kvm.linux)
    syscalls: int = 0                   # system calls it made
    linux_served: Any = None            # (return RIP, state) of the call served last, until it runs on
    linux_retried: Any = None           # (return RIP, fresh-vCPU setting before) of a call resumed afresh
    _lo: int = 0
    _hi: int = 0
    _console: int = 0

    @property
    def done(self) -> bool:
        """It ended: returned, called vsw_exit (or wrote DONE), crashed, or broke the ABI."""
        return self.ended is not None

    @property
    def ended(self) -> str | None:
        """How it ended: "exit" (an exit status; a built-in program's result), "crash",
        "error"; None while it has not (it may still be runnable, or was stopped)."""
        if self.crash is not None:
            return "crash"
        if self.error is not None:
            return "error"
        if self.exit_status is not None or self.result is not None:
            return "exit"
        return None

    @property
    def status(self) -> "int | dict[str, Any] | None":
        """The exit status, the crash as a dict, or None (unfinished, or an error)."""
        return self.crash.as_dict() if self.crash is not None else self.exit_status

    def __repr__(self) -> str:
        how = {"exit": f"exit status {self.exit_status}" if self.image is not None else f"result {self.result!r}",
               "crash": f"crashed: {self.crash}", "error": f"error: {self.error}", None: "unfinished"}[self.ended]
        return (f"Job({self.machine.name}, {self.program}, {how}, {self.slices} slices, "
                f"{len(self.output)} bytes of output)")

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def outcome(self) -> tuple[Any, ...]:
        """What must equal the solo run's: output, exit status, result, error, crash."""
        return bytes(self.output), self.exit_status, self.result, self.error, self.crash


#: A scheduling policy: the runnable jobs and the one that ran last -> the next.
Policy = Callable[[Sequence[Job], Union[Job, None]], Job]


@dataclass
class RunReport:
    jobs: list[Job]
    slices: int = 0
    switches: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    guest_ns: int = 0               # inside KVM_RUN
    pull_ns: int = 0                # KVM_GET_* into the register file
    push_ns: int = 0                # the register file into KVM_SET_*
    switch_ns: int = 0              # switch_context: pyvswitch's own work
    faults: int = 0                 # switches refused by an injected mover fault (nothing changed)
    save_bursts: int = 0
    load_bursts: int = 0
    paths: dict[str, int] = field(default_factory=dict)
    slice_asked_ns: int = 0
    slice_ns: "array[int]" = field(default_factory=lambda: array("q"))  # wall ns of each slice its time ended

    def slice_us(self) -> dict[str, float | None]:
        """The slice asked for beside the p50 and p99 of the slices kept (those the
        time ended, not the guest), in microseconds."""
        kept = sorted(self.slice_ns)

        def pct(q: float) -> float | None:
            return kept[min(len(kept) - 1, int(q * len(kept)))] / 1000 if kept else None
        return {"asked": self.slice_asked_ns / 1000, "p50": pct(0.5), "p99": pct(0.99), "n": len(kept)}

    stopped: str | None = None      # why it stopped with guests unfinished: "budget", "timeout", "interrupted"
    wall_ns: int = 0

    @property
    def finished(self) -> bool:
        """Every job ended (one way or another)."""
        return all(j.done for j in self.jobs)

    @property
    def ok(self) -> bool:
        """Every job ended by returning or vsw_exit (built-in programs: their result)."""
        return all(j.ended == "exit" for j in self.jobs)

    def __repr__(self) -> str:
        ends: dict[str, int] = {}
        for j in self.jobs:
            ends[j.ended or "unfinished"] = ends.get(j.ended or "unfinished", 0) + 1
        return (f"RunReport({len(self.jobs)} jobs: " + ", ".join(f"{n} {k}" for k, n in ends.items())
                + f"; {self.slices} slices, {self.switches} switches"
                + (f"; stopped: {self.stopped}" if self.stopped else "") + ")")

    def per_switch(self) -> dict[str, float]:
        n = max(1, self.switches)
        return {"ioctl_us": (self.pull_ns + self.push_ns) / n / 1000, "pyvswitch_us": self.switch_ns / n / 1000,
                "N": self.save_bursts / n, "M": self.load_bursts / n}

    def as_dict(self) -> dict[str, Any]:
        return {"slices": self.slices, "switches": self.switches, "faults": self.faults, "exits": self.exits,
                "paths": self.paths, "slice_us": self.slice_us(), "finished": self.finished, "ok": self.ok,
                "stopped": self.stopped, "wall_ms": self.wall_ns / 1e6,
                "guest_ms": self.guest_ns / 1e6, "per_switch": self.per_switch(),
                "jobs": [{"machine": j.machine.name, "program": j.program, "rounds": j.rounds, "seed": j.seed,
                          "result": j.result, "exit_status": j.status, "ended": j.ended or "unfinished",
                          "output": j.text, "progress": len(j.progress), "slices": j.slices, "error": j.error}
                         for j in self.jobs]}


def policy_of(order: "str | Policy", rng_seed: int) -> Policy:
    """``"round-robin"``, ``"random"`` (seeded) or a callable of one's own."""
    if callable(order):
        return order
    if order == "random":
        rng = random.Random(rng_seed)
        return lambda runnable, last: rng.choice(runnable)
    if order == "round-robin":
        turn = [0]

        def round_robin(runnable: Sequence[Job], last: Job | None) -> Job:
            turn[0] += 1
            return runnable[(turn[0] - 1) % len(runnable)]
        return round_robin
    raise VswError(errno.EINVAL, f"order is round-robin, random or a callable, not {order!r}")


class Scheduler:
    """Runs guest programs preemptively on the KVM vCPU behind ``pcpu``.

    In round-robin order the slices and switches run in C (``vsw_kvm_loop``: the
    switch is the API's own C switch, through the PCPU's gate); Python sees the
    guests' device accesses, refused switches and the ends.  In any other order
    each slice - the switch (pull, store, push) and the run - is one call of the
    same C loop.  ``c_loop = False``
    keeps every slice in Python (the reference the C loop is tested against)."""

    c_loop: bool = True

    def __init__(self, hv: Hypervisor, pcpu: int = 0) -> None:
        if not isinstance(hv, Hypervisor):
            raise VswError(errno.EINVAL, f"a Scheduler runs on a Hypervisor (pyvswitch.open()), not {type(hv).__name__}")
        p = hv.pcpu(pcpu)
        if not isinstance(p, KvmPcpu):
            raise VswError(errno.ENODEV, f"pcpu{pcpu} of platform {hv.platform.name} is not a KVM vCPU "
                                         "(use a platform with a vsw,pcpu-kvm device, e.g. reference-kvm)")
        self.hv, self.index, self.pcpu, self.vcpu = hv, pcpu, p, p.vcpu
        self.jobs: list[Job] = []
        self.linux_fresh_vcpu = False       # Linux guests' calls resume on a fresh vCPU (pyvswitch.kvm.linux)
        self._on_output: Callable[[Job, bytes], None] | None = None
        self._holds: Machine | None = None  # during a run: the machine whose state the vCPU holds

    def add(self, machine: Machine, program: "str | os.PathLike[str] | bytes | GuestImage", rounds: int = 20,
            seed: int = 1, *, mem_bytes: int | None = None, xcr0: int | None = None,
            cr4: int | None = None) -> Job:
        """Loads a program into the machine's own memory and sets it at its entry point:
        a built-in program by name (``rounds``, ``seed``), or an ELF guest (a path, its
        bytes or a GuestImage; ``mem_bytes`` of address space, ``DEFAULT_MEM`` by default).
        ``xcr0`` and ``cr4`` override what the guest gets (default: the host's x87, SSE,
        AVX, AVX-512 and PKRU state, with OSXSAVE)."""
        if not isinstance(machine, Machine) or machine.hypervisor is not self.hv:
            raise VswError(errno.EINVAL, f"{machine!r} is not a machine of this scheduler's hypervisor")
        if not isinstance(program, (str, bytes, os.PathLike, GuestImage)):
            raise VswError(errno.EINVAL, f"a program is a built-in name, an ELF path, its bytes or a GuestImage, "
                                         f"not {type(program).__name__}")
        check_uint(rounds, "rounds", 64, minimum=1)        # registers rdi and rsi take them
        check_uint(seed, "seed", 64)
        for what, v in (("mem_bytes", mem_bytes), ("xcr0", xcr0), ("cr4", cr4)):
            if v is not None:
                check_uint(v, what, 64)
        if any(j.machine is machine for j in self.jobs):
            raise VswError(errno.EEXIST, f"{machine.name} already has a program")
        job = load_program(self.vcpu, machine, program, rounds, seed, mem_bytes=mem_bytes, xcr0=xcr0, cr4=cr4)
        self.jobs.append(job)
        return job

    def add_linux(self, machine: Machine, program: "str | os.PathLike[str] | bytes", argv: Sequence[str] | None = None,
                  envp: Sequence[str] = (), **kw: Any) -> Job:
        """Loads an unmodified static Linux program (``pyvswitch.kvm.linux.load_linux``:
        ``ro_dir``, ``stdin``, ``seed``, ``mem_bytes``)."""
        from .linux import load_linux
        if any(j.machine is machine for j in self.jobs):
            raise VswError(errno.EEXIST, f"{machine.name} already has a program")
        job = load_linux(self.vcpu, machine, program, argv, envp, **kw)
        self.jobs.append(job)
        return job

    def run(self, slice_us: float = DEFAULT_SLICE_US, order: "str | Policy" = "round-robin", rng_seed: int = 0,
            max_slices: int = 1_000_000, *, timeout: float | None = None, stop: Callable[[], bool] | None = None,
            on_output: Callable[[Job, bytes], None] | None = None) -> RunReport:
        """Until every job is done: slices of ``slice_us`` microseconds, the next job
        chosen by ``order`` (round-robin, random or a callable), switching through
        pyvswitch between machines.  It stops early, with the report's ``stopped``
        saying why, after ``max_slices`` ("budget"), ``timeout`` seconds of wall
        time ("timeout"), or when ``stop()`` is true ("interrupted"; checked
        between slices, e.g. set from a SIGINT handler).  ``on_output(job, bytes)``
        sees each guest's console output as it writes it."""
        check_number(slice_us, "slice_us", *SLICE_US_RANGE)
        check_uint(max_slices, "max_slices", 63)
        check_uint(rng_seed, "rng_seed", 64)
        if timeout is not None:
            check_number(timeout, "timeout (seconds)", 1e-6, 1e9)
        pick = policy_of(order, rng_seed)
        # one run at a time on a vCPU: another Scheduler's pulls, pushes and slices between
        # this one's would run its guests in the state of this one's
        if not self.vcpu.runner.acquire(blocking=False):
            raise VswError(errno.EBUSY, f"pcpu{self.index}'s vCPU is running another Scheduler's guests (or this "
                                        "one's, from a callback); one run at a time on a vCPU: start this one "
                                        "once that has returned")
        self._holds = None
        try:
            return self._run(slice_us, order, pick, max_slices, timeout, stop, on_output)
        except BaseException:
            self._rescue()
            raise
        finally:
            self.vcpu.runner.release()

    def _rescue(self) -> None:
        """A run that raises (stop() or on_output raised, Ctrl-C, a refusal) leaves the
        register file holding the truth, as one that returns does: the state the
        vCPU ran on is pulled, if it is the machine's on the PCPU (not halfway
        through a switch), so the next run goes on from there instead of replaying
        the slices since the last pull.  Best effort: the exception says what broke."""
        holds, self._holds = self._holds, None
        try:
            with self.hv.using():
                if holds is None or self.hv.running(self.index) is not holds:
                    return
                while self.vcpu.complete() is not None:     # its last access ends in its guest
                    pass
                self.vcpu.pull(self.pcpu)
        except VswError:
            pass

    def _run(self, slice_us: float, order: "str | Policy", pick: Policy, max_slices: int, timeout: float | None,
             stop: Callable[[], bool] | None, on_output: Callable[[Job, bytes], None] | None) -> RunReport:
        fast = self.c_loop and order == "round-robin"
        slice_ns = int(slice_us * 1000)
        floor = self.vcpu.shortest_slice_ns()
        if slice_ns < floor:
            raise VswError(errno.EINVAL, f"a {slice_us:g} us slice is shorter than this host can keep: the shortest "
                                         f"is {-(-floor // 1000)} us (measured: {self.vcpu.kick_report()})")
        rep = RunReport(self.jobs, slice_asked_ns=slice_ns)
        self._on_output = on_output
        t_start = time.perf_counter_ns()
        deadline = None if timeout is None else t_start + int(timeout * 1e9)
        # whose state the vCPU holds: the machine on the PCPU, if it is a job (pushed
        # afresh, in case its registers were written since the last run)
        running = self.hv.running(self.index)
        on_vcpu: Job | None = next((j for j in self.jobs if j.machine is running), None)
        if on_vcpu is not None:
            with self.hv.using():
                self._settle(self.vcpu.push)
        it, due = 0, False          # due: on_vcpu has had its slice
        while it < max_slices:
            self._check_holds()
            self._gone()
            runnable = [j for j in self.jobs if not j.done]
            if not runnable:
                break
            if stop is not None and stop():
                rep.stopped = "interrupted"
                break
            if deadline is not None and time.perf_counter_ns() >= deadline:
                rep.stopped = "timeout"
                break
            # the vCPU is the hypervisor's hardware outside a PCPU's gate: close() waits for the slice
            with self.hv.using():
                if fast and on_vcpu in runnable and all(j.machine._c is not None for j in runnable):
                    left = C_LOOP_NS if deadline is None else deadline - time.perf_counter_ns()
                    on_vcpu, due, used = self._loop(runnable, on_vcpu, due, slice_ns, rep, max_slices - it,
                                                    max(1, min(C_LOOP_NS, left)), stop)
                    it += used
                    continue
                it += 1
                job = pick(runnable, on_vcpu)
                if job not in runnable:
                    raise VswError(errno.EINVAL, f"the policy chose {job!r}, which is not runnable")
                if self.c_loop and on_vcpu is not None and on_vcpu.machine._c is not None \
                        and job.machine._c is not None:
                    # any order: the switch and the slice are one C call (the slice loop, one slice)
                    pair = [job] if job is on_vcpu else [on_vcpu, job]
                    left = C_LOOP_NS if deadline is None else deadline - time.perf_counter_ns()
                    on_vcpu, due, used = self._loop(pair, on_vcpu, job is not on_vcpu, slice_ns, rep, 1,
                                                    max(1, min(C_LOOP_NS, left)), stop)
                    it += max(0, used - 1)
                    continue
                if job is not on_vcpu:
                    owner = self._switch(on_vcpu, job, rep)
                    if owner is None:
                        continue            # refused before anything ran: try again
                    job = on_vcpu = owner
                self._slice(job, slice_ns, rep)
                due = True
        else:
            if any(not j.done for j in self.jobs):
                rep.stopped = "budget"
        if on_vcpu is not None:             # leave the register file holding the truth
            self._check_holds()
            with self.hv.using():
                self._settle(self.vcpu.pull)
        rep.wall_ns = time.perf_counter_ns() - t_start
        return rep

    def _loop(self, runnable: list[Job], on_vcpu: Job, due: bool, slice_ns: int, rep: RunReport,
              budget: int, max_ns: int = C_LOOP_NS, stop: Callable[[], bool] | None = None) -> tuple[Job, bool, int]:
        """Round-robin slices in C from ``on_vcpu`` (``due``: it has had its slice)
        for ``budget`` slices at most, or ``max_ns`` of wall time (what is left of
        the run's timeout, so the C loop keeps it to the slice as the Python loop
        does).  A guest's device access stops the C loop; Python handles it and
        the C loop resumes - completing the access in its guest, then the rest of
        that slice, then on (with a ``stop`` to ask between slices: only to that
        slice's end) - so no slice runs in Python.  Returns the job on the vCPU,
        whether it has had its slice, and the slices used."""
        n = len(runnable)
        current, used = runnable.index(on_vcpu), 0
        # after an exit: when that slice started (perf_counter ns: the time Python spends on
        # the exit is the guest's slice too, as the Python loop counts it), and its access to complete
        started, complete = 0, False
        end = time.perf_counter_ns() + max_ns
        while True:
            self._check_holds()
            ctxs = [j.machine._c for j in runnable]
            if any(c is None for c in ctxs):    # a migration took the handles just now: the Python loop's turn
                if complete:                    # ... once the slice an exit stopped is finished, in Python
                    self._slice(runnable[current], slice_ns, rep, used_ns=time.perf_counter_ns() - started,
                                handled=True)
                    return runnable[current], True, used + 1
                return runnable[current], due, used
            cap = 1 if complete and stop is not None else min(budget - used, C_LOOP_SLICES)
            now = time.perf_counter_ns()
            L, r, took = self._c_loop(runnable, ctxs, current, due and not complete, complete,
                                      now - started if complete else 0, slice_ns, cap, max(1, end - now), rep)
            back = time.perf_counter_ns()
            self._check_holds()
            job = runnable[L.current]
            if r < 0:
                raise VswError(-r, f"the slice loop on pcpu{self.index} failed running {job.machine.name}: "
                                   f"{os.strerror(-r)}")
            if L.stopped == lib.VSW_KVM_STOP_EXIT:
                used += L.slices
                x = self.vcpu._last(L.exit)
                self._count(job, x, rep)
                self._device(job, x)
                if not job.done and all(not j.machine.destroyed and j.machine._c is not None for j in runnable):
                    current, due, complete, started = L.current, False, True, back - L.used_ns
                    continue                    # back into C: the access completes there, the slice goes on
                # it ended (or a machine went): the slice is finished here, as the Python loop would
                self._slice(job, slice_ns, rep, used_ns=time.perf_counter_ns() - back + L.used_ns, handled=True)
                return job, True, used + 1
            used += L.slices
            if L.stopped == lib.VSW_KVM_STOP_UNPUSHED:
                self._settle(self.vcpu.push, L.r)
                return job, False, max(1, used)
            if L.stopped == lib.VSW_KVM_STOP_REFUSED:
                if -L.r == errno.EIO:           # an injected mover fault: nothing changed, the job runs on
                    rep.faults += 1
                    return job, False, used + 1
                nxt, due, _ = self._refused(runnable, L.current, job, rep)
                return nxt, due, used + 1
            return job, True, max(1, used)

    def _c_loop(self, runnable: list[Job], ctxs: list[Any], current: int, switch_first: bool, complete: bool,
                resume_ns: int, slice_ns: int, cap: int, max_ns: int, rep: RunReport) -> tuple[Any, int, Any]:
        """One call of the C slice loop; what ran is counted, whatever stopped it."""
        n = len(runnable)
        c_ctxs = ffi.new("struct vsw_ctx *[]", ctxs)
        own = ffi.new("uint64_t[]", n)
        per = ffi.new("uint64_t[]", n)
        took = array("q", bytes(8 * cap))
        L = ffi.new("struct vsw_kvm_loop *", {"slice_ns": slice_ns, "max_slices": cap, "max_ns": max_ns,
                                              "switch_first": int(switch_first), "complete_first": int(complete),
                                              "resume_ns": 0 if switch_first else resume_ns,
                                              "took_ns": ffi.from_buffer("uint64_t[]", took),
                                              "own_ns": own, "slices_of": per})
        self._holds = None                      # unknown until the loop says where it stopped
        with self.vcpu._lock:                   # close() from another thread waits for this turn
            r = lib.vsw_kvm_loop(self.vcpu.handle, self.pcpu.handle, c_ctxs, n, current, L)
        for i, j in enumerate(runnable):
            j.clock_ns += own[i]
            j.slices += per[i]
        rep.slices += L.slices
        rep.guest_ns += L.guest_ns
        rep.pull_ns += L.pull_ns
        rep.push_ns += L.push_ns
        rep.switch_ns += L.switch_ns
        rep.switches += L.switches
        rep.save_bursts += L.save_units
        rep.load_bursts += L.load_units
        for kind, name in ((lib.VSW_PATH_STORE, "store"), (lib.VSW_PATH_MEMORY, "memory")):
            if L.paths[kind]:
                rep.paths[name] = rep.paths.get(name, 0) + L.paths[kind]
        if L.preempted:
            rep.exits["preempted"] = rep.exits.get("preempted", 0) + L.preempted
            rep.slice_ns.extend(took[:L.preempted])
        # whose state the vCPU holds: the PCPU's machine, unless the loop switched and could not push
        self._holds = None if L.stopped == lib.VSW_KVM_STOP_UNPUSHED else runnable[L.current].machine
        return L, r, took

    def _check_holds(self) -> None:
        """ESRCH, ending the run, when the PCPU no longer runs the machine whose state
        the vCPU holds: a caller other than this scheduler (another thread, or a
        callback of this run) switched it.  Then the vCPU's state is no machine's on
        the PCPU: nothing of it is pulled (the machine switched in keeps its own)."""
        holds = self._holds
        if holds is None:
            return
        now = self.hv.running(self.index)
        if now is not holds:
            self._holds = None
            raise VswError(errno.ESRCH, f"pcpu{self.index} runs {now.name if now is not None else 'nothing'}, not "
                                        f"{holds.name}, whose guest state its vCPU holds: it was switched by a caller "
                                        "other than this Scheduler during its run (while a Scheduler runs on a "
                                        f"PCPU, only it switches that PCPU); {holds.name} lost its current slice")

    def _gone(self) -> None:
        """A job whose machine was destroyed (destroy_vm while it waited its turn)
        has ended: the others run on."""
        for j in self.jobs:
            if not j.done and j.machine.destroyed:
                j.error = f"{j.machine.name} was destroyed during the run"

    def _settle(self, op: Callable[[Any], None], r: int = -errno.EAGAIN) -> None:
        """``op(pcpu)`` (pull or push) once the PCPU is open: -EAGAIN is a migration
        (or another thread) holding it, waited out under the API's one retry rule
        (``Migration.retry``: the gate, EBADF/ENODEV from it); any other refusal is raised."""
        if r != -errno.EAGAIN:
            check(r, f"{op.__name__} on pcpu{self.index}")

        def attempt() -> int:
            try:
                op(self.pcpu)
            except VswError as exc:
                if exc.errno != errno.EAGAIN:
                    raise
                return -errno.EAGAIN
            if op == self.vcpu.push:            # the vCPU now holds the state of the PCPU's machine
                self._holds = self.hv.running(self.index)
            return 0
        self.hv.migration.retry(attempt)

    def _refused(self, runnable: list[Job], cur: int, on_vcpu: Job, rep: RunReport) -> tuple[Job, bool, int]:
        """The switch to the next job, the API's way (it waits out a migration, says what
        refused it); the job then on the vCPU and whether it has had its slice."""
        nxt = runnable[(cur + 1) % len(runnable)]
        owner = None if nxt is on_vcpu else self._switch(on_vcpu, nxt, rep)
        if owner is None or owner is on_vcpu:
            return on_vcpu, False, 1
        return owner, False, 1

    def _switch(self, on_vcpu: Job | None, job: Job, rep: RunReport) -> Job | None:
        """Pull, switch_context, push; the job that now owns the vCPU (the old one -
        None before any ran - when an injected mover fault refused the switch:
        nothing changed)."""
        if on_vcpu is not None:
            t = time.perf_counter_ns()
            self._settle(self.vcpu.pull)
            rep.pull_ns += time.perf_counter_ns() - t
        cur = self.hv.running(self.index)
        if cur is None:
            raise VswError(errno.ENODEV, f"pcpu{self.index} runs no machine (its contexts are parked)")
        t = time.perf_counter_ns()
        try:
            s = self.hv.switch_context(cur, job.machine, self.index)
            self._holds = None              # the vCPU holds the old machine's state until the push
        except VswError as exc:
            rep.switch_ns += time.perf_counter_ns() - t
            if job.machine.destroyed:       # destroyed since it was picked: it ends, the others go on
                self._gone()
                return on_vcpu if on_vcpu is not None and not on_vcpu.done else None
            if exc.errno != errno.EIO:
                raise
            rep.faults += 1
            return on_vcpu
        rep.switch_ns += time.perf_counter_ns() - t
        rep.switches += 1
        rep.save_bursts += s.save_bursts
        rep.load_bursts += s.load_bursts
        rep.paths[s.path] = rep.paths.get(s.path, 0) + 1
        t = time.perf_counter_ns()
        self._settle(self.vcpu.push)
        rep.push_ns += time.perf_counter_ns() - t
        return job

    def _slice(self, job: Job, slice_ns: int, rep: RunReport, first: KvmExit | None = None,
               used_ns: int = 0, handled: bool = False) -> None:
        """Runs ``job`` for a slice of ``slice_ns`` wall time.  A device access is
        handled and the guest goes on in the same slice; the slice ends when its time
        is up, or the job is done.  Before it ends, the guest's last access is
        completed inside it (a split access part by part), so nothing of it is
        left for the vCPU's next guest."""
        t0 = time.perf_counter_ns() - used_ns
        preempted = False
        if first is not None:               # the C loop's slice, stopped at this exit
            self._count(job, first, rep)
            self._device(job, first)
        while (first is None and not handled) or not job.done:
            first = None
            left = slice_ns - (time.perf_counter_ns() - t0)
            if left <= 0:
                preempted = True            # its time went in device accesses
                break
            x = self.vcpu.run(left)
            self._count(job, x, rep)
            if x.reason == "preempted":
                preempted = True
                break
            self._device(job, x)
            if job.done:
                break
        while (y := self.vcpu.complete()) is not None:
            self._count(job, y, rep)
            self._device(job, y)
        took = time.perf_counter_ns() - t0
        rep.slices += 1
        job.slices += 1
        if preempted:
            rep.slice_ns.append(took)

    @staticmethod
    def _count(job: Job, x: KvmExit, rep: RunReport) -> None:
        rep.guest_ns += x.run_ns
        job.clock_ns += x.run_ns
        rep.exits[x.reason] = rep.exits.get(x.reason, 0) + 1

    def _device(self, job: Job, x: KvmExit) -> None:
        """What a guest's device access or stop means for its job; a Linux guest
        that it ends gives back the host files it held (its report stays)."""
        try:
            self._device_exit(job, x)
        finally:
            if job.linux is not None and job.done:
                job.linux.close()

    def _device_exit(self, job: Job, x: KvmExit) -> None:
        """What a guest's device access or stop means for its job (a read is
        answered here; it reaches the guest as its access completes)."""
        if job.done:
            return                      # what is left of its last access: completed, dropped
        if job.linux is not None:
            from .linux import serve
            if serve(self, job, x):
                return
        if x.reason == "shutdown":
            job.crash = Crash("triple fault")
            self.vcpu.reset()           # a triple fault leaves the vCPU undefined; the others go on
        elif x.reason in ("other", "hlt"):
            job.error = f"guest stopped: {x.reason} (KVM exit {x.kvm_reason}); a fault, or a jump to nowhere"
        if x.reason == "bad_io":
            job.error = (f"device access refused: {x.describe()} is not one of the device's registers at its "
                         f"width and direction (vsw_guest_abi.h)")
            return
        if x.reason != "io":
            return
        if not x.write:
            self.vcpu.complete_read(job.clock_ns if x.reg == REG_CLOCK else 0)
            return
        reg, data = x.reg, x.data
        if reg == REG_PROGRESS:
            job.progress.append(data & 0xFFFFFFFF)
        elif reg == REG_RESULT_LO:
            job._lo = data & 0xFFFFFFFF
        elif reg == REG_RESULT_HI:
            job._hi = data & 0xFFFFFFFF
        elif reg == REG_DONE:
            if job.image is None:
                job.result = job._hi << 32 | job._lo
            else:                       # a C guest: finished, with the value written as its exit status
                job.exit_status = (data & 0xFFFFFFFF) - (1 << 32 if data & 0x80000000 else 0)
        elif reg == REG_CONSOLE_ADDR:
            job._console = data
        elif reg == REG_CONSOLE_LEN:
            n, addr = data & 0xFFFFFFFF, job._console
            if not (PAGE_2M <= addr and addr + n <= job.mem_bytes) or len(job.output) + n > MAX_OUTPUT:
                job.error = f"console write of {n} bytes at {addr:#x} is outside the guest or over {MAX_OUTPUT} bytes"
            else:
                text = self.vcpu.memory[job.base + addr:job.base + addr + n]
                job.output += text
                if self._on_output is not None and n:
                    # if it raises, run()'s rescue ends the write in its guest and pulls - only into
                    # the machine whose state the vCPU holds, even if the callback switched the PCPU
                    self._on_output(job, bytes(text))
        elif reg == REG_EXIT:
            job.exit_status = (data & 0xFFFFFFFF) - (1 << 32 if data & 0x80000000 else 0)
        elif reg == REG_FAULT and job.image is not None:
            f = loader.fault_frame(self.vcpu.memory, job.base)
            if f["vector"] != data & 0xFFFFFFFF or f["cs"] & 3 != 3:
                job.error = f"wrote the FAULT register ({data:#x}) from its own code; only the VMM's handlers may"
            else:
                v = f["vector"]
                job.crash = Crash(EXCEPTIONS.get(v, f"exception {v}"), v, f["rip"],
                                  f["error_code"] if v in loader.ERROR_CODE else None,
                                  f["cr2"] if v == 14 else None)


def load_program(vcpu: KvmVcpu, machine: Machine, program: "str | os.PathLike[str] | bytes | GuestImage",
                 rounds: int = 20, seed: int = 1, *, mem_bytes: int | None = None, xcr0: int | None = None,
                 cr4: int | None = None) -> Job:
    """Puts a guest program into the machine's own guest memory and sets the
    machine (saved, not running) at its entry point, in its own address space."""
    if machine.pcpu is not None:
        raise VswError(errno.EBUSY, f"{machine.name} is running; load programs into saved machines")
    have = vcpu.info["xsave_components"]
    xcr0 = have & loader.GUEST_XCR0 if xcr0 is None else xcr0
    if not isinstance(xcr0, int) or xcr0 & 0x3 != 0x3 or xcr0 & ~have:
        raise VswError(errno.EINVAL, f"xcr0 {xcr0!r} must hold x87 and SSE (0x3) and only components this host "
                                     f"has ({have:#x})")
    cr4 = loader.CR4 if cr4 is None else cr4
    if isinstance(program, str) and program in loader.programs():
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise VswError(errno.EINVAL, f"rounds must be a positive integer, got {rounds!r}")
        base = regions_of(vcpu).get(machine.id, PAGE_2M)
        loader.load(vcpu.memory, base, program)
        machine.set_state(loader.initial_state(base, rounds, seed, xcr0, cr4))
        return Job(machine, program, rounds, seed, base=base, mem_bytes=PAGE_2M)
    image = program if isinstance(program, GuestImage) else GuestImage.read(program)
    if image.linux is not None:         # built with --libc musl: a static Linux program
        from .linux import load_linux
        return load_linux(vcpu, machine, image.linux, mem_bytes=mem_bytes, xcr0=xcr0, cr4=cr4)
    size = DEFAULT_MEM if mem_bytes is None else mem_bytes
    if isinstance(size, int) and not isinstance(size, bool):
        loader.check_image(image, size)         # before a region is taken: a refusal changes nothing
    base = regions_of(vcpu).get(machine.id, size)
    loader.load_image(vcpu.memory, vcpu.clear, base, size, image)
    machine.set_state(loader.image_state(base, size, image, xcr0, cr4))
    return Job(machine, image.name, image=image, base=base, mem_bytes=size)


def solo(hv: Hypervisor, machine: Machine, program: "str | os.PathLike[str] | bytes | GuestImage", rounds: int = 20,
         seed: int = 1, **kw: Any) -> Job:
    """The reference: the program alone, never preempted."""
    sched = Scheduler(hv)
    job = sched.add(machine, program, rounds, seed, **kw)
    sched.run(slice_us=10_000_000)
    return job
