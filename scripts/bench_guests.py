#!/usr/bin/env python3
"""The same guests two ways on one core: multiplexed by pyvswitch on one vCPU,
and each on a vCPU thread of its own, every thread pinned to that core and
scheduled by Linux - what a user would do instead.

Three guests, each run as --copies identical copies: a CPU-bound integer loop,
an AVX-512 loop (where the host has AVX-512F) and one that keeps touching a
4 MiB working set.  For each guest and each slice, the repetitions interleave
the two ways and a solo run, and the figures are ratios measured side by side:
pyvswitch's wall time over Linux's and each over the solo sum (medians with
min and max).  Then where a pyvswitch slice and switch go: the guest's own
time, the exit that ends its slice, the run loop, KVM's ioctls (pull + push)
and the store (switch_context) - and Linux's cost per vCPU-thread switch.
Beside the wall clock, each way's CPU time (the threads' own, guest time
included): on a host busy with other work the wall clock counts what the others
took, the CPU time does not, so its ratio is the one that holds there.

    python scripts/bench_guests.py [--reps 5] [--copies 4] [--slices-us 4000,1000,100] [--cpu N] [--json]

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

MEM = 16 << 20
SOURCES = {
    "cpu": """
#include <vsw_guest.h>
int main(void)
{
    uint64_t x = 1, y = 7;
    for (long i = 0; i < 30000000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        y ^= x >> 29;
    }
    vsw_printf("cpu %016llx\\n", (unsigned long long)y);
    return 0;
}
""",
    "avx512": """
#include <immintrin.h>
#include <vsw_guest.h>
int main(void)
{
    __m512i v[8];
    for (int j = 0; j < 8; j++)
        v[j] = _mm512_set1_epi64(0x1111111111111111ll * (j + 1));
    const __m512i k = _mm512_set_epi64(1, 2, 3, 5, 7, 11, 13, 17);
    for (int i = 0; i < 1500000; i++)
        for (int j = 0; j < 8; j++)
            v[j] = _mm512_xor_si512(_mm512_add_epi64(v[j], k), _mm512_rol_epi64(v[(j + 1) & 7], 13));
    uint64_t out[8], h = 0;
    for (int j = 0; j < 8; j++) {
        _mm512_storeu_si512(out, v[j]);
        for (int l = 0; l < 8; l++)
            h = (h ^ out[l]) * 0x100000001b3ull;
    }
    vsw_printf("avx512 %016llx\\n", (unsigned long long)h);
    return 0;
}
""",
    "mem4m": """
#include <vsw_guest.h>
int main(void)
{
    const unsigned long n = (4ul << 20) / 8;
    uint64_t *m = malloc(n * 8), x = 88172645463325252ull, sum = 0;
    if (!m)
        return 1;
    for (unsigned long i = 0; i < n; i++)
        m[i] = i;
    for (long r = 0; r < 12000000; r++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t *p = &m[x & (n - 1)];
        sum += *p;
        *p = sum;
    }
    vsw_printf("mem4m %016llx\\n", (unsigned long long)sum);
    return 0;
}
""",
}
FLAGS = {"cpu": [], "avx512": ["-mavx512f"], "mem4m": []}


def host_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def ctxt_switches() -> int:
    """This thread's context switches so far (voluntary and not)."""
    n = 0
    for line in Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text().splitlines():
        if "ctxt_switches" in line:
            n += int(line.split()[1])
    return n


def run_linux(image: bytes, copies: int, cpu: int) -> dict[str, Any]:
    """Each copy on a vCPU thread of its own (its own VM), all pinned to ``cpu``:
    Linux schedules them.  Each thread enters KVM_RUN for as long as its guest
    runs (a 10 s slice: only the guest's own device writes come back)."""
    ready, go = threading.Barrier(copies + 1), threading.Event()
    done: list[float] = []
    switches: list[int] = []
    cpu_ns: list[int] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            os.sched_setaffinity(0, {cpu})
            with pyvswitch.open("reference-kvm") as hv:
                sched = Scheduler(hv)
                job = sched.add(hv.create_vm(f"t{i}"), image, mem_bytes=MEM)
                sched.vcpu.shortest_slice_ns()          # its calibration, before the clock starts
                ready.wait()
                go.wait()
                c0, t0 = ctxt_switches(), time.thread_time_ns()
                sched.run(slice_us=10_000_000)
                cpu_ns.append(time.thread_time_ns() - t0)
                switches.append(ctxt_switches() - c0)
                done.append(time.perf_counter())
                if job.exit_status != 0:
                    raise RuntimeError(f"guest failed: {job.error or job.exit_status}")
        except BaseException as exc:        # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            try:
                ready.abort()
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(copies)]
    for t in threads:
        t.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {"wall_s": max(done) - t0, "cpu_s": sum(cpu_ns) / 1e9, "thread_switches": sum(switches)}


