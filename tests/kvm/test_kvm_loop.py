"""The slice loop in C (vsw_kvm_loop): slices and switches with no Python between
them must give exactly what the Python loop gives, keep the budget, refuse bad
arguments and a pending access, and hand a refused switch back to the API.

Skipped, with the reason, where /dev/kvm is absent or unusable; run where it is.
"""
import errno
import json
import subprocess
import sys
import threading
import time

import pytest
from builtin_runs import PROGRAMS, ROUNDS, SEED
from locations import GUESTS, SCRIPTS

import pyvswitch
from pyvswitch.guest import build
from pyvswitch.hw import ffi, lib
from pyvswitch.kvm import Scheduler, solo, why_unusable

REASON = why_unusable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"KVM unusable here: {REASON}")


def start(hv, rounds=ROUNDS, c_loop=True):
    sched = Scheduler(hv)
    sched.c_loop = c_loop
    jobs = [sched.add(hv.create_vm(f"{p}{i}"), p, rounds, SEED) for i, p in enumerate(PROGRAMS)]
    return sched, jobs


def kept(sched, slice_us):
    return max(slice_us, sched.vcpu.shortest_slice_ns() / 1000)


@pytest.mark.parametrize("c_loop", [True, False])
def test_c_loop_gives_what_the_python_loop_gives(expected, c_loop):
    """Device writes (progress, results) arrive in the middle of the C loop's runs:
    each is handed to Python inside its slice, and the guests end as alone."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, c_loop=c_loop)
        rep = sched.run(slice_us=kept(sched, 50))
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]
        assert all(j.error is None for j in jobs)
        assert rep.switches > 3 and rep.exits.get("preempted", 0) > 3
        assert rep.paths == {"store": rep.switches}
        assert rep.slices == sum(j.slices for j in jobs)
        assert rep.guest_ns == sum(j.clock_ns for j in jobs) > 0
        # every timer-ended slice's length is kept (and those whose time went in device accesses)
        assert rep.exits["preempted"] <= len(rep.slice_ns) <= rep.slices


@pytest.mark.parametrize("c_loop", [True, False])
def test_any_order_switches_and_runs_in_one_c_call(expected, c_loop):
    """In an order other than round-robin each slice - switch and run - is one call
    of the C loop: Python's pull/switch_context/push (``_switch``) runs only for the
    first switch (nothing on the vCPU yet), and the guests end as alone.  The
    Python loop (``c_loop = False``) switches every time itself, as the reference."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, c_loop=c_loop)
        calls, real = [0], sched._switch

        def counted(*a, **kw):
            calls[0] += 1
            return real(*a, **kw)
        sched._switch = counted
        picks = []

        def policy(runnable, last):         # a callable of one's own: every other slice the same job again
            picks.append(last)
            return last if last in runnable and len(picks) % 2 else runnable[len(picks) % len(runnable)]
        rep = sched.run(slice_us=kept(sched, 50), order=policy)
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]
        assert rep.switches > 3 and rep.slices == sum(j.slices for j in jobs) == len(picks)
        assert calls[0] == (1 if c_loop else rep.switches), (calls, rep.switches)


