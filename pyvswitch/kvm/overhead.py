"""What a KVM switch costs, measured in the same run on the same vCPU.

- ioctl time per switch: between guest slices, pull + push as the scheduler
  does them (SYNC_REGS, no SET of what KVM holds, no GET of what a CPL-3
  guest cannot change) against the full GET + SET sequence of every group,
  issued straight from C (the floor a plain implementation pays);
- pyvswitch's own switch_context beside it;
- guest throughput: a CPU-bound guest's own time (inside KVM_RUN) for the same
  work alone and preempted every 100 us among three others.
"""
from __future__ import annotations

import statistics
import time
from typing import Any

from ..api import Hypervisor
from .scheduler import Scheduler


def _spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def measure(hv: Hypervisor, switches: int = 200, rounds: int = 5, slice_us: float = 20.0) -> dict[str, Any]:
    """Two guests that keep computing; each switch follows a slice of guest time
    (``slice_us``, or the shortest slice the host keeps where that is longer: a
    shorter one would end before the guest ran)."""
    sched = Scheduler(hv)
    slice_us = max(slice_us, sched.vcpu.shortest_slice_ns() / 1000)    # measured before any guest is pushed
    a, b = hv.create_vm("overhead-a"), hv.create_vm("overhead-b")
    sched.add(a, "hash", 1_000_000, 1)
    sched.add(b, "prng", 1_000_000, 2)
    running = hv.running(0)
    assert running is not None
    hv.switch_context(running, a)
    pcpu, vcpu = sched.pcpu, sched.vcpu
    slice_ns = int(slice_us * 1000)
    ratios, ours_us, full_us, sw_us = [], [], [], []
    direct: dict[str, dict[str, float]] = {}
    cur, nxt = a, b
    for _ in range(rounds):
        direct = vcpu.bench_ioctls(100)                 # the full sequence, straight from C
        full = sum(direct["get"].values()) + sum(direct["set"].values())
        vcpu.push(pcpu)                                 # the benchmark left its own values in the vCPU
        ioctl_ns = switch_ns = 0
        for _ in range(switches):
            vcpu.run(slice_ns)
            while vcpu.complete() is not None:          # a device access ends inside its guest
                pass
            t1 = time.perf_counter_ns()
            vcpu.pull(pcpu)
            t2 = time.perf_counter_ns()
            hv.switch_context(cur, nxt)
            t3 = time.perf_counter_ns()
            vcpu.push(pcpu)
            t4 = time.perf_counter_ns()
            ioctl_ns += (t2 - t1) + (t4 - t3)
            switch_ns += t3 - t2
            cur, nxt = nxt, cur
        ours_us.append(ioctl_ns / switches / 1000)
        sw_us.append(switch_ns / switches / 1000)
        full_us.append(full / 1000)
        ratios.append(ioctl_ns / switches / full)
    vcpu.pull(pcpu)
    return {
        "switches": switches, "rounds": rounds, "slice_us": slice_us,
        "ioctl_us_per_switch": _spread(ours_us), "full_sequence_us": _spread(full_us),
        "ratio": _spread(ratios), "switch_context_us": _spread(sw_us),
        "per_ioctl_us": {f"{d} {n}": v / 1000 for d in ("get", "set") for n, v in direct[d].items()},
        "absent_msrs": vcpu.absent_msrs,
    }


def throughput(platform: str, rounds: int = 1500, others: int = 3, slice_us: float = 100.0,
               repeats: int = 3) -> dict[str, Any]:
    """A CPU-bound guest's own time (inside KVM_RUN) for the same work: alone, alone
    but preempted as often (what the host's timer exit costs with no switch at all),
    and preempted among ``others`` - so the share of its solo speed it keeps, and
    the share the switches themselves take."""
    from .. import api

    def own_ms(with_others: int, slice_: float) -> float:
        with api.open(platform) as hv:
            sched = Scheduler(hv)
            job = sched.add(hv.create_vm("measured"), "hash", rounds, 5)
            for i in range(with_others):
                sched.add(hv.create_vm(f"other{i}"), ("prng", "vecsum", "hash")[i % 3], rounds, 10 + i)
            sched.run(slice_us=slice_)
            return job.clock_ns / 1e6

    runs = [(own_ms(0, 10_000_000), own_ms(0, slice_us), own_ms(others, slice_us)) for _ in range(repeats)]
    med = statistics.median
    return {"alone_ms": med(r[0] for r in runs), "alone_sliced_ms": med(r[1] for r in runs),
            "preempted_ms": med(r[2] for r in runs), "others": others, "slice_us": slice_us, "repeats": repeats,
            "kept": _spread([r[0] / r[2] for r in runs]), "kept_vs_sliced": _spread([r[1] / r[2] for r in runs])}
