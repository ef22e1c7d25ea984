"""The long failure-path tests (issue 21), beside the quick ones in
tests/unit/api/test_api_failpaths.py: every one of the 720 orders of unbinding and
binding the six kinds after a failed move, and two timed runs (4 s each) of threads
that must wait, never be refused, while a migration runs or another PCPU's hits are hot.

Every machine is checked against ``pyvswitch.replay`` of the steps the calls that
returned success (or partial stats) ran on it."""
from __future__ import annotations

import errno
import itertools
import threading
import time
import warnings
from collections import Counter

import pytest

import pyvswitch
from pyvswitch import FallbackWarning, VswError

from ledger import KINDS, Ledger, failed_move, platform, replay


def test_every_order_of_unbind_and_bind_of_the_six_kinds_after_a_failed_move_works():
    """720 orders, on one hypervisor: unbind every kind in that order, bind them in it
    (each bind that brings every device back retries the move, which fails again),
    run on every PCPU; every machine equals replay at every tenth order and at the end."""
    with pyvswitch.open(platform()) as hv:
        led, others = failed_move(hv)
        fell_back = 0
        for n, order in enumerate(itertools.permutations(KINDS)):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always", FallbackWarning)
                for kind in order:
                    hv.unbind(kind)
                for kind in order:
                    hv.bind(kind)
            fell_back += sum(issubclass(w.category, FallbackWarning) for w in seen)
            assert all(d.driver is not None for d in hv.kernel.devices), order
            assert hv.path == "memory" and hv.migration.parked is None, order
            assert [hv.running(i) for i in range(4)] == [hv.host, *others], order
            for i in range(4):
                led.run(1, i)
            if n % 10 == 0:
                led.check()
        assert fell_back >= 720
        led.check()
        for i, m in enumerate(others, 1):
            hv.switch_context(m, None, pcpu=i)
        hv.unbind("storage-bus")
        hv.bind("storage-bus")
        assert hv.path == "store"
        led.run(1, 0)
        led.check()

# --- waiting, not refusing ------------------------------------------------------------

def test_a_miss_makes_room_however_hot_the_other_pcpus_hits_are():
    """A 4-context store, 2 PCPUs, never more than 3 contexts pinned or running: pcpu1
    hits on two contexts as fast as it can while pcpu0 misses on every switch."""
    with pyvswitch.open(platform(slots=4, npcpus=2)) as hv:
        x, y = hv.create_vm("x"), hv.create_vm("y")
        vs = [hv.create_vm(f"v{i}") for i in range(5)]
        hv.switch_context(None, x, pcpu=1)
        errors: list[BaseException] = []
        stop = pyvswitch.StopFlag()

        def hot():
            try:
                hv.run_schedule([x, y], 10 ** 9, stop=stop, pcpu=1)
            except BaseException as exc:        # noqa: BLE001
                errors.append(exc)
        t = threading.Thread(target=hot, daemon=True)
        t.start()
        deadline = time.monotonic() + 4
        misses, steps, ms = 0, Counter(), [hv.host, *vs]
        try:
            while time.monotonic() < deadline:
                start = ms.index(hv.running(0))
                s = hv.run_schedule(ms, 60, steps=1)
                assert not s.why, s.why             # no ENOSPC, ever
                misses += s.misses
                for k in range(s.steps):            # one step on each machine before it is switched out
                    steps[ms[(start + k) % len(ms)].name] += 1
        finally:
            stop.set()
            t.join(30)
        assert not errors and misses > 0
        for m in ms:
            assert m.state() == replay(steps[m.name]), m.name

@pytest.mark.parametrize("kind", ["mover", "pcpu"])
def test_no_call_is_refused_because_a_migration_is_in_progress(kind):
    """Module-level switch_context and hv.run on two PCPUs while another thread
    unbinds and binds ``kind``: never ESRCH or "idle"; ENODEV only while the
    contexts are parked (a PCPU unbound)."""
    with pyvswitch.open(platform(npcpus=2)) as hv:
        led = Ledger(hv)
        pairs = [(hv.host, hv.create_vm("a")), (hv.create_vm("b"), hv.create_vm("c"))]
        hv.switch_context(None, pairs[1][0], pcpu=1)
        allowed = (errno.ENODEV,) if kind == "pcpu" else ()
        errors: list[BaseException] = []
        done = threading.Event()
        counts = Counter()

        def worker(i):
            on, other = pairs[i]
            while not done.is_set():
                try:
                    pyvswitch.switch_context(on, other)
                    on, other = other, on
                    counts["switch"] += 1
                except VswError as exc:
                    if exc.errno not in allowed:
                        errors.append(exc)
                try:
                    hv.run(1, pcpu=i)
                    with led.lock:
                        led.steps[on.name] += 1
                    counts["run"] += 1
                except VswError as exc:
                    if exc.errno not in allowed:
                        errors.append(exc)
                except BaseException as exc:    # noqa: BLE001
                    errors.append(exc)
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 4
        pairs_done = 0
        while time.monotonic() < deadline:
            hv.unbind(kind)
            time.sleep(0.001)
            hv.bind(kind)
            pairs_done += 1
        done.set()
        for t in threads:
            t.join(30)
        assert not errors, errors[:3]
        assert pairs_done > 5 and counts["switch"] > 0 and counts["run"] > 0
        led.check()
