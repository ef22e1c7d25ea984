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

Linux is measured twice, side by side: on its default scheduler (preempting at
its tick, 1000/HZ ms), and switching its threads at each slice pyvswitch is run
at - the fair comparison.  For that, SCHED_RR with
/proc/sys/kernel/sched_rr_timeslice_ms set to the slice (restored afterwards;
the kernel keeps it in whole ticks, which sched_rr_get_interval shows); where
the tick is longer than the slice, SCHED_RR cannot preempt that often, and the
threads run on the default scheduler (EEVDF) with the slice as their own
(sched_setattr's sched_runtime) while a SCHED_FIFO "ticker" thread on the same
core wakes every slice - a stand-in for HRTICK, whose switch (debugfs) is out of
reach here - so Linux re-picks a thread each period.  Either way the threads'
nonvoluntary context switches (/proc/<tid>/status) show how often Linux did
preempt them, and an extra untimed run samples which thread ran in each period
to count the hand-overs between guests.  The ticker's own cost is measured on a
lone guest (solo with and without it) and taken out in the "net" figures.

    python scripts/bench_guests.py [--reps 5] [--copies 4] [--slices-us 4000,1000,100] [--cpu N] [--json]

Exits 2 (saying why) where /dev/kvm is unusable.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
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


def nonvoluntary_switches() -> int:
    """This thread's nonvoluntary context switches so far: Linux preempted it."""
    for line in Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text().splitlines():
        if line.startswith("nonvoluntary_ctxt_switches"):
            return int(line.split()[1])
    return 0


RR_SYSCTL = Path("/proc/sys/kernel/sched_rr_timeslice_ms")
SYS_SCHED_SETATTR = 314                 # x86_64
CLOCK_MONOTONIC, TIMER_ABSTIME = 1, 1


def tick_ms() -> float:
    """Linux's scheduler tick here, in ms (1000 / CONFIG_HZ), from the RR timeslice
    a SCHED_RR thread gets for a 1 ms request: the kernel rounds it up to a tick."""
    got: list[float] = []

    def probe() -> None:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        got.append(os.sched_rr_get_interval(0) * 1000)

    with rr_timeslice(1.0) as why:
        if why is not None:
            return float("nan")
        t = threading.Thread(target=probe)
        t.start()
        t.join()
    return got[0] if got else float("nan")


class rr_timeslice:
    """``with rr_timeslice(ms) as err:`` sched_rr_timeslice_ms set to ``ms`` (whole
    ms) and restored on the way out; ``err`` is None, or why it could not be set."""

    #: signals whose default action ends the process without unwinding (no ``finally``):
    #: while the host's setting is the bench's, they unwind instead (exit 128 + signal)
    UNWIND = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self, ms: float) -> None:
        self.ms, self.old = ms, None
        self.handlers: dict[int, Any] = {}

    @staticmethod
    def _unwind(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    def __enter__(self) -> str | None:
        if self.ms != int(self.ms) or self.ms < 1:
            return f"sched_rr_timeslice_ms takes whole milliseconds, not {self.ms:g}"
        if threading.current_thread() is threading.main_thread():
            for sig in self.UNWIND:
                if signal.getsignal(sig) is signal.SIG_DFL:
                    self.handlers[sig] = signal.signal(sig, self._unwind)
        try:
            self.old = RR_SYSCTL.read_text().strip()
            RR_SYSCTL.write_text(f"{int(self.ms)}\n")
        except OSError as exc:
            self.old = None
            self._restore_handlers()
            return f"cannot set {RR_SYSCTL}: {exc.strerror}"
        return None

    def _restore_handlers(self) -> None:
        for sig, was in self.handlers.items():
            signal.signal(sig, was)
        self.handlers.clear()

    def __exit__(self, *exc: object) -> None:
        try:
            if self.old is not None:
                RR_SYSCTL.write_text(self.old + "\n")
        finally:
            self._restore_handlers()


def set_own_slice(ns: int) -> None:
    """This thread on the default scheduler (SCHED_OTHER) with its own EEVDF slice
    of ``ns`` (sched_setattr's sched_runtime, Linux 6.12 on; 0.1-100 ms)."""
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("IIQiIQQQII", 56, 0, 0, 0, 0, ns, 0, 0, 0, 0), 56)
    if libc.syscall(SYS_SCHED_SETATTR, 0, attr, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"sched_setattr(sched_runtime={ns}): {os.strerror(e)}")
    sched = Path(f"/proc/self/task/{threading.get_native_id()}/sched")
    for line in sched.read_text().splitlines():
        if line.startswith("se.slice") and int(line.split(":")[1]) != ns:
            raise OSError(0, f"asked an EEVDF slice of {ns} ns, the kernel keeps {line.split(':')[1].strip()}")


