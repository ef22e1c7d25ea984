#!/usr/bin/env python3
"""Machine life cycle at scale on the hyperscale platform: create N VMs (total,
first and last tenth), resident memory per VM against the slot size, then
destroy them all - in several rounds, each on a fresh hypervisor, reported as
medians with min and max (a shared machine makes any single tenth noisy).

Each round starts from a collected heap, and the time CPython's cyclic
collector spends in each tenth is measured (gc.callbacks) and printed beside
it: a full pass costs in proportion to the live objects (two per machine) and
comes in proportion less often - constant per machine, amortised - but each
pass lands whole in one tenth.  Prints the figures docs/performance.md quotes."""
import argparse
import gc
import resource
import time

import pyvswitch
from pyvswitch.bench.timing import spread

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--vms", type=int, default=100_000)
parser.add_argument("--rounds", type=int, default=5)
args = parser.parse_args()
tenth = args.vms // 10



def switch_ns(hv, a, b, n=20_000):
    """Per switch, clean VM<->VM, best of 3 batches."""
    sw, best = hv.switch_context, float("inf")
    for _ in range(3):
        t = time.perf_counter_ns()
        for _ in range(n // 2):
            sw(a, b)
            sw(b, a)
        best = min(best, (time.perf_counter_ns() - t) / n)
    return best


class CollectorClock:
    """Seconds CPython's cyclic garbage collector has run since it was installed."""

    def __init__(self) -> None:
        self.total, self._start = 0.0, 0.0
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


collector = CollectorClock()
small = pyvswitch.open("hyperscale")                 # the same platform with 2 VMs, kept beside
pair = [small.create_vm("a"), small.create_vm("b")]
small.switch_context(small.host, pair[0])
total, ratio, ratio_no_gc, gc_last, destroy, rss, flat = [], [], [], [], [], [], []
for _ in range(args.rounds):
    with pyvswitch.open("hyperscale") as hv:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gc.collect()
        t0 = time.perf_counter()
        marks, in_gc, vms = [t0], [collector.total], []
        for i in range(args.vms):
            vms.append(hv.create_vm(f"vm{i}"))
            if (i + 1) % tenth == 0:
                marks.append(time.perf_counter())
                in_gc.append(collector.total)
        t1 = time.perf_counter()
        if not rss:         # ru_maxrss is a high-water mark: only the first round measures it
            rss.append((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024 / args.vms)
        slot = hv.controller.channel.context.store.slot_bytes
        hv.switch_context(hv.host, vms[-2])
        for _ in range(5):                          # alternating, so drift hits both alike
            flat.append(switch_ns(hv, vms[-2], vms[-1]) / switch_ns(small, *pair))
        hv.switch_context(vms[-2], hv.host)
        for vm in vms:
            hv.destroy_vm(vm)
        t2 = time.perf_counter()
    total.append(t1 - t0)
    first, last = marks[1] - marks[0], marks[-1] - marks[-2]
    first_gc, last_gc = in_gc[1] - in_gc[0], in_gc[-1] - in_gc[-2]
    ratio.append(last / first)
    ratio_no_gc.append((last - last_gc) / (first - first_gc))
    gc_last.append(last_gc * 1000)
    destroy.append(t2 - t1)
print(f"create {args.vms:,} VMs: {spread(total)} s; last tenth / first tenth: {spread(ratio)}x "
      f"({args.rounds} rounds)")
print(f"  the same without the cyclic collector's time: {spread(ratio_no_gc)}x "
      f"(it ran {spread(gc_last, 0)} ms in the last tenth)")
print(f"resident memory per VM: {rss[0]:,.0f} B against a slot of {slot:,} B (+1 KiB allowed: {slot + 1024:,} B)")
print(f"destroy them all: {spread(destroy)} s")
print(f"switch_context with {args.vms:,} VMs vs with 2 VMs: {spread(flat)}x")
small.close()