@pytest.mark.parametrize("order", ["round-robin", "random"])
def test_no_slice_runs_in_python_after_a_device_write(expected, order):
    """Device writes stop the C loop; Python handles each and the C loop resumes -
    completing the write in its guest, then the rest of the slice - so the
    vCPU's own run and complete are never called from Python (the first switch
    aside, nothing on the vCPU yet), and the guests end as alone."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        calls = {"run": 0, "complete": 0}
        for name in calls:
            real = getattr(sched.vcpu, name)

            def counted(*a, _real=real, _name=name, **kw):
                calls[_name] += 1
                return _real(*a, **kw)
            setattr(sched.vcpu, name, counted)
        rep = sched.run(slice_us=kept(sched, 200), order=order)
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]
        assert sum(len(j.progress) for j in jobs) > 3 and rep.exits.get("io", 0) > 3
        # the very first slice (switched to from no job) and each job's last one (it wrote DONE)
        # are finished by Python; every other slice ran in C, however many writes it had
        assert calls["run"] <= 1 and calls["complete"] <= len(jobs) + 1, calls
        assert rep.slices == sum(j.slices for j in jobs)


def test_a_handle_gone_at_an_exit_finishes_that_slice_in_python(expected):
    """A migration takes a context handle while Python handles a guest's write (the
    C loop cannot resume over it): the slice the write stopped is finished in
    Python - its access completed in its guest - and the run goes on, the guests
    ending as alone."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        state = {"n": 0, "saved": None, "finished_in_python": 0}
        device, slice_ = sched._device, sched._slice

        def on_device(job, x):
            device(job, x)
            state["n"] += 1
            if state["n"] == 3 and not job.done:
                other = next(j for j in jobs if j is not job and not j.done)
                state["saved"] = (other.machine, other.machine._c)
                other.machine._c = None             # as a migration does, for a moment

        def on_slice(job, *a, **kw):
            if state["saved"] is not None:          # the loop gave up the C path: the handle comes back
                m, c = state["saved"]
                m._c, state["saved"] = c, None
                state["finished_in_python"] += bool(kw.get("handled"))
            return slice_(job, *a, **kw)
        sched._device, sched._slice = on_device, on_slice
        rep = sched.run(slice_us=kept(sched, 200))
        assert state["finished_in_python"] == 1
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]
        assert rep.slices == sum(j.slices for j in jobs)