def ran_ns(fd: int, was: int) -> int:
    """A thread's run time so far from its open /proc schedstat (``was`` once it has ended)."""
    try:
        return int(os.pread(fd, 64, 0).split()[0])
    except OSError:
        return was


class Ticker(threading.Thread):
    """A SCHED_FIFO thread pinned to ``cpu`` that wakes every ``period_ns`` (absolute
    deadlines): each wake preempts the guest thread running there, and Linux picks
    the next when it sleeps again.  ``tids``: sample which of them ran in each
    period (their /proc schedstat run time), to count hand-overs; costs a little
    per wake, so only for the untimed verification run."""

    def __init__(self, cpu: int, period_ns: int, tids: list[int] | None = None) -> None:
        super().__init__(daemon=True)
        self.cpu, self.period_ns, self.tids = cpu, period_ns, tids
        self.halt = threading.Event()
        self.wakes = self.cpu_ns = self.handovers = self.periods = 0
        self.error: BaseException | None = None
        self.started = threading.Event()

    def run(self) -> None:
        import ctypes
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            os.sched_setaffinity(0, {self.cpu})
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            ts = (ctypes.c_long * 2)()
            fds = [os.open(f"/proc/self/task/{t}/schedstat", os.O_RDONLY) for t in self.tids or []]
            last = [int(os.pread(fd, 64, 0).split()[0]) for fd in fds]
            prev = -1
            c0 = time.thread_time_ns()
            t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            self.started.set()
            while not self.halt.is_set():
                t += self.period_ns
                ts[0], ts[1] = t // 1_000_000_000, t % 1_000_000_000
                libc.clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ts, None)
                self.wakes += 1
                if fds:
                    now = [ran_ns(fd, was) for fd, was in zip(fds, last)]
                    ran = max(range(len(fds)), key=lambda i: now[i] - last[i])
                    if now[ran] > last[ran]:
                        self.periods += 1
                        self.handovers += prev not in (-1, ran)
                        prev = ran
                    last = now
            self.cpu_ns = time.thread_time_ns() - c0
            for fd in fds:
                os.close(fd)
        except BaseException as exc:        # noqa: BLE001 - reported by run_linux
            self.error = exc
            self.started.set()


