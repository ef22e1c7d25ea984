"""What pyvswitch adds to a KVM switch: pull + switch_context + push, against
the same GET and SET ioctls issued straight from C, measured in the same run."""
from __future__ import annotations

import statistics
import time
from typing import Any

from ..api import Hypervisor
from .scheduler import Scheduler


def measure(hv: Hypervisor, iterations: int = 300, rounds: int = 5) -> dict[str, Any]:
    """Two guests loaded; each iteration is one full KVM switch between them."""
    sched = Scheduler(hv)
    a, b = hv.create_vm("overhead-a"), hv.create_vm("overhead-b")
    sched.add(a, "hash", 1, 1)
    sched.add(b, "prng", 1, 2)
    running = hv.running(0)
    assert running is not None
    hv.switch_context(running, a)
    pcpu, vcpu = sched.pcpu, sched.vcpu
    vcpu.push(pcpu)
    pairs = []
    split: dict[str, list[int]] = {"pull": [], "switch": [], "push": []}
    for _ in range(rounds):
        direct = vcpu.bench_ioctls(iterations)
        direct_ns = sum(direct["get"].values()) + sum(direct["set"].values())
        cur, nxt = a, b
        t0 = time.perf_counter_ns()
        for _ in range(iterations):
            t1 = time.perf_counter_ns()
            vcpu.pull(pcpu)
            t2 = time.perf_counter_ns()
            hv.switch_context(cur, nxt)
            t3 = time.perf_counter_ns()
            vcpu.push(pcpu)
            split["pull"].append(t2 - t1)
            split["switch"].append(t3 - t2)
            split["push"].append(time.perf_counter_ns() - t3)
            cur, nxt = nxt, cur
        ours = (time.perf_counter_ns() - t0) / iterations
        pairs.append((ours, direct_ns, direct))
    ours = statistics.median(p[0] for p in pairs)
    direct_ns = statistics.median(p[1] for p in pairs)
    last = pairs[-1][2]
    return {
        "iterations": iterations, "rounds": rounds,
        "pyvswitch_switch_us": ours / 1000, "direct_ioctls_us": direct_ns / 1000,
        "ratio": statistics.median(p[0] / p[1] for p in pairs),
        "split_us": {k: statistics.median(v) / 1000 for k, v in split.items()},
        "per_ioctl_us": {f"{d} {n}": v / 1000 for d in ("get", "set") for n, v in last[d].items()},
        "absent_msrs": vcpu.absent_msrs,
    }
