"""Every failure path leaves the system whole (issue 21): a move to the fast path
that fails, close() during calls, calls that fail midway.  The long runs - every
order of unbind and bind after a failed move, waiting instead of refusing while a
migration runs or another PCPU's hits are hot - are in
tests/stress/test_api_failpaths_long.py.

Every machine is checked against ``pyvswitch.replay`` of the steps the calls that
returned success (or partial stats) ran on it.
"""
from __future__ import annotations

import errno
import re
import threading
import time
import warnings
from collections import Counter

import pytest

import pyvswitch
from pyvswitch import FallbackWarning, VswError
from pyvswitch.kvm import why_unusable

from ledger import Ledger, failed_move, platform, replay


def test_a_move_to_the_fast_path_that_cannot_place_every_context_stays_on_the_memory_path_whole():
    with pyvswitch.open(platform()) as hv:
        led, others = failed_move(hv)
        assert hv.path == "memory" and hv.migration.parked is None
        assert "9 contexts must be in the store" in hv.fallback_reasons()[0]
        last = hv.migrations[-1]
        assert (last.from_path, last.to_path, last.contexts) == ("memory", "memory", 9) and last.fallback
        # every PCPU thawed, with the machine it ran: another thread's calls go through
        assert [hv.running(i) for i in range(4)] == [hv.host, *others]
        done = []
        t = threading.Thread(target=lambda: done.append([led.run(2, i) for i in range(4)]), daemon=True)
        t.start()
        t.join(30)
        assert done, "a call waits for ever after the failed move"
        led.run(5, 1)                   # the migrating thread's own steps are in the machine, not outside it
        led.check()
        # no slot half-placed: once the contexts fit, the fast path comes back (its store was left empty)
        for i, m in enumerate(others, 1):
            hv.switch_context(m, None, pcpu=i)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FallbackWarning)
            hv.unbind("mover")
            hv.bind("mover")
        assert hv.path == "store" and hv.cache.stats().pinned == 6
        hv.switch_context(None, others[0], pcpu=2)
        led.run(1, 2)
        led.check()


@pytest.mark.parametrize("pins", [3, 4, 5])
def test_the_move_back_fits_up_to_the_store_and_not_one_past_it(pins):
    """1 + pins pinned and 3 more running on an 8-context store: 7 and 8 go back to the
    store path, 9 stay on the memory path (whole)."""
    with pyvswitch.open(platform()) as hv:
        led = Ledger(hv)
        for i in range(pins):
            hv.cache.pin(hv.create_vm(f"p{i}"))
        others = [hv.create_vm(f"o{i}") for i in range(3)]
        hv.unbind("mover")
        for i, m in enumerate(others, 1):
            hv.switch_context(None, m, pcpu=i)
            led.run(i, i)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", FallbackWarning)
            hv.bind("mover")
        fits = 1 + pins + 3 <= 8
        assert hv.path == ("store" if fits else "memory")
        assert len([w for w in seen if issubclass(w.category, FallbackWarning)]) == (0 if fits else 1)
        assert [hv.running(i) for i in range(4)] == [hv.host, *others]
        for i in range(4):
            led.run(2, i)
        led.check()


def test_a_fault_in_the_move_back_is_undone_and_the_memory_path_kept(monkeypatch):
    """Not the capacity: an EIO in the fetch that gives a PCPU its machine back (the
    pre-check passes) - the attempt is undone as a whole."""
    with pyvswitch.open(platform(slots=4, npcpus=2)) as hv:
        led = Ledger(hv)
        vms = [hv.create_vm(f"v{i}") for i in range(5)]     # v3 and v4 only at home on the way back
        hv.cache.pin(vms[0])
        hv.switch_context(None, vms[4], pcpu=1)
        led.run(4, 1)
        hv.unbind("mover")
        led.run(3, 0)
        orig = pyvswitch.hw.cache.Cache.__init__

        def armed(self, *a, **kw):              # the new cache's first fetch fails
            orig(self, *a, **kw)
            self.inject("fetch", 1)
        monkeypatch.setattr(pyvswitch.hw.cache.Cache, "__init__", armed)
        with pytest.warns(FallbackWarning, match="EIO"):
            hv.bind("mover")
        monkeypatch.undo()
        assert hv.path == "memory" and [hv.running(i) for i in range(2)] == [hv.host, vms[4]]
        led.run(2, 1)
        led.check()
        hv.unbind("mover")
        hv.bind("mover")
        assert hv.path == "store" and hv.cache.where(vms[0]).pinned
        led.run(1, 0)
        led.check()