def test_a_policy_that_raises_midway_leaves_the_truth_in_the_register_file(expected):
    """The C call for one slice returns before the policy is asked again: a policy
    raising after some slices leaves every guest where it was, and a second run
    (round-robin) ends them as alone."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        n = [0]

        def policy(runnable, last):
            n[0] += 1
            if n[0] == 9:
                raise KeyError("policy failed")
            return runnable[n[0] % len(runnable)]
        with pytest.raises(KeyError):
            sched.run(slice_us=kept(sched, 50), order=policy)
        assert any(j.slices for j in jobs)
        sched.run(slice_us=kept(sched, 50))
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]


def test_the_budget_is_kept_to_the_slice():
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, rounds=10**6)
        rep = sched.run(slice_us=kept(sched, 50), max_slices=7)
        assert rep.slices == 7 and not any(j.done for j in jobs)
        rep = sched.run(slice_us=kept(sched, 50), max_slices=1)     # one past nothing: exactly one more
        assert rep.slices == 1


def _loop_args(sched, jobs, **kw):
    n = len(jobs)
    ctxs = ffi.new("struct vsw_ctx *[]", [j.machine._c for j in jobs])
    own, per = ffi.new("uint64_t[]", n), ffi.new("uint64_t[]", n)
    L = ffi.new("struct vsw_kvm_loop *", {"slice_ns": 200_000, "max_slices": 4, "own_ns": own, "slices_of": per,
                                          **kw})
    return ctxs, n, L, own, per


def _onto_vcpu(sched, hv, job):
    hv.switch_context(hv.running(0), job.machine)
    sched.vcpu.push(sched.pcpu)


def test_bad_arguments_are_refused_before_anything_runs():
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, rounds=10**6)
        _onto_vcpu(sched, hv, jobs[0])
        k, p = sched.vcpu.handle, sched.pcpu.handle
        ctxs, n, L, own, per = _loop_args(sched, jobs)
        assert lib.vsw_kvm_loop(k, p, ctxs, 0, 0, L) == -errno.EINVAL
        assert lib.vsw_kvm_loop(k, p, ctxs, n, n, L) == -errno.EINVAL          # one past the last context
        assert lib.vsw_kvm_loop(ffi.NULL, p, ctxs, n, 0, L) == -errno.EINVAL
        for bad in ({"slice_ns": 0}, {"max_slices": 0}, {"own_ns": ffi.NULL}, {"slices_of": ffi.NULL}):
            c2, _, L2, _, _ = _loop_args(sched, jobs, **bad)
            assert lib.vsw_kvm_loop(k, p, c2, n, 0, L2) == -errno.EINVAL, bad
        holes = ffi.new("struct vsw_ctx *[]", [jobs[0].machine._c, ffi.NULL, jobs[2].machine._c])
        assert lib.vsw_kvm_loop(k, p, holes, 3, 0, L) == -errno.EINVAL
        assert list(own) == [0] * n and list(per) == [0] * n and hv.running(0) is jobs[0].machine


def test_wall_bound_ends_the_loop_after_its_slice_and_a_switch_moves_the_machine():
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, rounds=10**6)
        _onto_vcpu(sched, hv, jobs[0])
        ctxs, n, L, own, per = _loop_args(sched, jobs, max_ns=1, max_slices=1000, switch_first=1)
        assert lib.vsw_kvm_loop(sched.vcpu.handle, sched.pcpu.handle, ctxs, n, 0, L) == 0
        # switch_first: jobs[0] had its slice, so jobs[1] gets the vCPU, runs one slice, and the bound ends it
        assert (L.stopped, L.slices, L.switches, L.current) == (lib.VSW_KVM_STOP_BUDGET, 1, 1, 1)
        assert hv.running(0) is jobs[1].machine
        assert list(per) == [0, 1, 0] and own[1] == L.guest_ns > 0


def test_a_pending_device_access_refuses_the_loop():
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        _onto_vcpu(sched, hv, jobs[0])
        for _ in range(100_000):
            x = sched.vcpu.run(10_000_000)
            if x.reason == "io":
                break
        assert x.reason == "io"
        ctxs, n, L, own, per = _loop_args(sched, jobs)
        assert lib.vsw_kvm_loop(sched.vcpu.handle, sched.pcpu.handle, ctxs, n, 0, L) == -errno.EBUSY
        assert L.slices == 0 and list(per) == [0] * n
        assert sched.vcpu.complete() is None


def _to_an_exit(sched):
    for _ in range(100_000):
        x = sched.vcpu.run(10_000_000)
        if x.reason == "io":
            return x
    raise AssertionError("the guest never wrote its device")


def _resume_after_an_exit(hv, resume_ns: int):
    """The first guest run to a device write; then one slice of the C loop with
    complete_first and ``resume_ns`` - (scheduler, jobs, contexts, loop, took_ns, own, per)."""
    sched, jobs = start(hv, rounds=10**6)
    _onto_vcpu(sched, hv, jobs[0])
    _to_an_exit(sched)
    ctxs, n, L, own, per = _loop_args(sched, jobs, complete_first=1, resume_ns=resume_ns, max_slices=1)
    took = ffi.new("uint64_t[]", 1)
    L.took_ns = took
    assert lib.vsw_kvm_loop(sched.vcpu.handle, sched.pcpu.handle, ctxs, n, 0, L) == 0
    return sched, jobs, n, L, took, own, per


def test_complete_first_ends_the_access_in_its_guest_and_resumes_the_slice():
    """complete_first: the pending write completes inside the guest that made it
    (its RIP moves past the store exactly once), then the rest of the slice runs;
    resume_ns makes that slice the rest of the one asked, counted from its start."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs, n, L, took, own, per = _resume_after_an_exit(hv, 150_000)
        if L.stopped == lib.VSW_KVM_STOP_EXIT:          # the guest wrote again within the 50 us left
            assert L.used_ns >= 150_000 and L.exit.reason == lib.VSW_KVM_EXIT_IO
            assert sched.vcpu.complete() is None
        else:
            assert (L.stopped, L.slices, L.switches, L.preempted) == (lib.VSW_KVM_STOP_BUDGET, 1, 0, 1)
            assert took[0] >= 150_000                   # the slice's age at the exit counts
            assert per[0] == 1 and own[0] > 0
        sched.vcpu.pull(sched.pcpu)                     # nothing pending: the state is whole


