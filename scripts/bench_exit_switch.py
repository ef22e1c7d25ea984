#!/usr/bin/env python3
"""A switch made at a guest's exit, pyvswitch's way against Linux's, measured the
same way (every exit one KVM_RUN that returns to a Python loop) in one run:

- ``a`` pyvswitch: two guests on one vCPU, switched at every exit - the access
  completed in its guest (KVM_RUN with immediate_exit), pull, switch_context
  through the store, push - then the other runs to its next exit;
- ``aC``, ``bC``, ``cC`` the same three with each exit one call of the C slice
  loop (``complete_first``; for aC also ``switch_first``, two contexts): the
  access completed, the switch made (aC) and the run, with Python only between
  the calls;
- ``b`` Linux: each guest on a vCPU thread of its own, both pinned to one core,
  handing over at every exit (a byte through a pipe: the one waits, the other
  runs) - Linux switches the threads, KVM keeps each vCPU's state;
- ``c`` the floor: one guest on one vCPU, the same exits, no switch.

Each guest writes a device register in a loop, so every KVM_RUN ends at a
write.  Per exit: each way; per switch: a - c and b - c; (a - c) / (b - c)
(the target: at most 3) and a / b; the same for aC, bC, cC; each the median (min-max) over interleaved repetitions, wall and CPU
time.  Then where a's time goes: the exit itself (inside KVM_RUN), completing
the access, KVM's ioctls (pull + push), the store (switch_context) and the run
loop (the rest: Python).

    python scripts/bench_exit_switch.py [--reps 5] [--exits 2000] [--cpu N] [--json]

Exits 2 (saying why) where /dev/kvm is unusable.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyvswitch
from pyvswitch.guest import build
from pyvswitch.kvm import Scheduler, why_unusable
from pyvswitch.kvm.scheduler import Job, RunReport

MEM = 4 << 20
RUN_NS = 1_000_000_000          # a slice no exit here comes near: only the guest's writes end a run
SOURCE = """
#include <vsw_guest.h>
int main(void)
{
    for (uint32_t i = 0;; i++)
        *(volatile uint32_t *)(VSW_MMIO + VSW_REG_PROGRESS) = i;
}
"""


def spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def ready(hv: pyvswitch.Hypervisor, image: bytes, names: list[str]) -> tuple[Scheduler, list[Job]]:
    """A scheduler with the guest loaded once per name, the first in the vCPU."""
    sched = Scheduler(hv)
    jobs = [sched.add(hv.create_vm(n), image, mem_bytes=MEM) for n in names]
    with hv.using():
        sched._switch(None, jobs[0], RunReport(jobs))
    return sched, jobs


def exit_once(sched: Scheduler) -> int:
    """One KVM_RUN to the guest's next write; its ns inside KVM_RUN."""
    x = sched.vcpu.run(RUN_NS)
    if x.reason != "io":
        raise RuntimeError(f"the guest stopped other than at its write: {x}")
    return x.run_ns


class CExit:
    """The guest's next exit as one call of the C slice loop on its own (one
    context, no switch): the pending write completes in its guest, then the run."""

    def __init__(self, sched: Scheduler, job: Job) -> None:
        from pyvswitch.hw import ffi, lib
        self.lib, self.sched = lib, sched
        self.ctxs = ffi.new("struct vsw_ctx *[]", [job.machine._c])
        self.own, self.per = ffi.new("uint64_t[]", 1), ffi.new("uint64_t[]", 1)
        self.L = ffi.new("struct vsw_kvm_loop *")

    def __call__(self) -> int:
        L = self.L
        L.slice_ns, L.max_slices, L.max_ns, L.switch_first, L.complete_first = RUN_NS, 1, 0, 0, 1
        L.own_ns, L.slices_of, L.resume_ns = self.own, self.per, 0
        r = self.lib.vsw_kvm_loop(self.sched.vcpu.handle, self.sched.pcpu.handle, self.ctxs, 1, 0, L)
        if r < 0 or L.stopped != self.lib.VSW_KVM_STOP_EXIT:
            raise RuntimeError(f"the slice loop did not stop at the write: r={r}, stopped={L.stopped}")
        return int(L.exit.run_ns)