# --- close() quiesces ---------------------------------------------------------------
def _close_during_calls(hv: pyvswitch.Hypervisor, delay: float) -> list[BaseException]:
    """Threads inside run_schedule, run, switch_context and snapshot while close()
    runs: each ends with success, partial stats or EBADF - nothing else."""
    vms = [hv.create_vm(f"c{i}") for i in range(4)]
    hv.switch_context(None, vms[0], pcpu=1)
    bad: list[BaseException] = []
    started = threading.Barrier(5)

    def guard(fn):
        def body():
            started.wait()
            try:
                while True:
                    fn()
            except VswError as exc:
                if exc.errno != errno.EBADF:
                    bad.append(exc)
            except BaseException as exc:        # noqa: BLE001 - any other type breaks the contract
                bad.append(exc)
        return body

    def schedule():
        s = hv.run_schedule([hv.host, vms[2], vms[3]], 10 ** 9, steps=1)
        if s.changed and s.errno != errno.EBADF:
            bad.append(AssertionError(f"a schedule ended by close says {s.why!r}"))
        raise VswError(errno.EBADF, "ended")

    on = [vms[0]]

    def module_switch():
        nxt = vms[1] if on[0] is vms[0] else vms[0]
        pyvswitch.switch_context(on[0], nxt)
        on[0] = nxt

    threads = [threading.Thread(target=guard(fn), daemon=True) for fn in
               (schedule, lambda: hv.run(5, pcpu=1), module_switch, lambda: [m.snapshot() for m in vms])]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(delay)
    hv.close()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a call outlived close() for 30 s"
    for call in (lambda: hv.run(1), lambda: hv.switch_context(hv.host, vms[0]), lambda: vms[0].snapshot(),
                 lambda: pyvswitch.switch_context(vms[0], vms[1]), lambda: hv.run_schedule(vms[:2], 3),
                 lambda: hv.create_vm("late"), lambda: hv.cache, lambda: hv.bind("mover")):
        with pytest.raises(VswError) as e:
            call()
        assert e.value.errno == errno.EBADF
    return bad


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.02])
@pytest.mark.parametrize("plat", ["store", "memory"])
def test_close_while_calls_are_in_flight_ends_them_with_ebadf_and_frees_nothing_under_them(delay, plat):
    hv = pyvswitch.open(platform(slots=4, npcpus=2))
    if plat == "memory":
        hv.unbind("mover")
    assert hv.path == plat
    assert _close_during_calls(hv, delay) == []


@pytest.mark.parametrize("kind", ["mover", "pcpu", "storage-bus"])
def test_close_while_another_thread_unbinds_and_binds_ends_everything_with_ebadf(kind):
    """close() waits for the migration in flight; the cycling thread and the callers
    then end with EBADF, never on a half-migrated or torn-down hypervisor."""
    hv = pyvswitch.open(platform(slots=4, npcpus=2))
    vms = [hv.create_vm(f"c{i}") for i in range(2)]
    hv.switch_context(None, vms[0], pcpu=1)
    bad: list[BaseException] = []
    cycles = Counter()

    def cycle():
        try:
            while True:
                hv.unbind(kind)
                hv.bind(kind)
                cycles["n"] += 1
        except VswError as exc:
            if exc.errno != errno.EBADF:
                bad.append(exc)
        except BaseException as exc:            # noqa: BLE001
            bad.append(exc)

    def work():
        while True:
            try:
                hv.run_schedule([hv.host, vms[1]], 50, steps=1)
                hv.run(1, pcpu=1)
            except VswError as exc:
                if exc.errno == errno.EBADF:
                    return
                if exc.errno != errno.ENODEV or kind != "pcpu":     # parked for a moment: go on
                    bad.append(exc)
                    return
            except BaseException as exc:        # noqa: BLE001
                bad.append(exc)
                return
    threads = [threading.Thread(target=f, daemon=True) for f in (cycle, work)]
    for t in threads:
        t.start()
    while cycles["n"] < 3 and threads[0].is_alive():
        time.sleep(0.001)
    hv.close()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert bad == [] and cycles["n"] >= 3


