#!/usr/bin/env python3
"""Where the 4 MiB guest's penalty after a switch comes from: one guest alone on
its vCPU, run four ways, interleaved, and its own time (inside KVM_RUN)
compared side by side:

- ``solo``:   one slice, to its end (only its device writes exit);
- ``plain``:  nothing between its slices (what a guest preempted alone pays);
- ``repush``: between slices its whole state is pulled, forgotten and pushed
  again - every KVM_SET_* a switch can issue, CR3 unchanged;
- ``cr3``:    the same, but the vCPU first loads another CR3 (the calibration
  guest's, through KVM_SET_SREGS, one 20 us slice of ``jmp .``), so pushing the
  guest back changes CR3 as a switch between guests does.

If ``cr3`` costs the guest far more of its own time than ``repush`` it is the
CR3 change through KVM_SET_SREGS (KVM resets its MMU context: with shadow
paging, as under kvm-pvm, the guest's shadow page tables are rebuilt on demand),
not the ioctls nor the data the guest keeps in caches.

    python scripts/bench_mmu_reset.py [--guest mem4m|cpu] [--reps 5] [--slice-us 1000] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_guests  # noqa: E402

import pyvswitch  # noqa: E402
from pyvswitch.guest import build  # noqa: E402
from pyvswitch.kvm import Scheduler, why_unusable  # noqa: E402
from pyvswitch.kvm.scheduler import Job, RunReport  # noqa: E402

WAYS = ("solo", "plain", "repush", "cr3")
SOLO_US = 10_000_000.0                  # one slice: the guest runs to its end


class Between(Scheduler):
    """A scheduler that does ``way`` to the vCPU between a lone guest's slices."""

    way = "plain"
    c_loop = False          # every slice through _slice below, the same way for all four

    def _slice(self, job: Job, slice_ns: int, rep: RunReport, **kw: object) -> None:
        super()._slice(job, slice_ns, rep, **kw)  # type: ignore[arg-type]
        if job.done or self.way in ("plain", "solo"):
            return
        self.vcpu.pull(self.pcpu)
        if self.way == "cr3":
            self.vcpu.calibrate(20_000, 1)      # CR3 := the calibration guest's, by KVM_SET_SREGS
        else:
            self.vcpu.flush()                   # forget what KVM holds: the push sets every group
        self.vcpu.push(self.pcpu)


def run(image: bytes, way: str, slice_us: float, cpu: int) -> dict[str, float]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        with pyvswitch.open("reference-kvm") as hv:
            s = Between(hv)
            s.way = way
            job = s.add(hv.create_vm("g"), image, mem_bytes=bench_guests.MEM)
            s.vcpu.shortest_slice_ns()
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            rep = s.run(slice_us=SOLO_US if way == "solo" else slice_us)
            wall, cpu_ns = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
            if job.exit_status != 0:
                raise RuntimeError(f"guest failed: {job.error or job.exit_status}")
    finally:
        os.sched_setaffinity(0, before)
    return {"wall_ms": wall / 1e6, "cpu_ms": cpu_ns / 1e6, "own_ms": job.clock_ns / 1e6, "slices": rep.slices,
            "own_us_per_slice": job.clock_ns / max(1, rep.slices) / 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guest", default="mem4m", choices=sorted(bench_guests.SOURCES))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--slice-us", type=float, default=1000.0)
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--ways", default=",".join(WAYS), help="a subset of solo,plain,repush,cr3 (plain always runs)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ways = ["plain"] + [w for w in WAYS if w in args.ways.split(",") and w != "plain"]
    why = why_unusable()
    if why:
        print(f"bench_mmu_reset: KVM is not usable here: {why}", file=sys.stderr)
        return 2
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "g.c"
        src.write_text(bench_guests.SOURCES[args.guest])
        image = build([src], Path(tmp) / "g.elf", bench_guests.FLAGS[args.guest]).read_bytes()
    raw: dict[str, list[dict[str, float]]] = {w: [] for w in ways}
    for _ in range(args.reps):
        for w in ways:
            raw[w].append(run(image, w, args.slice_us, cpu))
    out: dict[str, Any] = {"guest": args.guest, "slice_us": args.slice_us, "reps": args.reps, "ways": {}}
    for w in ways:
        own = [r["own_ms"] for r in raw[w]]
        out["ways"][w] = {
            "own_ms": bench_guests.spread(own),
            "wall_ms": bench_guests.spread([r["wall_ms"] for r in raw[w]]),
            # the thread's CPU time (the guest's time in KVM_RUN is the thread's): the host's other load left out
            "cpu_ms": bench_guests.spread([r["cpu_ms"] for r in raw[w]]),
            "cpu_vs_plain": bench_guests.spread([r["cpu_ms"] / p["cpu_ms"] for r, p in zip(raw[w], raw["plain"])]),
            "extra_cpu_us_per_slice": bench_guests.spread(
                [(r["cpu_ms"] - p["cpu_ms"]) * 1000 / max(1, r["slices"]) for r, p in zip(raw[w], raw["plain"])]),
            "own_vs_plain": bench_guests.spread([o / p["own_ms"] for o, p in zip(own, raw["plain"])]),
            # the guest's own time each slice costs it beyond the plain run's, per slice
            "extra_own_us_per_slice": bench_guests.spread(
                [(o - p["own_ms"]) * 1000 / max(1, r["slices"]) for o, p, r in zip(own, raw["plain"], raw[w])]),
            "slices": bench_guests.spread([r["slices"] for r in raw[w]])}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0

    def f(d: dict[str, float], fmt: str = ".2f") -> str:
        return f"{d['median']:{fmt}} ({d['min']:{fmt}}-{d['max']:{fmt}})"

    print(f"{args.guest} alone at {args.slice_us:g} us slices, medians of {args.reps} interleaved repetitions (min-max)")
    for w, d in out["ways"].items():
        print(f"  {w:7s} own {f(d['own_ms'], '.1f')} ms = {f(d['own_vs_plain'])}x plain, "
              f"{f(d['extra_own_us_per_slice'], '.0f')} us more per slice; wall {f(d['wall_ms'], '.1f')} ms; "
              f"thread CPU {f(d['cpu_ms'], '.1f')} ms = {f(d['cpu_vs_plain'])}x plain, "
              f"{f(d['extra_cpu_us_per_slice'], '.0f')} us more per slice; "
              f"{f(d['slices'], '.0f')} slices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
