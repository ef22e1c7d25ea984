"""Freestanding C programs as guests: built at test time with `pyvswitch guest
build`, run alone and preempted among each other on one KVM vCPU through the
context store - each must give its solo output and exit status.

Skipped with the reason where /dev/kvm is unusable, and per guest where the
host lacks the instruction set it needs.
"""
from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyvswitch
from pyvswitch.guest import GuestImage, build
from pyvswitch.kvm import Scheduler, solo, why_unusable

REASON = why_unusable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"KVM unusable here: {REASON}")
from locations import GUESTS as HERE


def _cpu_flags() -> set[str]:
    """The host's CPUID features as the kernel reports them."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


FLAGS = _cpu_flags()
# name -> (gcc flags, CPUID features it needs)
GUESTS = {
    "sort_hash": ((), ()),
    "float": ((), ()),
    "recursion": ((), ()),
    "bigmem": ((), ()),
    "avx2": (("-mavx2",), ("avx2",)),
    "avx512": (("-mavx512f",), ("avx512f",)),
    "autovec": (("-O3", "-march=native"), ("avx2",)),
}
RUNNABLE = [g for g, (_, need) in GUESTS.items() if set(need) <= FLAGS]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("guests")
    built = {}
    for name, (flags, need) in GUESTS.items():
        if set(need) <= FLAGS:
            built[name] = build([HERE / f"{name}.c"], out / f"{name}.elf", flags).read_bytes()
    for name in ("abi", "clock", "crash"):
        built[name] = build([HERE / f"{name}.c"], out / f"{name}.elf").read_bytes()
    return built


@pytest.fixture(scope="module")
def alone(images) -> dict[str, tuple]:
    with pyvswitch.open("reference-kvm") as hv:
        return {g: solo(hv, hv.create_vm(f"solo-{g}"), images[g]).outcome() for g in RUNNABLE}


def test_every_instruction_set_a_guest_needs_is_tested_or_skipped_with_the_reason(alone):
    """Each guest runs where the host has what it needs, and prints its own result
    there (an ISA guest's line starts with its name); the others are skipped, named."""
    assert FLAGS, "no CPU flags in /proc/cpuinfo: every guest that needs one would be left out unsaid"
    assert sorted(alone) == sorted(RUNNABLE)
    for g, (_, need) in GUESTS.items():
        if need and g in alone:
            assert alone[g][0].startswith(f"{g} ".encode()) and alone[g][1] == 0, (g, alone[g][:2])
    missing = {g: need for g, (_, need) in GUESTS.items() if not set(need) <= FLAGS}
    if missing:
        pytest.skip(f"this host lacks {missing}: those guests are not run")


def test_each_guest_alone_finishes_with_its_output(alone):
    for g, (output, status, result, error, crash) in alone.items():
        assert error is None and crash is None and status is not None and output, g
    assert b"sorted 200000 keys" in alone["sort_hash"][0] and alone["sort_hash"][1] > 0
    assert b"touched 24 MiB" in alone["bigmem"][0]


def _together(images, slice_us: float, order, seed: int = 0, names=RUNNABLE):
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        jobs = {g: sched.add(hv.create_vm(g), images[g]) for g in names}
        # no shorter than the host keeps (the scheduler refuses that: it measures what it can keep)
        rep = sched.run(slice_us=max(slice_us, sched.vcpu.shortest_slice_ns() / 1000), order=order, rng_seed=seed)
        return {g: j.outcome() for g, j in jobs.items()}, rep


@pytest.mark.parametrize("slice_us,order", [(10, "round-robin"), (1000, "random"), (100, "random")])
def test_preempted_among_the_others_each_gives_its_solo_output(images, alone, slice_us, order):
    got, rep = _together(images, slice_us, order, seed=3)
    assert got == alone
    assert rep.switches > len(RUNNABLE) and rep.paths == {"store": rep.switches}


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(st.integers(0, 6), min_size=5, max_size=40), slice_us=st.sampled_from([10, 37, 250, 1000]))
def test_any_schedule_gives_the_solo_outputs(images, alone, schedule, slice_us):
    """A user's policy: the hypothesis-drawn sequence of picks, then round robin."""
    steps = iter(schedule)

    def policy(runnable, last):
        return runnable[next(steps, 0) % len(runnable)]

    got, _ = _together(images, slice_us, policy)
    assert got == alone


def test_the_guest_abi_formatter_strings_and_heap(images):
    with pyvswitch.open("reference-kvm") as hv:
        job = solo(hv, hv.create_vm("abi"), images["abi"])
    assert job.text == "abi ok (0 failures)\n" and job.exit_status == 0, job.text