def test_a_slice_whose_time_went_in_device_accesses_ends_without_another_run():
    """resume_ns at or past the slice (one past the bound): no KVM_RUN for it -
    the slice is over, counted with its age, and the loop switches on."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs, n, L, took, own, per = _resume_after_an_exit(hv, 200_001)
        assert (L.stopped, L.slices, L.switches, L.current, L.guest_ns) == (lib.VSW_KVM_STOP_BUDGET, 1, 0, 0, 0)
        assert took[0] == 200_001 and list(per) == [1, 0, 0] and list(own) == [0] * n
        assert sched.vcpu.complete() is None            # the access did complete, in jobs[0]
        # with slices to spare the loop goes on: the next context's slice follows
        _to_an_exit(sched)
        ctxs, n, L, own, per = _loop_args(sched, jobs, complete_first=1, resume_ns=10**9, max_slices=2)
        assert lib.vsw_kvm_loop(sched.vcpu.handle, sched.pcpu.handle, ctxs, n, 0, L) == 0
        if L.stopped == lib.VSW_KVM_STOP_BUDGET:
            assert (L.slices, L.switches, L.current) == (2, 1, 1) and hv.running(0) is jobs[1].machine
        else:                                           # jobs[1] wrote its device within its slice
            assert L.stopped == lib.VSW_KVM_STOP_EXIT and L.switches == 1 and L.current == 1
            sched.vcpu.complete()


def test_without_complete_first_a_pending_access_is_still_refused_and_resume_alone_changes_nothing():
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        _onto_vcpu(sched, hv, jobs[0])
        _to_an_exit(sched)
        ctxs, n, L, own, per = _loop_args(sched, jobs, resume_ns=10**9)
        assert lib.vsw_kvm_loop(sched.vcpu.handle, sched.pcpu.handle, ctxs, n, 0, L) == -errno.EBUSY
        assert L.slices == 0 and list(per) == [0] * n and list(own) == [0] * n
        assert sched.vcpu.complete() is None


def test_unbinding_the_mover_while_the_c_loop_switches(expected):
    """Another thread takes the fast path away and gives it back, again and again,
    while the C loop switches: the switches it cannot make go the API's way
    (waiting out the migration), and every guest still ends as alone."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv)
        out, errors = [], []

        def run():
            try:
                out.append(sched.run(slice_us=kept(sched, 50)))
            except BaseException as exc:    # noqa: BLE001 - asserted below
                errors.append(exc)

        t = threading.Thread(target=run)
        t.start()
        flips = 0
        while t.is_alive() and flips < 40:
            hv.unbind("mover")
            time.sleep(0.002)
            hv.bind("mover")
            time.sleep(0.002)
            flips += 1
        t.join()
        assert not errors, errors
        rep = out[0]
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]
        assert sum(rep.paths.values()) == rep.switches > 0


def test_closing_the_hypervisor_while_the_c_loop_runs():
    """close() from another thread in the middle of a run: it waits for the C loop's
    turn in flight (never frees the vCPU under it), and the run then fails with a
    VswError saying the vCPU or PCPU is gone - no crash, no hang."""
    hv = pyvswitch.open("reference-kvm")
    sched, jobs = start(hv, rounds=10**6)
    out, errors = [], []

    def run():
        try:
            out.append(sched.run(slice_us=kept(sched, 200)))
        except BaseException as exc:        # noqa: BLE001 - asserted below
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 60                    # a bound on a stuck run, not a timing
    while t.is_alive() and not any(j.progress for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.001)                               # until a guest has reported progress: in the middle
    assert t.is_alive() and any(j.progress for j in jobs), "the run ended or never began"
    hv.close()
    t.join(timeout=60)
    assert not t.is_alive()
    assert not out and len(errors) == 1 and isinstance(errors[0], pyvswitch.VswError), errors
    assert errors[0].errno in (errno.EBADF, errno.ENODEV, errno.ESRCH), errors[0]