def exiter(sched: Scheduler, job: Job, in_c: bool) -> Any:
    return CExit(sched, job) if in_c else (lambda: exit_once(sched))


def way_c(image: bytes, exits: int, cpu: int, in_c: bool = False) -> dict[str, Any]:
    """The floor: one vCPU, ``exits`` exits, no switch (``in_c``: each one C call)."""
    os.sched_setaffinity(0, {cpu})
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = ready(hv, image, ["c"])
        exit_once(sched)                        # warm
        step = exiter(sched, jobs[0], in_c)
        t0, c0, inside = time.perf_counter_ns(), time.thread_time_ns(), 0
        with hv.using():
            for _ in range(exits):
                inside += step()
            sched.vcpu.complete()
        return {"wall_ns": time.perf_counter_ns() - t0, "cpu_ns": time.thread_time_ns() - c0, "exit_ns": inside}


def way_a(image: bytes, exits: int, cpu: int) -> dict[str, Any]:
    """pyvswitch: two guests on one vCPU, switched at every exit."""
    os.sched_setaffinity(0, {cpu})
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = ready(hv, image, ["a0", "a1"])
        rep = RunReport(jobs)
        on = jobs[0]
        exit_once(sched)                        # warm
        t0, c0, inside, completing = time.perf_counter_ns(), time.thread_time_ns(), 0, 0
        with hv.using():
            for _ in range(exits):
                inside += exit_once(sched)
                t = time.perf_counter_ns()
                if sched.vcpu.complete() is not None:
                    raise RuntimeError("a 4-byte write came back split")
                completing += time.perf_counter_ns() - t
                nxt = jobs[1] if on is jobs[0] else jobs[0]
                if sched._switch(on, nxt, rep) is not nxt:
                    raise RuntimeError("a switch was refused")
                on = nxt
        return {"wall_ns": time.perf_counter_ns() - t0, "cpu_ns": time.thread_time_ns() - c0, "exit_ns": inside,
                "complete_ns": completing, "pull_ns": rep.pull_ns, "push_ns": rep.push_ns,
                "store_ns": rep.switch_ns, "switches": rep.switches}


def way_a_c(image: bytes, exits: int, cpu: int) -> dict[str, Any]:
    """pyvswitch with the switch in C: at every exit one call of the slice loop
    completes the access in its guest, pulls, switches, pushes and runs the other
    guest to its next exit (``complete_first``, ``switch_first``, one slice)."""
    from pyvswitch.hw import ffi, lib
    os.sched_setaffinity(0, {cpu})
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = ready(hv, image, ["ac0", "ac1"])
        exit_once(sched)                        # warm; its write is pending
        own, per = ffi.new("uint64_t[]", 2), ffi.new("uint64_t[]", 2)
        L = ffi.new("struct vsw_kvm_loop *")
        k, pc = sched.vcpu.handle, sched.pcpu.handle
        pairs = [ffi.new("struct vsw_ctx *[]", [jobs[i].machine._c, jobs[1 - i].machine._c]) for i in (0, 1)]
        on, inside, pull, push, store, in_c = 0, 0, 0, 0, 0, 0
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        with hv.using():
            for _ in range(exits):
                L.slice_ns, L.max_slices, L.max_ns, L.switch_first, L.complete_first = RUN_NS, 1, 0, 1, 1
                L.own_ns, L.slices_of, L.resume_ns = own, per, 0
                t = time.perf_counter_ns()
                r = lib.vsw_kvm_loop(k, pc, pairs[on], 2, 0, L)
                in_c += time.perf_counter_ns() - t
                if r < 0 or L.stopped != lib.VSW_KVM_STOP_EXIT or L.switches != 1:
                    raise RuntimeError(f"the slice loop did not switch and stop at the write: r={r}, "
                                       f"stopped={L.stopped}, switches={L.switches}")
                inside += L.exit.run_ns
                pull, push, store = pull + L.pull_ns, push + L.push_ns, store + L.switch_ns
                on = 1 - on
            sched.vcpu.complete()
        return {"wall_ns": time.perf_counter_ns() - t0, "cpu_ns": time.thread_time_ns() - c0, "exit_ns": inside,
                "pull_ns": pull, "push_ns": push, "store_ns": store, "in_c_ns": in_c, "switches": exits}