def run_linux(image: bytes, copies: int, cpu: int, how: str = "default", slice_ns: int = 0,
              verify: bool = False) -> dict[str, Any]:
    """Each copy on a vCPU thread of its own (its own VM), all pinned to ``cpu``:
    Linux schedules them.  Each thread enters KVM_RUN for as long as its guest
    runs (a 10 s slice: only the guest's own device writes come back).
    ``how``: "default" (SCHED_OTHER as it is), "rr" (SCHED_RR priority 1: the
    caller sets the timeslice), "ticker" (SCHED_OTHER with an EEVDF slice of
    ``slice_ns`` and a Ticker at that period; ``verify``: it counts hand-overs)."""
    ready, go = threading.Barrier(copies + 1), threading.Event()
    done: list[float] = []
    switches: list[int] = []
    preempted: list[int] = []
    tids: list[int] = []
    rr_ns: list[int] = []
    cpu_ns: list[int] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            os.sched_setaffinity(0, {cpu})
            with pyvswitch.open("reference-kvm") as hv:
                sched = Scheduler(hv)
                job = sched.add(hv.create_vm(f"t{i}"), image, mem_bytes=MEM)
                sched.vcpu.shortest_slice_ns()          # its calibration, before the clock starts
                tids.append(threading.get_native_id())
                if how == "ticker":
                    set_own_slice(slice_ns)
                if how == "rr":                 # every thread before the start: a later one could not run to set it
                    os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
                    rr_ns.append(int(os.sched_rr_get_interval(0) * 1e9))
                ready.wait()
                go.wait()
                c0, n0, t0 = ctxt_switches(), nonvoluntary_switches(), time.thread_time_ns()
                sched.run(slice_us=10_000_000)
                cpu_ns.append(time.thread_time_ns() - t0)
                switches.append(ctxt_switches() - c0)
                preempted.append(nonvoluntary_switches() - n0)
                done.append(time.perf_counter())
                if how == "rr":
                    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
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
    ticker = None
    if how == "ticker" and not errors:
        ticker = Ticker(cpu, slice_ns, list(tids) if verify else None)
        ticker.start()
        ticker.started.wait()
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    if ticker is not None:
        ticker.halt.set()
        ticker.join()
        if ticker.error is not None:
            raise ticker.error
    if errors:
        raise errors[0]
    out = {"wall_s": max(done) - t0, "cpu_s": sum(cpu_ns) / 1e9, "thread_switches": sum(switches),
           "preempted": sum(preempted)}
    if rr_ns:
        out["rr_interval_ms"] = rr_ns[0] / 1e6
    if ticker is not None:
        out.update(ticker_wakes=ticker.wakes, ticker_cpu_s=ticker.cpu_ns / 1e9,
                   cpu_s=out["cpu_s"] + ticker.cpu_ns / 1e9)
        if verify:
            out.update(handovers=ticker.handovers, periods=ticker.periods)
    return out