def test_bench_mmu_reset_and_bench_guests_cpu_time():
    """The two benchmarks this work is measured with run here and print ratios."""
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_mmu_reset.py"), "--guest", "cpu", "--reps", "1",
                        "--slice-us", "2000", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["ways"]) == {"solo", "plain", "repush", "cr3"}
    for way in doc["ways"].values():
        assert way["cpu_ms"]["median"] > 0 and way["own_ms"]["median"] > 0
    assert doc["ways"]["plain"]["slices"]["median"] > doc["ways"]["solo"]["slices"]["median"] == 1
    r = subprocess.run([sys.executable, str(SCRIPTS / "bench_guests.py"), "--reps", "1", "--copies", "2",
                        "--slices-us", "1000", "--guests", "cpu", "--json"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    cpu = json.loads(r.stdout)["results"]["cpu"]
    mux = cpu["pyvswitch@1000us"]
    assert mux["cpu_vs_linux"]["median"] > 0 and cpu["linux"]["cpu_s"]["median"] > 0
    assert "cpu_us_per_switch" in mux and "cpu_us_per_thread_switch" in cpu["linux"]


@pytest.fixture(scope="module")
def spin(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("spin")
    return build([GUESTS / "spin.c"], out / "spin.elf", ["-Wall", "-Wextra", "-Werror"]).read_bytes()


@pytest.mark.parametrize("c_loop", [True, False])
def test_the_timeout_is_kept_to_the_slice_by_both_loops(spin, c_loop):
    """Guests that never touch the device give the C loop no exit to stop at: the
    timeout must still end the run within a slice of it, as the Python loop does
    (it used to run on for the C loop's own 50 ms bound: 350 slices for a 1 ms
    timeout).  Each timer-ended slice lasts at least the slice, so at most
    timeout / slice of them (and the one running at the deadline) fit in it."""
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        sched.c_loop = c_loop
        jobs = [sched.add(hv.create_vm(f"spin{i}"), spin, mem_bytes=4 << 20) for i in range(2)]
        slice_us = kept(sched, 200)
        timeout = 5 * slice_us / 1e6
        rep = sched.run(slice_us=slice_us, timeout=timeout)
        assert rep.stopped == "timeout" and not any(j.done for j in jobs)
        assert 1 <= rep.exits.get("preempted", 0) <= 5 + 2, rep.exits
        assert rep.slices == sum(j.slices for j in jobs)


@pytest.mark.parametrize("c_loop", [True, False])
def test_destroying_a_waiting_guest_during_the_run_ends_it_alone(spin, c_loop, tmp_path):
    """destroy_vm of a guest that waits its turn, from the console callback of
    another: that guest ends (an error naming the destroy), its region is given
    back, and the others run on to their ends - the run used to raise ENOENT
    and take every other guest's outcome with it."""
    chatty = build([GUESTS / "chatty.c"], tmp_path / "chatty.elf", ["-Wall", "-Wextra", "-Werror"]).read_bytes()
    with pyvswitch.open("reference-kvm") as hv:
        alone = solo(hv, hv.create_vm("alone"), chatty, mem_bytes=4 << 20).outcome()
        sched = Scheduler(hv)
        sched.c_loop = c_loop
        talker = sched.add(hv.create_vm("talker"), chatty, mem_bytes=4 << 20)
        victim = sched.add(hv.create_vm("victim"), spin, mem_bytes=4 << 20)
        other = sched.add(hv.create_vm("other"), spin, mem_bytes=4 << 20)
        gone = []

        def on_output(job, data):
            if not gone:
                hv.destroy_vm(victim.machine)
                gone.append(victim.slices)

        rep = sched.run(slice_us=kept(sched, 200), on_output=on_output, max_slices=3000)
        assert gone and victim.ended == "error" and "destroyed" in victim.error
        assert victim.slices == gone[0]                 # it never ran again
        assert talker.outcome() == alone
        assert not other.done and other.slices > 0 and rep.stopped == "budget"
        assert sched.vcpu.regions.in_use == 3 * (4 << 20)    # alone, talker, other: not the victim


@pytest.mark.parametrize("c_loop", [True, False])
def test_a_second_run_on_the_same_vcpu_is_refused_while_one_runs(expected, c_loop):
    """Two Schedulers share pcpu0's one vCPU.  A run started in another thread while
    the first is between slices (from its stop() callback, with a guest's state in
    the vCPU) must be refused before anything of it runs - it used to interleave
    its pulls, pushes and KVM_RUNs with the first's: one guest ended with a wrong
    result and no error, the other run died of EBUSY halfway.  Once the first run
    has ended (even by an exception), the second runs as alone."""
    with pyvswitch.open("reference-kvm") as hv:
        first, jobs = start(hv, c_loop=c_loop)
        second = Scheduler(hv)
        second.c_loop = c_loop
        others = [second.add(hv.create_vm(f"other-{p}"), p, ROUNDS, SEED) for p in PROGRAMS]
        calls, got = [0], []

        def run_second():
            try:
                second.run(slice_us=kept(second, 50))
                got.append(None)
            except pyvswitch.VswError as exc:
                got.append(exc)

        def stop():
            calls[0] += 1
            if calls[0] == 4:           # slices have run: a guest of the first run is in the vCPU
                t = threading.Thread(target=run_second)
                t.start()
                t.join(60)
            return False

        first.run(slice_us=kept(first, 50), stop=stop)
        assert len(got) == 1 and isinstance(got[0], pyvswitch.VswError) and got[0].errno == errno.EBUSY, got
        assert "pcpu0" in str(got[0])
        assert not any(j.slices for j in others)                # refused up front: nothing of it ran
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]

        def boom():
            calls[0] += 1
            if calls[0] == 8:
                raise RuntimeError("stop() failed")
            return False
        calls[0] = 0
        with pytest.raises(RuntimeError):                       # a run that raises halfway ...
            second.run(slice_us=kept(second, 50), stop=boom)
        assert any(j.slices for j in others)
        second.run(slice_us=kept(second, 50))                   # ... leaves the vCPU free
        assert [(j.result, j.progress) for j in others] == [expected[p] for p in PROGRAMS]


@pytest.mark.parametrize("c_loop", [True, False])
@pytest.mark.parametrize("at", [1, 2, 5, 9])
def test_a_run_that_raises_is_resumed_without_replaying_slices(expected, c_loop, at):
    """stop() raises (as Ctrl-C's KeyboardInterrupt may, anywhere between slices)
    after slices ran: the next run must go on from where the guests were, not from
    the register file's last pull - it used to replay them, writing a progress
    value twice."""
    with pyvswitch.open("reference-kvm") as hv:
        sched, jobs = start(hv, c_loop=c_loop)
        calls = [0]

        def stop():
            calls[0] += 1
            if calls[0] == at:
                raise KeyboardInterrupt
            return False
        with pytest.raises(KeyboardInterrupt):
            sched.run(slice_us=kept(sched, 50), stop=stop)
        sched.run(slice_us=kept(sched, 50))
        assert [(j.result, j.progress) for j in jobs] == [expected[p] for p in PROGRAMS]


@pytest.mark.parametrize("c_loop", [True, False])
def test_destroying_guests_from_another_thread_while_the_loop_switches(spin, c_loop):
    """Another thread destroys every VM of a running round-robin (the one on the
    PCPU at that moment is refused with EBUSY): the run returns, each destroyed
    guest has ended with the destroy named, whatever was not destroyed runs on."""
    for rep_i in range(4):
        with pyvswitch.open("reference-kvm") as hv:
            sched = Scheduler(hv)
            sched.c_loop = c_loop
            jobs = [sched.add(hv.create_vm(f"s{i}"), spin, mem_bytes=4 << 20) for i in range(4)]
            slice_us = kept(sched, 100)
            sched.vcpu.shortest_slice_ns()
            refused, started = [], threading.Event()

            def killer():
                started.wait(10)
                time.sleep(0.002 * rep_i)
                for j in jobs:
                    try:
                        hv.destroy_vm(j.machine)
                    except pyvswitch.VswError as exc:
                        refused.append((j, exc.errno))

            def stop():
                started.set()
                return False
            t = threading.Thread(target=killer)
            t.start()
            sched.run(slice_us=slice_us, max_slices=300, stop=stop)
            t.join(30)
            assert all(e == errno.EBUSY for _, e in refused), refused
            kept_jobs = [j for j, _ in refused]
            for j in jobs:
                if j in kept_jobs:
                    assert j.error is None and not j.machine.destroyed     # it was on the PCPU then
                else:
                    assert j.ended == "error" and "destroyed" in j.error
