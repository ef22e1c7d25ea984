#!/usr/bin/env python3
"""Machine life cycle at scale: create N VMs on the hyperscale platform (total,
first and last tenth, resident memory per VM against the slot size), then
destroy them all.  Prints the figures the README quotes."""
import argparse
import resource
import time

import pyvswitch

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--vms", type=int, default=100_000)
args = parser.parse_args()
tenth = args.vms // 10
with pyvswitch.open("hyperscale") as hv:
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    marks = []
    vms = []
    for i in range(args.vms):
        vms.append(hv.create_vm(f"vm{i}"))
        if (i + 1) % tenth == 0:
            marks.append(time.perf_counter())
    t1 = time.perf_counter()
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024 / args.vms
    slot = hv.controller.channel.context.store.slot_bytes
    first, last = marks[0] - t0, marks[-1] - marks[-2]
    for vm in vms:
        hv.destroy_vm(vm)
    t2 = time.perf_counter()
print(f"create {args.vms:,} VMs: {t1 - t0:.2f} s ({(t1 - t0) / args.vms * 1e6:.1f} us each); first tenth {first:.3f} s, "
      f"last tenth {last:.3f} s = {last / first:.2f}x")
print(f"resident memory per VM: {rss:,.0f} B against a slot of {slot:,} B (+1 KiB allowed: {slot + 1024:,} B)")
print(f"destroy them all: {t2 - t1:.2f} s")
