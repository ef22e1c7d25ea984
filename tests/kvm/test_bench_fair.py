"""The fair baselines of scripts/bench_guests.py: Linux's vCPU threads switched at
the slice pyvswitch runs at (SCHED_RR with the slice as its timeslice, or an EEVDF
slice and a ticker where the tick is longer), verified by counting how often
Linux preempted them, and the host's setting given back whatever happens.

Skipped, with the reason, where /dev/kvm is absent or unusable; the parts that
set the RR timeslice skip where it cannot be written (not root).
"""
import errno
import json
import os
import subprocess
import sys

import pytest
from locations import SCRIPTS

from pyvswitch.kvm import why_unusable

sys.path.insert(0, str(SCRIPTS))
import bench_guests  # noqa: E402

REASON = why_unusable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"KVM unusable here: {REASON}")
RR = bench_guests.RR_SYSCTL
WRITABLE = RR.exists() and os.access(RR, os.W_OK)


def test_rr_timeslice_takes_whole_milliseconds_and_writes_nothing_else():
    before = RR.read_text() if RR.exists() else None
    for bad in (0.5, 0, -1, 1.25):
        with bench_guests.rr_timeslice(bad) as why:
            assert why is not None and "whole milliseconds" in why
        assert (RR.read_text() if RR.exists() else None) == before


@pytest.mark.skipif(not WRITABLE, reason=f"{RR} is not writable here (not root)")
def test_rr_timeslice_is_given_back_when_the_body_raises():
    before = RR.read_text()
    with pytest.raises(KeyError):
        with bench_guests.rr_timeslice(7) as why:
            assert why is None and RR.read_text().strip() == "7"
            raise KeyError("halfway")
    assert RR.read_text() == before


def test_an_eevdf_slice_out_of_the_kernels_bounds_is_not_kept_silently():
    """sched_setattr clamps the slice to 0.1-100 ms (or refuses it on kernels
    before 6.12): set_own_slice says so instead of measuring another slice."""
    import threading
    got: list[BaseException] = []

    def probe():
        try:
            bench_guests.set_own_slice(10_000)          # 10 us: below the kernel's floor
        except OSError as exc:
            got.append(exc)
    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert len(got) == 1 and (got[0].errno in (0, errno.EINVAL, errno.E2BIG, errno.EPERM)), got


@pytest.mark.slow
@pytest.mark.skipif(not WRITABLE, reason=f"{RR} is not writable here (not root)")
def test_linux_at_the_slice_is_verified_by_its_preemptions():
    before = RR.read_text()
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_guests.py"), "--reps", "1", "--copies", "2",
                        "--slices-us", "4000,1000", "--guests", "cpu", "--json"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert RR.read_text() == before                     # the host's timeslice given back
    doc = json.loads(r.stdout)
    assert set(doc["skip_reasons"]) == set(doc["skipped"])     # a guest not run says why (here: none asked)
    tick = doc["tick_ms"]
    cpu = doc["results"]["cpu"]
    for s in (4000, 1000):
        la = cpu[f"pyvswitch@{s}us"]["linux_at_slice"]
        assert la["how"] == doc["linux_at_slice"][str(float(s))] == bench_guests.linux_at(s, tick)
        assert la["pyvswitch_cpu_vs"]["median"] > 0 and {"median", "min", "max"} == set(la["wall_s"])
        # Linux did preempt its threads that often (other load only makes it more often)
        assert 0 < la["preempted_every_ms"]["median"] <= 2.5 * max(s / 1000, 1.0), la
        if la["how"] == "ticker":
            v = la["verified"]
            assert v["handovers"] >= 1 and v["handover_every_ms"] <= 2.5 * s / 1000, v
        else:
            assert la["rr_interval_ms"] == pytest.approx(s / 1000)


def test_bench_exit_switch_prints_the_three_ways_and_a_breakdown():
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_exit_switch.py"), "--reps", "1", "--exits", "50",
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for clock in ("wall", "cpu"):
        per = doc[clock]["per_exit_us"]
        assert set(per) >= {"a", "aC", "b", "bC", "c", "cC"} and all(per[w]["median"] > 0 for w in per)
        assert {"median", "min", "max"} == set(doc[clock]["a/b"]) == set(doc[clock]["(aC-cC)/(bC-cC)"])
    parts = doc["a_breakdown_us_per_switch"]
    assert all(v["median"] >= 0 for k, v in parts.items() if k != "run loop (the rest)")
    # the parts are measured inside the wall time: together they cannot exceed a's time per exit by much
    assert sum(v["median"] for k, v in parts.items() if k != "run loop (the rest)") <= \
        doc["wall"]["per_exit_us"]["a"]["max"] * 1.5


def test_bench_exit_switch_refuses_bad_counts():
    for bad in (["--exits", "1"], ["--reps", "0"]):
        r = subprocess.run([sys.executable, str(SCRIPTS / "bench_exit_switch.py"), *bad], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and "at least" in r.stderr
