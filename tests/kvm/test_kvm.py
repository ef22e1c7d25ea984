"""The KVM backend: real guests on a real vCPU, their state moved through the store.

Skipped, with the reason, where /dev/kvm is absent or unusable; run where it is.
"""
import errno

import pytest
from builtin_runs import PROGRAMS, ROUNDS, SEED
from locations import SCRIPTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyvswitch
from pyvswitch.hw.kvm import layout_msrs
from pyvswitch.kvm import Scheduler, why_unusable

REASON = why_unusable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"KVM unusable here: {REASON}")


def kept(sched, slice_us):
    """``slice_us``, or the shortest slice this host keeps where that is longer
    (the scheduler refuses shorter ones: it measures at run time what it can keep)."""
    return max(slice_us, sched.vcpu.shortest_slice_ns() / 1000)


def start(hv, progs=PROGRAMS):
    sched = Scheduler(hv)
    jobs = [sched.add(hv.create_vm(f"{p}{i}"), p, ROUNDS, SEED) for i, p in enumerate(progs)]
    return sched, jobs


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slice_us=st.sampled_from([20, 50, 200, 1000]), order=st.sampled_from(["round-robin", "random"]),
       rng_seed=st.integers(0, 1000), progs=st.permutations(PROGRAMS))
def test_preempted_guests_give_their_solo_results(expected, slice_us, order, rng_seed, progs):
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, progs)
        rep = sched.run(slice_us=kept(sched, slice_us), order=order, rng_seed=rng_seed)
        for job in jobs:
            assert job.error is None
            assert (job.result, job.progress) == expected[job.program]
        assert rep.paths == {"store": rep.switches}


def test_many_switches_actually_happen(expected):
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        rep = sched.run(slice_us=kept(sched, 20))
        assert rep.switches > 30 and rep.exits.get("preempted", 0) > 10
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]


def test_the_fallback_path_keeps_guests_correct(expected):
    with pyvswitch.open("reference-kvm") as hv:
        hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/unbind", "mover0")
        sched, jobs = start(hv)
        rep = sched.run(slice_us=kept(sched, 50), order="random", rng_seed=5)
        assert rep.paths == {"memory": rep.switches}
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]