@pytest.mark.parametrize("kind", ["pcpu", "storage-bus", "mover"])
def test_close_that_starts_while_an_unbind_is_inside_the_kernel_waits_for_it(kind, monkeypatch):
    """The unbind's notifier finds the hypervisor closing: it freezes the PCPUs (its
    hardware goes now) and close() then tears down what is left, without error."""
    hv = pyvswitch.open(platform(npcpus=2))
    inside, go = threading.Event(), threading.Event()
    orig = hv.kernel.unbind

    def slow_unbind(dev):
        inside.set()
        go.wait(10)
        return orig(dev)
    monkeypatch.setattr(hv.kernel, "unbind", slow_unbind)
    errors: list[BaseException] = []

    def caught(fn):
        try:
            fn()
        except BaseException as exc:            # noqa: BLE001
            errors.append(exc)
    t = threading.Thread(target=caught, args=(lambda: hv.unbind(kind),), daemon=True)
    t.start()
    assert inside.wait(10)
    c = threading.Thread(target=caught, args=(hv.close,), daemon=True)
    c.start()
    time.sleep(0.1)
    assert c.is_alive(), "close() did not wait for the unbind in flight"
    go.set()
    t.join(10)
    c.join(10)
    assert not c.is_alive() and errors == [] and hv.kernel.devices == []
    with pytest.raises(VswError) as e:
        hv.run(1)
    assert e.value.errno == errno.EBADF


def test_close_waits_for_using_holds_and_a_holder_calling_in_meanwhile_gets_ebadf():
    hv = pyvswitch.open(platform(npcpus=2))
    entered, release, closed = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def holder():
        with hv.using():
            entered.set()
            release.wait(10)
            try:
                hv.running(0)                   # close() is waiting for this hold: no deadlock
            except VswError as exc:
                seen.append(exc.errno)
    t = threading.Thread(target=holder, daemon=True)
    t.start()
    entered.wait(10)
    c = threading.Thread(target=lambda: (hv.close(), closed.set()), daemon=True)
    c.start()
    assert not closed.wait(0.2), "close() did not wait for the hold"
    release.set()
    assert closed.wait(10), "close() and a holder's call wait for each other"
    assert seen == [errno.EBADF]
    with pytest.raises(VswError) as e:
        with hv.using():
            pass
    assert e.value.errno == errno.EBADF


def test_close_from_inside_a_hold_on_the_same_thread_is_refused_not_a_deadlock():
    """close() waits for every ``using`` hold to leave: from inside one on its own
    thread (a Scheduler.run callback closing the hypervisor) it waited for itself
    forever.  It is refused with EDEADLK, changing nothing; after the hold it closes."""
    hv = pyvswitch.open(platform())
    vm = hv.create_vm("a")
    with hv.using():
        with hv.using():                        # nested holds of one thread: still its own
            with pytest.raises(VswError) as e:
                hv.close()
        assert e.value.errno == errno.EDEADLK and "using" in str(e.value)
        assert hv.running(0) is not None and vm in hv.vms      # still open, nothing changed
    hv.close()
    with pytest.raises(VswError) as e:
        hv.create_vm("b")
    assert e.value.errno == errno.EBADF


