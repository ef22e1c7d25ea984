"""Preemptive time slicing of real guests on one KVM vCPU.

Each slice: the timer preempts the running guest (or it exits on a device
register write); before another machine runs, the vCPU's state is pulled into
the PCPU register file, ``switch_context`` saves it through the context store
(or the fallback path) and loads the next machine, and the result is pushed
into the vCPU.  A guest never notices: its result equals its solo run's.
"""
from __future__ import annotations

import errno
import random
import time
from dataclasses import dataclass, field
from typing import Any

from ..api import Hypervisor, Machine
from ..hw import VswError
from . import guests
from .vcpu import KvmPcpu, KvmVcpu


@dataclass
class Job:
    machine: Machine
    program: str
    rounds: int
    seed: int
    result: int | None = None
    progress: list[int] = field(default_factory=list)
    slices: int = 0
    error: str | None = None
    _lo: int = 0
    _hi: int = 0

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


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

    def per_switch(self) -> dict[str, float]:
        n = max(1, self.switches)
        return {"ioctl_us": (self.pull_ns + self.push_ns) / n / 1000, "pyvswitch_us": self.switch_ns / n / 1000,
                "N": self.save_bursts / n, "M": self.load_bursts / n}

    def as_dict(self) -> dict[str, Any]:
        return {"slices": self.slices, "switches": self.switches, "faults": self.faults, "exits": self.exits,
                "paths": self.paths,
                "guest_ms": self.guest_ns / 1e6, "per_switch": self.per_switch(),
                "jobs": [{"machine": j.machine.name, "program": j.program, "rounds": j.rounds, "seed": j.seed,
                          "result": j.result, "progress": len(j.progress), "slices": j.slices, "error": j.error}
                         for j in self.jobs]}


class Scheduler:
    """Runs guest programs preemptively on the KVM vCPU behind ``pcpu``."""

    def __init__(self, hv: Hypervisor, pcpu: int = 0) -> None:
        p = hv.pcpu(pcpu)
        if not isinstance(p, KvmPcpu):
            raise VswError(errno.ENODEV, f"pcpu{pcpu} of platform {hv.platform.name} is not a KVM vCPU "
                                         "(use a platform with a vsw,pcpu-kvm device, e.g. reference-kvm)")
        self.hv, self.index, self.pcpu, self.vcpu = hv, pcpu, p, p.vcpu
        self.jobs: list[Job] = []

    def add(self, machine: Machine, program: str, rounds: int = 20, seed: int = 1) -> Job:
        """Loads ``program`` into the machine's own memory and sets it at its entry point."""
        if any(j.machine is machine for j in self.jobs):
            raise VswError(errno.EEXIST, f"{machine.name} already has a program")
        if not isinstance(rounds, int) or rounds < 1:
            raise VswError(errno.EINVAL, f"rounds must be a positive integer, got {rounds!r}")
        load_program(self.vcpu, machine, program, rounds, seed)
        job = Job(machine, program, rounds, seed)
        self.jobs.append(job)
        return job

    def run(self, slice_us: float = 100.0, order: str = "round-robin", rng_seed: int = 0,
            max_slices: int = 1_000_000) -> RunReport:
        """Until every job is done: slices of ``slice_us`` microseconds (``order``
        round-robin or random), switching through pyvswitch between machines."""
        if slice_us <= 0:
            raise VswError(errno.EINVAL, f"slice_us must be positive, got {slice_us!r}")
        if order not in ("round-robin", "random"):
            raise VswError(errno.EINVAL, f"order is round-robin or random, not {order!r}")
        rng = random.Random(rng_seed)
        rep = RunReport(self.jobs)
        hv, vcpu, pcpu = self.hv, self.vcpu, self.pcpu
        slice_ns = int(slice_us * 1000)
        # whose state the vCPU holds: the machine on the PCPU, if it is a job (pushed
        # afresh, in case its registers were written since the last run)
        running = hv.running(self.index)
        on_vcpu: Job | None = next((j for j in self.jobs if j.machine is running), None)
        if on_vcpu is not None:
            vcpu.push(pcpu)
        turn = 0
        s: Any = None
        for _ in range(max_slices):
            runnable = [j for j in self.jobs if not j.done]
            if not runnable:
                break
            job = rng.choice(runnable) if order == "random" else runnable[turn % len(runnable)]
            turn += 1
            s = None
            if job is not on_vcpu:
                if on_vcpu is not None:
                    t = time.perf_counter_ns()
                    vcpu.pull(pcpu)
                    rep.pull_ns += time.perf_counter_ns() - t
                cur = hv.running(self.index)
                if cur is None:
                    raise VswError(errno.ENODEV, f"pcpu{self.index} runs no machine (its contexts are parked)")
                t = time.perf_counter_ns()
                try:
                    s = hv.switch_context(cur, job.machine, self.index)
                except VswError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    rep.faults += 1         # nothing changed: the vCPU still holds on_vcpu
                    if on_vcpu is None:
                        rep.switch_ns += time.perf_counter_ns() - t
                        continue            # nothing ran yet: try again
                    job, s = on_vcpu, None  # run the same guest on
                rep.switch_ns += time.perf_counter_ns() - t
            if job is not on_vcpu and s is not None:
                rep.switches += 1
                rep.save_bursts += s.save_bursts
                rep.load_bursts += s.load_bursts
                rep.paths[s.path] = rep.paths.get(s.path, 0) + 1
                t = time.perf_counter_ns()
                vcpu.push(pcpu)
                rep.push_ns += time.perf_counter_ns() - t
                on_vcpu = job
            x = vcpu.run(slice_ns)
            rep.slices += 1
            job.slices += 1
            rep.guest_ns += x.run_ns
            rep.exits[x.reason] = rep.exits.get(x.reason, 0) + 1
            if x.reason == "io" and x.write:
                if x.port == guests.PORT_PROGRESS:
                    job.progress.append(x.data)
                elif x.port == guests.PORT_RESULT_LO:
                    job._lo = x.data
                elif x.port == guests.PORT_RESULT_HI:
                    job._hi = x.data
                elif x.port == guests.PORT_DONE:
                    job.result = job._hi << 32 | job._lo
            elif x.reason in ("shutdown", "other", "hlt"):
                job.error = f"guest stopped: {x.reason} (KVM exit {x.kvm_reason})"
        if on_vcpu is not None:             # leave the register file holding the truth
            vcpu.pull(pcpu)
        return rep


def load_program(vcpu: KvmVcpu, machine: Machine, program: str, rounds: int = 20, seed: int = 1) -> None:
    """Puts a guest program into the machine's own guest memory and sets the
    machine (saved, not running) at its entry point, in its own address space."""
    if machine.pcpu is not None:
        raise VswError(errno.EBUSY, f"{machine.name} is running; load programs into saved machines")
    guests.load(vcpu.memory, machine.id, program)
    machine.set_state(guests.initial_state(machine.id, rounds, seed))


def solo(hv: Hypervisor, machine: Machine, program: str, rounds: int, seed: int) -> Job:
    """The reference: the program alone, never preempted."""
    sched = Scheduler(hv)
    job = sched.add(machine, program, rounds, seed)
    sched.run(slice_us=10_000_000)
    return job