def test_state_round_trip_through_the_store():
    """As KVM's selftests check state save/restore: GET every group (pull), save it
    to the store, snapshot and restore it, run another machine, load, push, GET
    again - byte-identical."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, ["prng"])
        vm = jobs[0].machine
        for _ in range(1000):                           # mid-run, interesting state: FS base written
            sched.run(slice_us=kept(sched, 30), max_slices=5)
            if vm.regs["fs.base"] or jobs[0].done:
                break
        assert not jobs[0].done and vm.regs["fs.base"] != 0
        pcpu, vcpu = sched.pcpu, sched.vcpu
        before = bytes(pcpu.raw())
        other = hv.create_vm("other")
        img = vm.snapshot()
        hv.switch_context(vm, other)
        vm.restore(img)                                 # through an image and back
        hv.switch_context(other, vm)
        vcpu.push(pcpu)
        vcpu.flush()                                    # the next pull GETs every group from KVM
        vcpu.pull(pcpu)
        after = bytes(pcpu.raw())
        lay = hv.layout
        # KVM hands back every byte the layout carries. The one field a host may normalise is the
        # XSAVE header's XCOMP_BV (KVM exports the standard, not the compacted, format and writes 0);
        # nothing differs on the hosts we tried.
        diff = {f.name for f in lay.fields.values() if before[f.offset:f.offset + f.size] != after[f.offset:f.offset + f.size]}
        assert diff <= {"xcomp_bv"}, diff
        assert vm.regs["cr3"] == jobs[0].base          # its own address space


def test_absent_msrs_are_marked_not_faked():
    with pyvswitch.open("reference-kvm") as hv:
        vcpu = Scheduler(hv).vcpu
        listed = layout_msrs()
        present = [n for n in listed if n not in vcpu.absent_msrs]
        assert set(vcpu.absent_msrs) <= set(listed) and len(present) + len(vcpu.absent_msrs) == len(listed)
        # what every x86-64 KVM host has is present; the rest is the host's to say
        assert {"pat", "star", "lstar", "sysenter_cs", "kernel_gs_base"} <= set(present)


def test_resume_after_a_snapshot_round_trip(expected):
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, ["hash"])
        sched.run(slice_us=kept(sched, 50), max_slices=6)
        vm = jobs[0].machine
        parked = hv.create_vm("parked")
        sched.vcpu.pull(sched.pcpu)
        hv.switch_context(vm, parked)
        img = vm.snapshot()
        vm.regs["rax"] = 0xBAD
        vm.regs["r14"] = 0xBAD                     # the hash accumulator, damaged
        vm.restore(img)                            # and restored from the image
        sched.run(slice_us=kept(sched, 50))
        assert (jobs[0].result, jobs[0].progress) == expected["hash"]


def test_mover_faults_mid_switch_leave_guests_intact(expected):
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        path = hv.controller.channel.context
        faults = 0
        while not all(j.done for j in jobs):
            path.inject("save" if faults % 2 else "load", 0)
            rep = sched.run(slice_us=kept(sched, 40), max_slices=7)
            faults += rep.faults
        assert faults > 3
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]


def test_not_a_kvm_pcpu_is_refused():
    with pyvswitch.open() as hv:
        with pytest.raises(pyvswitch.VswError) as e:
            Scheduler(hv)
        assert e.value.errno == errno.ENODEV and "reference-kvm" in str(e.value)


def test_demo_kvm_and_the_prototype_script(capsys):
    import json
    import os
    import subprocess
    import sys

    from pyvswitch.cli import main
    assert main(["demo", "--kvm", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and all(g["same"] for g in doc["guests"])
    over = doc["overhead"]
    assert set(over["ratio"]) == {"median", "min", "max"} and over["full_sequence_us"]["median"] > 0
    named = {k.split()[1] for k in over["per_ioctl_us"]}
    assert {"SREGS", "XCRS", "REGS", "DEBUGREGS", "VCPU_EVENTS", "XSAVE", "MSRS"} <= named
    assert 0 < doc["throughput"]["kept"]["median"]
    script = str(SCRIPTS / "hypervisor_prototype.py")
    r = subprocess.run([sys.executable, script, "--rounds", "5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "over the context store" in r.stdout and len(r.stdout.splitlines()) == 4


def test_a_push_builds_its_refusal_messages_only_when_refused():
    """A push that succeeds reads nothing more of the register file (its refusal
    messages used to be built on every push, ~10 us of Python per switch); one
    that is refused still says what the host lacks."""
    from pyvswitch.kvm.scheduler import RunReport
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, ["hash"])
        vcpu, pcpu = sched.vcpu, sched.pcpu
        vm, other = jobs[0].machine, hv.create_vm("other")
        with hv.using():
            sched._switch(None, jobs[0], RunReport(jobs))
        real = vcpu._missing

        def boom(*a):
            raise AssertionError("a successful push built a refusal message")
        vcpu._missing = boom
        vcpu.push(pcpu)                                  # succeeds: no message built
        vcpu._missing = real
        lacks = [b for b in range(2, 10) if (0x2ff & ~vcpu.info["xsave_components"]) >> b & 1]
        if not lacks:
            pytest.skip("this host has every XSAVE component the layout knows: no push to refuse")
        vcpu.pull(pcpu)
        hv.switch_context(vm, other)
        vm.regs["xstate_bv"] = vm.regs["xstate_bv"] | 1 << lacks[0]
        hv.switch_context(other, vm)
        with pytest.raises(pyvswitch.VswError) as e:
            vcpu.push(pcpu)
        assert e.value.errno == errno.EOPNOTSUPP and f"bits {1 << lacks[0]:#x}" in str(e.value), e.value