@pytest.mark.skipif(why_unusable() is not None, reason=f"KVM unusable here: {why_unusable()}")
def test_close_during_a_kvm_scheduler_run_ends_it_with_ebadf():
    from pyvswitch.kvm import Scheduler
    hv = pyvswitch.open("reference-kvm")
    sched = Scheduler(hv)
    jobs = [sched.add(hv.create_vm(f"{p}{i}"), p, 200_000, 1) for i, p in enumerate(("hash", "vecsum", "prng"))]
    out: list[object] = []

    def body():
        try:
            out.append(sched.run(slice_us=max(50, sched.vcpu.shortest_slice_ns() / 1000)))
        except BaseException as exc:        # noqa: BLE001
            out.append(exc)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    while sum(j.slices for j in jobs) < 20 and t.is_alive():
        time.sleep(0.001)
    hv.close()
    t.join(60)
    assert not t.is_alive()
    assert len(out) == 1
    r = out[0]
    assert isinstance(r, VswError) and r.errno == errno.EBADF, r      # mid-run: never a torn-down vCPU
    assert not any(j.done for j in jobs)


# --- all or nothing -----------------------------------------------------------------
def test_a_schedule_refused_midway_returns_what_it_did_and_why():
    with pyvswitch.open(platform(slots=3, npcpus=1)) as hv:
        a, b, c = (hv.create_vm(n) for n in "abc")     # a and b in the store, c at home
        hv.cache.inject("fetch", 0)
        s = hv.run_schedule([hv.host, a, b, c], 10, steps=2)
        assert (s.switches, s.steps, s.errno, s.stopped) == (2, 6, errno.EIO, True) and "EIO" in s.why
        assert s.running is b and hv.running() is b
        assert [m.state() for m in (hv.host, a, b, c)] == [replay(2), replay(2), replay(2), replay(0)]
        s = hv.run_schedule([b, c], 1)                  # the fault struck once
        assert s.switches == 1 and not s.why


def test_a_schedule_refused_at_once_raises_and_changes_nothing():
    with pyvswitch.open(platform(slots=3, npcpus=1)) as hv:
        a, b, c = (hv.create_vm(n) for n in "abc")
        before = [m.state() for m in hv.machines], hv.pcpus[0].switches
        hv.cache.inject("fetch", 0)
        with pytest.raises(VswError) as e:
            hv.run_schedule([hv.host, c], 10)
        assert e.value.errno == errno.EIO and "nothing changed" in str(e.value)
        assert ([m.state() for m in hv.machines], hv.pcpus[0].switches) == before


def test_a_schedule_ended_by_parked_contexts_returns_what_it_did():
    with pyvswitch.open(platform(npcpus=2)) as hv:
        ms = [hv.host, hv.create_vm("a"), hv.create_vm("b")]
        out: list[object] = []
        t = threading.Thread(target=lambda: out.append(hv.run_schedule(ms, 10 ** 9, steps=1)), daemon=True)
        t.start()
        while not hv.pcpus[0].switches > 50:
            time.sleep(0.001)
        hv.unbind("memory-bus")                          # no path left: parked
        t.join(30)
        s = out[0]
        assert isinstance(s, pyvswitch.ScheduleStats) and s.errno == errno.ENODEV and s.switches > 0
        hv.bind("memory-bus")
        steps = Counter(ms[k % 3].name for k in range(s.steps))     # round robin: a step before each switch
        for m in ms:
            assert m.state() == replay(steps[m.name]), m.name


def test_the_failure_contract_is_written_down_once():
    """One place (the api module's docstring) names the rule of every call that can fail midway."""
    contract = pyvswitch.api.__doc__.split("Failure contract")[1]
    for call in ("switch_context", "run_schedule", "run", "restore", "set_state", "create_vm", "destroy_vm",
                 "pin", "bind", "unbind", "close"):
        assert re.search(rf"``(Machine\.|cache\.)?{call}[`(/]", contract), call
