"""pyvswitch demo --kvm: real guests, preempted on one KVM vCPU, their whole
vCPU state switched through the context store; each guest's result beside the
result it gives running alone."""
from __future__ import annotations

import errno
from typing import Any

from .. import api
from ..errors import DEFAULT_SLICE_US, MAX_DEMO_VMS, SLICE_US_RANGE, check_int_in, check_number
from ..hw import VswError
from ..hw.kvm import why_unusable
from ..kvm import overhead
from ..kvm.scheduler import Scheduler, solo
from ..platform.description import DEFAULT_KVM_PLATFORM

PROGRAMS = ("hash", "vecsum", "prng")


def run_kvm_demo(platform: str | None = None, slice_us: float = DEFAULT_SLICE_US, rounds: int = 40,
                 vms: int = len(PROGRAMS)) -> dict[str, Any]:
    """``vms`` guests (the built-in programs in turn, each with its own seed)
    preempted on one vCPU, each one's result beside its solo run's."""
    check_number(slice_us, "slice_us", *SLICE_US_RANGE)        # before the solo runs, not after
    check_int_in(rounds, "rounds", 1, 1_000_000)
    check_int_in(vms, "--vms with --kvm (the number of guests)", 1, MAX_DEMO_VMS)
    why = why_unusable()
    if why is not None:
        raise VswError(errno.ENODEV, f"the KVM demo needs a usable /dev/kvm: {why}")
    plat = platform or DEFAULT_KVM_PLATFORM
    guests = [(f"vm{i}-{PROGRAMS[i % len(PROGRAMS)]}", PROGRAMS[i % len(PROGRAMS)], 1000 + i) for i in range(vms)]
    with api.open(plat) as hv:
        reference = {}
        for name, prog, seed in guests:
            job = solo(hv, hv.create_vm(f"solo-{name}"), prog, rounds, seed)
            reference[name] = (job.result, len(job.progress))
    with api.open(plat) as hv:
        sched = Scheduler(hv)
        jobs = [sched.add(hv.create_vm(name), p, rounds, seed) for name, p, seed in guests]
        rep = sched.run(slice_us=slice_us, order="random", rng_seed=7)
        over = overhead.measure(hv)
    thr = overhead.throughput(plat)
    rows = [{"machine": j.machine.name, "program": j.program, "result": j.result, "solo": reference[j.machine.name][0],
             "same": j.result == reference[j.machine.name][0] and len(j.progress) == reference[j.machine.name][1],
             "slices": j.slices, "error": j.error} for j in jobs]
    per = rep.per_switch()
    ok = all(r["same"] for r in rows) and rep.ok
    lines = [f"pyvswitch demo --kvm: {len(jobs)} guests preempted every {slice_us:g} us on one KVM vCPU "
             f"(platform {plat}), random order", "",
             f"{'machine':12} {'program':8} {'result':>18} {'alone':>18} {'same':5} {'slices':>6}"]
    for r in rows:
        lines.append(f"{r['machine']:12} {r['program']:8} {r['result'] or 0:#18x} {r['solo'] or 0:#18x} "
                     f"{'yes' if r['same'] else 'NO':5} {r['slices']:6}")
    lines += ["",
              f"{rep.switches} switches over the {', '.join(rep.paths)} path in {rep.slices} slices "
              f"({rep.exits.get('preempted', 0)} timer preemptions, {rep.exits.get('io', 0)} device-register exits); "
              f"N = {per['N']:.2f}, M = {per['M']:.2f} bursts per switch",
              f"per switch: {per['ioctl_us']:.1f} us in KVM ioctls (pull + push), {per['pyvswitch_us']:.2f} us in "
              f"pyvswitch's switch_context",
              f"KVM ioctls per switch (pull + push, between guest slices): {over['ioctl_us_per_switch']['median']:.1f} us "
              f"(min {over['ioctl_us_per_switch']['min']:.1f}, max {over['ioctl_us_per_switch']['max']:.1f}) against "
              f"the full GET+SET sequence from C {over['full_sequence_us']['median']:.1f} us = "
              f"{over['ratio']['median']:.2f}x (min {over['ratio']['min']:.2f}, max {over['ratio']['max']:.2f})",
              "full sequence per ioctl (us): " + ", ".join(f"{k} {v:.1f}" for k, v in over["per_ioctl_us"].items()),
              f"guest throughput: a CPU-bound guest preempted every {thr['slice_us']:g} us among {thr['others']} others "
              f"keeps {thr['kept']['median']:.0%} (min {thr['kept']['min']:.0%}, max {thr['kept']['max']:.0%}) of its "
              f"solo speed in its own slices ({thr['alone_ms']:.1f} ms of its own time alone, {thr['preempted_ms']:.1f} "
              f"ms preempted); {thr['kept_vs_sliced']['median']:.0%} against itself alone but preempted as often "
              f"({thr['alone_sliced_ms']:.1f} ms): the rest is this host's cost of a timer exit, paid with no switch",
              f"MSRs of the layout this host lacks (marked absent, never faked): "
              f"{', '.join(over['absent_msrs']) or 'none'}"]
    return {"platform": plat, "slice_us": slice_us, "rounds": rounds, "ok": ok, "guests": rows,
            "run": rep.as_dict(), "overhead": over, "throughput": thr, "text": "\n".join(lines)}