def way_b(image: bytes, exits: int, cpu: int, in_c: bool = False) -> dict[str, Any]:
    """Linux: two vCPU threads on one core handing over (a pipe) at every exit;
    ``exits`` exits in all, as in a and c (``in_c``: each one C call)."""
    pipes = [os.pipe(), os.pipe()]              # pipes[i]: thread i waits on its read end
    setup = threading.Barrier(3)
    cpu_ns = [0, 0]
    inside = [0, 0]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            os.sched_setaffinity(0, {cpu})
            with pyvswitch.open("reference-kvm") as hv:
                sched, jobs = ready(hv, image, [f"b{i}"])
                exit_once(sched)                # warm
                step = exiter(sched, jobs[0], in_c)
                setup.wait()
                mine, other = pipes[i][0], pipes[1 - i][1]
                c0 = time.thread_time_ns()
                with hv.using():
                    for n in range(i, exits, 2):    # thread 0 the even exits, thread 1 the odd
                        if n:
                            os.read(mine, 1)        # the other's turn is over
                        inside[i] += step()
                        os.write(other, b"x")       # hand over; Linux runs the other thread
                    cpu_ns[i] = time.thread_time_ns() - c0
                    sched.vcpu.complete()
        except BaseException as exc:            # noqa: BLE001 - reported below
            errors.append(exc)
            setup.abort()
            for _, w in pipes:
                os.write(w, b"x")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        setup.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter_ns()
    for t in threads:
        t.join()
    wall = time.perf_counter_ns() - t0
    for r, w in pipes:
        os.close(r)
        os.close(w)
    if errors:
        raise errors[0]
    return {"wall_ns": wall, "cpu_ns": sum(cpu_ns), "exit_ns": sum(inside), "switches": exits - 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--exits", type=int, default=2000)
    ap.add_argument("--cpu", type=int, default=None, help="the core (default: the last this process may use)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    why = why_unusable()
    if why:
        print(f"bench_exit_switch: KVM is not usable here: {why}", file=sys.stderr)
        return 2
    if args.reps < 1 or args.exits < 2:
        print("bench_exit_switch: --reps must be at least 1 and --exits at least 2", file=sys.stderr)
        return 2
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "writer.c"
        src.write_text(SOURCE)
        image = build([src], Path(tmp) / "writer.elf").read_bytes()
    before = os.sched_getaffinity(0)
    raw: dict[str, list[dict[str, Any]]] = {w: [] for w in ("a", "b", "c", "aC", "bC", "cC")}
    try:
        for _ in range(args.reps):              # interleaved: the host's load falls on every way alike
            raw["c"].append(way_c(image, args.exits, cpu))
            raw["b"].append(way_b(image, args.exits, cpu))
            raw["a"].append(way_a(image, args.exits, cpu))
            raw["cC"].append(way_c(image, args.exits, cpu, in_c=True))
            raw["bC"].append(way_b(image, args.exits, cpu, in_c=True))
            raw["aC"].append(way_a_c(image, args.exits, cpu))
    finally:
        os.sched_setaffinity(0, before)
    n = args.exits
    out: dict[str, Any] = {"exits": n, "reps": args.reps, "cpu": cpu, "loadavg": os.getloadavg()}
    for clock in ("wall", "cpu"):
        k = f"{clock}_ns"
        per = {w: [r[k] / n / 1000 for r in raw[w]] for w in raw}
        # each switch against its own floor: the Python trio's c, the C trio's cC
        sw = {w: [(a - c) * n / max(1, r["switches"]) for a, c, r in zip(per[w], per[w[0:0] + "c" + w[1:]], raw[w])]
              for w in ("a", "b", "aC", "bC")}
        out[clock] = {"per_exit_us": {w: spread(per[w]) for w in raw},
                      "per_switch_us": {f"{w}-{'c' + w[1:]}": spread(sw[w]) for w in sw}}
        for a, b in (("a", "b"), ("aC", "bC")):
            c = "c" + a[1:]
            out[clock][f"({a}-{c})/({b}-{c})"] = spread([x / y if y > 0 else float("inf")
                                                        for x, y in zip(sw[a], sw[b])])
            out[clock][f"{a}/{b}"] = spread([x / y for x, y in zip(per[a], per[b])])
    a = raw["a"]
    out["a_breakdown_us_per_switch"] = {
        "exit (inside KVM_RUN)": spread([r["exit_ns"] / n / 1000 for r in a]),
        "completing the access": spread([r["complete_ns"] / r["switches"] / 1000 for r in a]),
        "KVM ioctls (pull + push)": spread([(r["pull_ns"] + r["push_ns"]) / r["switches"] / 1000 for r in a]),
        "store (switch_context)": spread([r["store_ns"] / r["switches"] / 1000 for r in a]),
        "run loop (the rest)": spread([(r["wall_ns"] - r["exit_ns"] - r["complete_ns"] - r["pull_ns"] - r["push_ns"]
                                        - r["store_ns"]) / r["switches"] / 1000 for r in a])}
    ac = raw["aC"]
    out["aC_breakdown_us_per_switch"] = {
        "exit (inside KVM_RUN)": spread([r["exit_ns"] / n / 1000 for r in ac]),
        "KVM ioctls (pull + push)": spread([(r["pull_ns"] + r["push_ns"]) / n / 1000 for r in ac]),
        "store (switch_context)": spread([r["store_ns"] / n / 1000 for r in ac]),
        "completing + timer (rest in C)": spread([(r["in_c_ns"] - r["exit_ns"] - r["pull_ns"] - r["push_ns"]
                                                   - r["store_ns"]) / n / 1000 for r in ac]),
        "run loop (Python)": spread([(r["wall_ns"] - r["in_c_ns"]) / n / 1000 for r in ac])}
    out["c_exit_inside_kvm_run_us"] = spread([r["exit_ns"] / n / 1000 for r in raw["c"]])
    out["b_exit_inside_kvm_run_us"] = spread([r["exit_ns"] / n / 1000 for r in raw["b"]])
    if args.json:
        print(json.dumps(out, indent=2))
        return 0

    def f(d: dict[str, float], fmt: str = ".1f") -> str:
        return f"{d['median']:{fmt}} ({d['min']:{fmt}}-{d['max']:{fmt}})"

    print(f"{n} exits per way on core {cpu}, medians of {args.reps} interleaved repetitions (min-max); "
          f"load average {out['loadavg'][0]:.2f}")
    print("a: pyvswitch from Python, two guests on one vCPU switched at every exit (complete, pull, "
          "switch_context, push, run); b: two vCPU threads on the "
          "core handing over at every exit; c: one vCPU, the same exits, no switch; aC, bC, cC: the same, each exit "
          "one call of the C slice loop (aC: the access completed, pull, store, push and the run in that one call)")
    for clock, what in (("wall", "wall clock"), ("cpu", "CPU time (the host's other load left out)")):
        o = out[clock]
        pe, ps = o["per_exit_us"], o["per_switch_us"]
        for a, b in (("a", "b"), ("aC", "bC")):
            c = "c" + a[1:]
            ratio = o[f"({a}-{c})/({b}-{c})"]
            print(f"\n{what}, {'each exit a Python call' if a == 'a' else 'each exit one C call'}: us per exit "
                  f"{a} {f(pe[a])}, {b} {f(pe[b])}, {c} {f(pe[c])}; per switch {a}-{c} {f(ps[f'{a}-{c}'])} us, "
                  f"{b}-{c} {f(ps[f'{b}-{c}'])} us")
            print(f"  ({a}-{c})/({b}-{c}) {f(ratio, '.2f')} (target <= 3: "
                  f"{'met' if ratio['median'] <= 3 else 'not met'}), {a}/{b} {f(o[f'{a}/{b}'], '.2f')}")
    for key, name in (("a_breakdown_us_per_switch", "a"), ("aC_breakdown_us_per_switch", "aC")):
        print(f"\nwhere {name}'s time goes, us per switch (wall):")
        for k, v in out[key].items():
            print(f"  {k:31s} {f(v)}")
    print(f"  (the exit alone, inside KVM_RUN: c {f(out['c_exit_inside_kvm_run_us'])} us, "
          f"b {f(out['b_exit_inside_kvm_run_us'])} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
