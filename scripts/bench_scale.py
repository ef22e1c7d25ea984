#!/usr/bin/env python3
"""Machine life cycle at scale on the hyperscale platform: create N VMs (total,
first and last tenth), resident memory per VM against the slot size, then
destroy them all - in several rounds, each on a fresh hypervisor, reported as
medians with min and max (a shared machine makes any single tenth noisy).
Prints the figures the README quotes."""
import argparse
import resource
import time

import pyvswitch
from pyvswitch.bench.timing import spread

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--vms", type=int, default=100_000)
parser.add_argument("--rounds", type=int, default=3)
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


small = pyvswitch.open("hyperscale")                 # the same platform with 2 VMs, kept beside
pair = [small.create_vm("a"), small.create_vm("b")]
small.switch_context(small.host, pair[0])
total, ratio, destroy, rss, flat = [], [], [], [], []
for _ in range(args.rounds):
    with pyvswitch.open("hyperscale") as hv:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        marks, vms = [t0], []
        for i in range(args.vms):
            vms.append(hv.create_vm(f"vm{i}"))
            if (i + 1) % tenth == 0:
                marks.append(time.perf_counter())
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
    ratio.append((marks[-1] - marks[-2]) / (marks[1] - marks[0]))
    destroy.append(t2 - t1)
print(f"create {args.vms:,} VMs: {spread(total)} s; last tenth / first tenth: {spread(ratio)}x "
      f"({args.rounds} rounds)")
print(f"resident memory per VM: {rss[0]:,.0f} B against a slot of {slot:,} B (+1 KiB allowed: {slot + 1024:,} B)")
print(f"destroy them all: {spread(destroy)} s")
print(f"switch_context with {args.vms:,} VMs vs with 2 VMs: {spread(flat)}x")
small.close()