def run_pyvswitch(image: bytes, copies: int, cpu: int, slice_us: float) -> dict[str, Any]:
    """The copies multiplexed on one vCPU by the scheduler, its thread pinned to ``cpu``."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        with pyvswitch.open("reference-kvm") as hv:
            sched = Scheduler(hv)
            jobs = [sched.add(hv.create_vm(f"g{i}"), image, mem_bytes=MEM) for i in range(copies)]
            kick = sched.vcpu.shortest_slice_ns()
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            rep = sched.run(slice_us=max(slice_us, kick / 1000))
            wall, cpu_ns = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
            bad = [j.error or j.exit_status for j in jobs if j.exit_status != 0]
            if bad:
                raise RuntimeError(f"guest failed: {bad[0]}")
            kick_p50 = sched.vcpu.kick_measurement()["p50_ns"]
    finally:
        os.sched_setaffinity(0, before)
    n = max(1, rep.switches)
    slices = max(1, rep.slices)
    loop = wall - rep.guest_ns - rep.pull_ns - rep.push_ns - rep.switch_ns
    return {"wall_s": wall / 1e9, "cpu_s": cpu_ns / 1e9, "own_s": rep.guest_ns / 1e9, "slices": rep.slices, "switches": rep.switches,
            "slice_kept_us": rep.slice_us(),
            "switch_us": {"kvm_ioctls": (rep.pull_ns + rep.push_ns) / n / 1000, "store": rep.switch_ns / n / 1000,
                          "exit": kick_p50 / 1000},
            "slice_us": {"guest_in_kvm_run": rep.guest_ns / slices / 1000, "run_loop": loop / slices / 1000}}


def run_solo(image: bytes, cpu: int) -> dict[str, Any]:
    return run_linux(image, 1, cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--slices-us", default="4000,1000,100")
    ap.add_argument("--cpu", type=int, default=None, help="the core (default: the last this process may use)")
    ap.add_argument("--guests", default="cpu,avx512,mem4m")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    why = why_unusable()
    if why:
        print(f"bench_guests: KVM is not usable here: {why}", file=sys.stderr)
        return 2
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    slices = [float(s) for s in args.slices_us.split(",")]
    kinds = [g for g in args.guests.split(",") if g != "avx512" or "avx512f" in host_flags()]
    skipped = [g for g in args.guests.split(",") if g not in kinds]
    with tempfile.TemporaryDirectory() as tmp:
        images = {}
        for g in kinds:
            src = Path(tmp) / f"{g}.c"
            src.write_text(SOURCES[g])
            images[g] = build([src], Path(tmp) / f"{g}.elf", FLAGS[g]).read_bytes()
    results: dict[str, Any] = {}
    for g in kinds:
        raw: dict[str, list[Any]] = {"solo": [], "linux": [], **{f"pyvswitch@{s:g}": [] for s in slices}}
        for _ in range(args.reps):                      # interleaved: the host's load falls on every way alike
            raw["solo"].append(run_solo(images[g], cpu))
            raw["linux"].append(run_linux(images[g], args.copies, cpu))
            for s in slices:
                raw[f"pyvswitch@{s:g}"].append(run_pyvswitch(images[g], args.copies, cpu, s))
        solo_sum = [args.copies * x["wall_s"] for x in raw["solo"]]
        solo_cpu = [args.copies * x["cpu_s"] for x in raw["solo"]]
        lin = [r["wall_s"] for r in raw["linux"]]
        lin_cpu = [r["cpu_s"] for r in raw["linux"]]
        out: dict[str, Any] = {
            "solo_s": spread([x["wall_s"] for x in raw["solo"]]),
            "solo_cpu_s": spread([x["cpu_s"] for x in raw["solo"]]),
            "linux": {"wall_s": spread(lin), "vs_solo_sum": spread([w / s for w, s in zip(lin, solo_sum)]),
                      # the threads' CPU time (a guest's time in KVM_RUN is its thread's): the host's other
                      # load left out, so this ratio holds on a busy machine where the wall clock does not
                      "cpu_s": spread(lin_cpu), "cpu_vs_solo_sum": spread([c / s for c, s in zip(lin_cpu, solo_cpu)]),
                      # CPU time over the solo runs' per thread switch: what a switch costs, the others' load left out
                      "cpu_us_per_thread_switch": spread([(c - s) / max(1, r["thread_switches"]) * 1e6
                                                          for c, s, r in zip(lin_cpu, solo_cpu, raw["linux"])]),
                      "us_per_thread_switch": spread([max(0.0, w - s) / max(1, r["thread_switches"]) * 1e6
                                                      for w, s, r in zip(lin, solo_sum, raw["linux"])])}}
        for s in slices:
            runs = raw[f"pyvswitch@{s:g}"]
            walls = [r["wall_s"] for r in runs]
            out[f"pyvswitch@{s:g}us"] = {
                "wall_s": spread(walls),
                "vs_linux": spread([w / lw for w, lw in zip(walls, lin)]),
                "cpu_s": spread([r["cpu_s"] for r in runs]),
                "cpu_vs_linux": spread([r["cpu_s"] / lc for r, lc in zip(runs, lin_cpu)]),
                "cpu_us_per_switch": spread([(r["cpu_s"] - sc) / max(1, r["switches"]) * 1e6
                                             for r, sc in zip(runs, solo_cpu)]),
                "vs_solo_sum": spread([w / ss for w, ss in zip(walls, solo_sum)]),
                # the guests' own time (inside KVM_RUN) over the solo sum: what a switch costs them after it
                "own_vs_solo_sum": spread([r["own_s"] / ss for r, ss in zip(runs, solo_sum)]),
                "slice_kept_us": {k: spread([r["slice_kept_us"][k] or 0.0 for r in runs]) for k in ("p50", "p99")},
                "switch_us": {k: spread([r["switch_us"][k] for r in runs]) for k in runs[0]["switch_us"]},
                "slice_us": {k: spread([r["slice_us"][k] for r in runs]) for k in runs[0]["slice_us"]},
                "switches": spread([r["switches"] for r in runs])}
        results[g] = out
    doc = {"copies": args.copies, "reps": args.reps, "cpu": cpu, "slices_us": slices, "skipped": skipped,
           "results": results}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0

    def f(d: dict[str, float], scale: float = 1.0, fmt: str = ".2f") -> str:
        return f"{d['median'] * scale:{fmt}} ({d['min'] * scale:{fmt}}-{d['max'] * scale:{fmt}})"

    print(f"{args.copies} copies of each guest on core {cpu}, medians of {args.reps} interleaved repetitions "
          f"(min-max)" + (f"; skipped (host lacks it): {', '.join(skipped)}" if skipped else ""))
    for g, out in results.items():
        print(f"\n{g}: solo {f(out['solo_s'], 1e3, '.1f')} ms; Linux vCPU threads "
              f"{f(out['linux']['wall_s'], 1e3, '.1f')} ms = {f(out['linux']['vs_solo_sum'])}x the solo sum, "
              f"{f(out['linux']['us_per_thread_switch'], 1, '.1f')} us over the solo sum per thread switch; "
              f"CPU time {f(out['linux']['cpu_s'], 1e3, '.1f')} ms = {f(out['linux']['cpu_vs_solo_sum'])}x the solo sum's, "
              f"{f(out['linux']['cpu_us_per_thread_switch'], 1, '.1f')} us CPU over it per thread switch")
        for s in slices:
            p = out[f"pyvswitch@{s:g}us"]
            sw, sl = p["switch_us"], p["slice_us"]
            print(f"  pyvswitch at {s:g} us: {f(p['wall_s'], 1e3, '.1f')} ms = {f(p['vs_linux'])}x Linux, "
                  f"{f(p['vs_solo_sum'])}x the solo sum (their own time {f(p['own_vs_solo_sum'])}x); slices kept p50 {f(p['slice_kept_us']['p50'], 1, '.0f')} us, "
                  f"p99 {f(p['slice_kept_us']['p99'], 1, '.0f')} us")
            print(f"    CPU time {f(p['cpu_s'], 1e3, '.1f')} ms = {f(p['cpu_vs_linux'])}x Linux's threads', "
                  f"{f(p['cpu_us_per_switch'], 1, '.1f')} us CPU over the solo sum's per switch")
            print(f"    per switch: KVM ioctls {f(sw['kvm_ioctls'], 1, '.1f')} us, store {f(sw['store'], 1, '.1f')} us, "
                  f"stopping the guest {f(sw['exit'], 1, '.1f')} us (within KVM_RUN); per slice (mean): guest in KVM_RUN "
                  f"{f(sl['guest_in_kvm_run'], 1, '.0f')} us, run loop {f(sl['run_loop'], 1, '.1f')} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
