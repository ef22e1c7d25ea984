#!/usr/bin/env python3
"""An example hypervisor prototype, written as a user's own code would be:
only pyvswitch's public API.

It brings up the reference-kvm platform (a real KVM vCPU as the PCPU), gives
the host and three VMs a guest program each, and schedules them preemptively
on the one vCPU with its own round-robin loop: run a slice, and when another
machine's turn comes, pull the vCPU's state, switch_context through the
context store, push the next machine's state.  Without /dev/kvm it says why
and exits 2.

    python scripts/hypervisor_prototype.py [--slice-us 100] [--rounds 30]
"""
import argparse
import sys

import pyvswitch
from pyvswitch.kvm import (
    REG_DONE,
    REG_RESULT_HI,
    REG_RESULT_LO,
    load_program,
    why_unusable,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slice-us", type=float, default=100.0)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    why = why_unusable()
    if why:
        print(f"hypervisor_prototype: KVM is not usable here: {why}", file=sys.stderr)
        return 2
    with pyvswitch.open("reference-kvm") as hv:
        pcpu = hv.pcpu(0)
        vcpu = pcpu.vcpu
        vms = [hv.create_vm(name) for name in ("web", "db", "batch")]
        programs = dict(zip(vms, ("hash", "vecsum", "prng")))
        for i, vm in enumerate(vms):
            load_program(vcpu, vm, programs[vm], rounds=args.rounds, seed=42 + i)
        results, words = {}, {vm: [0, 0] for vm in vms}
        current = hv.host                       # runs on pcpu0 but has no program: never entered
        turn, switches, fast = 0, 0, 0
        while len(results) < len(vms):
            nxt = [vm for vm in vms if vm not in results][turn % (len(vms) - len(results))]
            turn += 1
            if nxt is not current:
                if current is not hv.host:
                    vcpu.pull(pcpu)             # the vCPU's state into the register file
                stats = hv.switch_context(current, nxt)
                switches += 1
                fast += stats.path == "store"
                vcpu.push(pcpu)                 # the next machine's state into the vCPU
                current = nxt
            exit_ = vcpu.run(int(args.slice_us * 1000))
            if exit_.reason == "io" and exit_.write:
                if exit_.reg in (REG_RESULT_LO, REG_RESULT_HI):
                    words[current][exit_.reg - REG_RESULT_LO] = exit_.data
                elif exit_.reg == REG_DONE:
                    results[current] = words[current][1] << 32 | words[current][0]
            elif exit_.reason not in ("preempted", "io"):
                print(f"{current.name} stopped: {exit_}", file=sys.stderr)
                return 1
            if vcpu.complete() is not None:     # the access completes in its own guest before any pull
                print(f"{current.name} split a device access: {exit_}", file=sys.stderr)
                return 1
        vcpu.pull(pcpu)
        hv.switch_context(current, hv.host)
        for vm in vms:
            print(f"{vm.name:6} {programs[vm]:7} {results[vm]:#018x}")
        print(f"{switches} switches, {fast} over the context store")
    return 0


if __name__ == "__main__":
    sys.exit(main())