def test_the_virtual_clock_advances_only_while_the_guest_runs(images):
    """What the guest reads is its own time: never more than the time it spent
    inside KVM_RUN, which with the others' own time adds up to no more than the
    wall time of the whole run (so the others' slices are not in it)."""
    import time
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        clock = sched.add(hv.create_vm("clock"), images["clock"])
        others = [sched.add(hv.create_vm(f"busy{i}"), images[g])
                  for i, g in enumerate(("recursion", "sort_hash", "bigmem"))]
        t0 = time.perf_counter_ns()
        sched.run(slice_us=max(50, sched.vcpu.shortest_slice_ns() / 1000))
        wall = time.perf_counter_ns() - t0
    took = int(clock.text.split()[2])
    assert clock.exit_status == 0 and 0 < took <= clock.clock_ns
    assert clock.clock_ns + sum(j.clock_ns for j in others) <= wall
    assert all(j.clock_ns > 0 for j in others)


def test_a_crashing_guest_is_reported_and_others_go_on(images):
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        crash = sched.add(hv.create_vm("crash"), images["crash"])
        ok = sched.add(hv.create_vm("ok"), images["float"])
        sched.run(slice_us=max(50, sched.vcpu.shortest_slice_ns() / 1000))
    assert crash.crash is not None and crash.crash.kind == "page fault" and crash.crash.address == 0
    assert crash.ended == "crash" and crash.text == "about to fault\n"
    assert ok.exit_status == 0 and ok.error is None


def test_machine_state_stays_with_its_machine_in_kvm(images):
    """XCR0, MSRs and the LAPIC set per machine through Machine.regs: KVM's own
    GET after each push shows that machine's values, never the other's."""
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        vcpu, pcpu = sched.vcpu, sched.pcpu
        have = vcpu.info["xsave_components"]
        a, b = hv.create_vm("a"), hv.create_vm("b")
        sched.add(a, images["float"], xcr0=0x3)
        sched.add(b, images["float"], xcr0=have & 0x2E7)
        present = [n for n in ("star", "misc_enable", "tsc_adjust", "kernel_gs_base", "sysenter_esp")
                   if n not in vcpu.absent_msrs]
        own = {a: {"fs.base": 0x1111000, "xcr0": 0x3}, b: {"fs.base": 0x2222000, "xcr0": have & 0x2E7}}
        for i, n in enumerate(present):
            own[a][f"msr.{n}"], own[b][f"msr.{n}"] = (0x0023001000000000, 0x001B000800000000) if n == "star" \
                else (0x1000 * i, 0x2000 * i + 8) if n != "misc_enable" else (0x1, 0x801)
        cur = hv.host
        for m in (a, b, a, b):
            hv.switch_context(cur, m)
            if vcpu.info["lapic"] and m is b:
                m.regs["lapic.timer_divide"] = 0xb
            m.regs.update(own[m])
            vcpu.push(pcpu)
            vcpu.flush()                            # KVM's own word from here
            m.regs.update({k: 0 for k in own[m] if k not in ("xcr0",)})
            vcpu.pull(pcpu)
            assert {k: m.regs[k] for k in own[m]} == own[m], m.name
            if vcpu.info["lapic"]:
                assert m.regs["lapic.timer_divide"] & 0xb == (0xb if m is b else 0), m.name
            cur = m


def test_bad_images_and_builds_say_what_is_wrong(tmp_path):
    with pytest.raises(pyvswitch.VswError) as e:
        GuestImage.read(b"\x7fELF garbage")
    assert e.value.errno == errno.ENOEXEC and "not a valid ELF" in str(e.value)
    with pytest.raises(pyvswitch.VswError) as e:
        GuestImage.read(sys.executable)                 # dynamically linked / position independent
    assert e.value.errno == errno.ENOEXEC
    with pytest.raises(pyvswitch.VswError) as e:
        build([tmp_path / "missing.c"], tmp_path / "x.elf")
    assert e.value.errno == errno.ENOENT
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return undefined_thing; }\n")
    with pytest.raises(pyvswitch.VswError) as e:
        build([bad], tmp_path / "x.elf")
    assert e.value.errno == errno.ENOEXEC and "undefined_thing" in str(e.value)


def test_cli_guest_build_and_run_check_solo(tmp_path):
    out = tmp_path / "f.elf"
    r = subprocess.run([sys.executable, "-m", "pyvswitch", "guest", "build", str(HERE / "float.c"), "-o", str(out),
                        "-O1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and out.exists(), r.stderr
    clock = tmp_path / "c.elf"
    build([HERE / "clock.c"], clock)
    r = subprocess.run([sys.executable, "-m", "pyvswitch", "run", str(out), str(out), "--check-solo", "--json",
                        "--order", "random", "--slice-us", "200"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [g["matches_solo"] for g in doc["guests"]] == [True, True]
    assert {"path", "output", "exit_status", "slices", "matches_solo"} <= set(doc["guests"][0])
    # a guest whose output depends on its clock differs from its solo run: exit 1
    r = subprocess.run([sys.executable, "-m", "pyvswitch", "run", str(clock), str(out), "--check-solo"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "DIFFERS from alone" in r.stdout