def linux_at(slice_us: float, tick: float) -> str:
    """How Linux is made to switch its threads every ``slice_us``: "rr" where SCHED_RR's
    timeslice (whole ticks of ``tick`` ms) can be that, else "ticker"."""
    ms = slice_us / 1000
    return "rr" if ms == int(ms) and ms >= 1 and tick == tick and abs(ms / tick - round(ms / tick)) < 1e-9 else "ticker"


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
    tick = tick_ms()
    ways = {sl: linux_at(sl, tick) for sl in slices}
    results: dict[str, Any] = {}
    for g in kinds:
        raw: dict[str, list[Any]] = {"solo": [], "linux": [], **{f"pyvswitch@{s:g}": [] for s in slices},
                                     **{f"linux@{s:g}": [] for s in slices},
                                     **{f"solo+ticker@{s:g}": [] for s in slices if ways[s] == "ticker"}}
        rr_note: dict[float, str | None] = {}
        for _ in range(args.reps):                      # interleaved: the host's load falls on every way alike
            raw["solo"].append(run_solo(images[g], cpu))
            raw["linux"].append(run_linux(images[g], args.copies, cpu))
            for s in slices:
                if ways[s] == "rr":
                    with rr_timeslice(s / 1000) as why:
                        rr_note[s] = why
                        if why is None:
                            raw[f"linux@{s:g}"].append(run_linux(images[g], args.copies, cpu, "rr"))
                else:
                    raw[f"solo+ticker@{s:g}"].append(run_linux(images[g], 1, cpu, "ticker", int(s * 1000)))
                    raw[f"linux@{s:g}"].append(run_linux(images[g], args.copies, cpu, "ticker", int(s * 1000)))
                raw[f"pyvswitch@{s:g}"].append(run_pyvswitch(images[g], args.copies, cpu, s))
        # untimed: which thread ran in each period, to count Linux's hand-overs between guests
        verified = {s: run_linux(images[g], args.copies, cpu, "ticker", int(s * 1000), verify=True)
                    for s in slices if ways[s] == "ticker"}
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
                                                      for w, s, r in zip(lin, solo_sum, raw["linux"])]),
                      "preempted_every_ms": spread([r["cpu_s"] / max(1, r["preempted"]) * 1e3 for r in raw["linux"]])}}
        for s in slices:
            runs = raw[f"pyvswitch@{s:g}"]
            walls = [r["wall_s"] for r in runs]
            lruns = raw[f"linux@{s:g}"]
            la: dict[str, Any] = {"how": ways[s]}
            if ways[s] == "rr" and rr_note.get(s):
                la["not_set"] = rr_note[s]
            if lruns:
                lw, lc = [r["wall_s"] for r in lruns], [r["cpu_s"] for r in lruns]
                la.update(wall_s=spread(lw), cpu_s=spread(lc),
                          vs_solo_sum=spread([w / ss for w, ss in zip(lw, solo_sum)]),
                          preempted_every_ms=spread([r["cpu_s"] / max(1, r["preempted"]) * 1e3 for r in lruns]))
                if ways[s] == "rr":
                    la["rr_interval_ms"] = lruns[0].get("rr_interval_ms")
                    lnw, lnc = lw, lc
                else:
                    # the ticker's own cost, measured on a lone guest in the same repetition, taken out
                    st = raw[f"solo+ticker@{s:g}"]
                    # (CPU time, the ticker's own included: the wall clock of a lone guest is too noisy
                    # here to show a few us; one median cost per wake for every repetition)
                    per_wake = [(t["cpu_s"] - x["cpu_s"]) / max(1, t["ticker_wakes"]) * 1e6
                                for t, x in zip(st, raw["solo"])]
                    wake_s = max(0.0, statistics.median(per_wake)) / 1e6
                    lnw = [w - wake_s * r["ticker_wakes"] for w, r in zip(lw, lruns)]
                    lnc = [c - wake_s * r["ticker_wakes"] for c, r in zip(lc, lruns)]
                    v = verified[s]
                    la.update(ticker_us_per_wake=spread(per_wake), net_wall_s=spread(lnw), net_cpu_s=spread(lnc),
                              verified={"handovers": v["handovers"], "periods": v["periods"],
                                        "handover_every_ms": v["cpu_s"] / max(1, v["handovers"]) * 1e3})
                la.update(pyvswitch_vs=spread([w / x for w, x in zip(walls, lnw)]),
                          pyvswitch_cpu_vs=spread([r["cpu_s"] / x for r, x in zip(runs, lnc)]),
                          pyvswitch_vs_raw=spread([w / x for w, x in zip(walls, lw)]),
                          pyvswitch_cpu_vs_raw=spread([r["cpu_s"] / x for r, x in zip(runs, lc)]))
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
                "switches": spread([r["switches"] for r in runs]),
                "linux_at_slice": la}
        results[g] = out
    doc = {"copies": args.copies, "reps": args.reps, "cpu": cpu, "slices_us": slices, "skipped": skipped,
           "skip_reasons": {g: "this host has no AVX-512F (/proc/cpuinfo flags)" for g in skipped},
           "tick_ms": tick, "linux_at_slice": ways, "loadavg": os.getloadavg(), "results": results}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0

    def f(d: dict[str, float], scale: float = 1.0, fmt: str = ".2f") -> str:
        return f"{d['median'] * scale:{fmt}} ({d['min'] * scale:{fmt}}-{d['max'] * scale:{fmt}})"

    print(f"{args.copies} copies of each guest on core {cpu}, medians of {args.reps} interleaved repetitions "
          f"(min-max); load average {os.getloadavg()[0]:.2f}")
    for g, why in doc["skip_reasons"].items():
        print(f"{g}: skipped: {why}; run it where it does")
    print(f"Linux's tick here: {tick:g} ms (SCHED_RR's timeslice for a 1 ms request, sched_rr_get_interval)")
    for s, how in ways.items():
        print(f"Linux at a {s:g} us slice: " + (
            f"SCHED_RR, sched_rr_timeslice_ms = {s / 1000:g} (restored afterwards)" if how == "rr" else
            f"SCHED_RR cannot: its timeslice is whole ticks ({tick:g} ms); instead each thread's own EEVDF slice "
            f"= {s:g} us (sched_setattr) and a SCHED_FIFO ticker waking every {s:g} us on the core"))
    for g, out in results.items():
        print(f"\n{g}: solo {f(out['solo_s'], 1e3, '.1f')} ms; Linux vCPU threads "
              f"{f(out['linux']['wall_s'], 1e3, '.1f')} ms = {f(out['linux']['vs_solo_sum'])}x the solo sum, "
              f"{f(out['linux']['us_per_thread_switch'], 1, '.1f')} us over the solo sum per thread switch; "
              f"CPU time {f(out['linux']['cpu_s'], 1e3, '.1f')} ms = {f(out['linux']['cpu_vs_solo_sum'])}x the solo sum's, "
              f"{f(out['linux']['cpu_us_per_thread_switch'], 1, '.1f')} us CPU over it per thread switch; "
              f"preempted every {f(out['linux']['preempted_every_ms'], 1, '.2f')} ms of CPU")
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
            la = p["linux_at_slice"]
            if "not_set" in la:
                print(f"    Linux at {s:g} us: not measured: {la['not_set']}")
            elif "wall_s" in la:
                how = (f"SCHED_RR, timeslice {la['rr_interval_ms']:g} ms; real-time threads run before the host's "
                       f"other work, so their wall clock leaves its load out: compare CPU time" if la["how"] == "rr" else
                       f"EEVDF slice + ticker, which costs {f(la['ticker_us_per_wake'], 1, '.1f')} us CPU per wake "
                       f"(a lone guest with and without it; taken out in the net figures)")
                print(f"    Linux at {s:g} us ({how}): {f(la['wall_s'], 1e3, '.1f')} ms = {f(la['vs_solo_sum'])}x "
                      f"the solo sum, CPU {f(la['cpu_s'], 1e3, '.1f')} ms; its threads preempted every "
                      f"{f(la['preempted_every_ms'], 1, '.2f')} ms of CPU"
                      + (f"; hand-overs between guests (untimed run): {la['verified']['handovers']} in "
                         f"{la['verified']['periods']} periods, one every {la['verified']['handover_every_ms']:.2f} ms"
                         if "verified" in la else ""))
                if la["how"] != "rr":
                    print(f"      net of the ticker: {f(la['net_wall_s'], 1e3, '.1f')} ms, CPU {f(la['net_cpu_s'], 1e3, '.1f')} ms")
                print(f"    pyvswitch over Linux at the same slice: wall {f(la['pyvswitch_vs'])}x, "
                      f"CPU {f(la['pyvswitch_cpu_vs'])}x" + ("" if la["how"] == "rr" else
                      f" (against Linux with its ticker: wall {f(la['pyvswitch_vs_raw'])}x, "
                      f"CPU {f(la['pyvswitch_cpu_vs_raw'])}x)"))
    within = [(g, s, out[f"pyvswitch@{s:g}us"]["linux_at_slice"]) for g, out in results.items() for s in slices]
    within = [(g, s, la) for g, s, la in within if "pyvswitch_vs" in la]
    if within:
        print("\nwithin 10 % of Linux switching at the same slice? (median CPU-time ratio <= 1.10: the CPU time "
              "leaves out the host's other load, which the wall clock counts; wall beside)")
        for g, s, la in within:
            w, c = la["pyvswitch_vs"]["median"], la["pyvswitch_cpu_vs"]["median"]
            line = f"  {g} at {s:g} us: CPU {c:.2f}x, wall {w:.2f}x"
            if la["how"] == "rr":
                line += f" (Linux: SCHED_RR): {'yes' if c <= 1.10 else 'no'}"
            else:
                cr = la["pyvswitch_cpu_vs_raw"]["median"]
                line += (f" against Linux net of its ticker: {'yes' if c <= 1.10 else 'no'}; "
                         f"CPU {cr:.2f}x against Linux with it: {'yes' if cr <= 1.10 else 'no'}")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
