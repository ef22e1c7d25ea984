#!/usr/bin/env python3
"""The cost of a Linux guest's system call, measured side by side in one run.

1. Round trip: a musl-gcc -static program makes N getppid() calls; the guest's
   cost per call is (wall time of N calls - wall time of 0 calls) / N, from
   Scheduler.run; the native cost is the same binary on the host timing its own
   loop with CLOCK_MONOTONIC.  Printed: both, and guest / native.
2. Throughput under preemption: the same program doing work with a call every
   K rounds, alone (never preempted) and preempted every --slice-us among three
   built-in guests; its own time inside KVM_RUN (the guest's own clock) alone
   over preempted is the share of its solo speed it keeps in its slices.
Medians of --rounds with min and max.

    python scripts/bench_linux_syscall.py [--rounds 5] [--calls 2000] [--slice-us 100]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyvswitch
from pyvswitch.hw.kvm import why_unusable
from pyvswitch.kvm import Scheduler

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]), every = argc > 2 ? atol(argv[2]) : 1, timed = argc > 3;
    struct timespec a, b;
    unsigned x = 1;
    long s = 0;
    if (timed) clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        if (every > 1) for (int k = 0; k < 2000; k++) x = x * 1103515245u + 12345u;
        if (i % every == 0) s += getppid();
    }
    if (timed) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    } else {
        printf("%ld %u\n", s, x);
    }
    return 0;
}
"""


def fmt(xs: list[float], unit: str = "") -> str:
    return f"{statistics.median(xs):.2f}{unit} (min {min(xs):.2f}, max {max(xs):.2f})"


def guest_wall(prog: str, args: list[str]) -> tuple[float, int]:
    """Wall seconds of Scheduler.run for the program alone, and its calls."""
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        job = s.add_linux(hv.create_vm("bench"), prog, ["bench", *args])
        t = time.perf_counter()
        s.run(slice_us=1_000_000)
        dt = time.perf_counter() - t
        assert job.exit_status == 0, job.error
        return dt, job.syscalls


def own_time(prog: str, args: list[str], slice_us: float, others: int) -> float:
    """The program's own ns inside KVM_RUN, preempted every slice_us among ``others`` guests."""
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        job = s.add_linux(hv.create_vm("bench"), prog, ["bench", *args])
        for i in range(others):
            s.add(hv.create_vm(f"other{i}"), "hash", 10**9)
        while not job.done:
            s.run(slice_us=slice_us, max_slices=200)
            if job.done:
                break
        assert job.exit_status == 0, job.error
        return job.clock_ns


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--slice-us", type=float, default=100.0)
    a = ap.parse_args()
    why = why_unusable()
    if why or not shutil.which("musl-gcc"):
        print(f"skipped: {why or 'musl-gcc is not installed (apt-get install musl-tools)'}")
        return 0
    with tempfile.TemporaryDirectory() as d:
        src, prog = Path(d) / "b.c", str(Path(d) / "b")
        src.write_text(PROGRAM)
        subprocess.run(["musl-gcc", "-static", "-O2", "-o", prog, str(src)], check=True)
        guest_ns, native_ns, ratio, keep = [], [], [], []
        for _ in range(a.rounds):
            t0, _c0 = guest_wall(prog, ["0"])
            t1, c1 = guest_wall(prog, [str(a.calls)])
            g = (t1 - t0) / a.calls * 1e9
            nat = float(subprocess.run([prog, str(a.calls * 100), "1", "t"], capture_output=True, text=True,
                                       check=True).stdout)
            guest_ns.append(g / 1000)
            native_ns.append(nat)
            ratio.append(g / nat)
            # throughput with a call every 100 rounds of work
            args = [str(a.calls * 20), "100"]
            alone = own_time(prog, args, 1_000_000, 0)
            pre = own_time(prog, args, a.slice_us, 3)
            keep.append(100 * alone / pre)
        print(f"syscall round trip (getppid), {a.calls} calls: guest {fmt(guest_ns, ' us')}, native "
              f"{fmt(native_ns, ' ns')}, guest/native {fmt(ratio, 'x')}")
        print(f"a guest with a call every 100 work rounds, preempted every {a.slice_us:g} us among 3 others, keeps "
              f"{fmt(keep, '%')} of its solo speed in its own slices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
