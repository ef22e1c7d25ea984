"""run_schedule: a whole schedule of switches in one C call, as exact and atomic
as single switches, interruptible, and undisturbed by a migration."""
from __future__ import annotations

import errno
import threading
import time

import pytest

import pyvswitch
from pyvswitch import VswError


def _slices(machines: list[pyvswitch.Machine], per: int, most: int) -> list[int]:
    """How many slices of ``per`` steps each machine ran, from its state alone (one
    reference PCPU steps through every count up to ``most`` once)."""
    import pyvswitch.hw as hw
    lay = machines[0].layout
    store = hw.Store(lay, 1 << 20)
    pcpu = hw.Pcpu(lay)
    pcpu.switch(hw.Path.memory(store, hw.Bus(kind="memory")), 0, store.alloc(1))
    want: dict[bytes, list[int]] = {}
    for i, m in enumerate(machines):
        want.setdefault(m.state(), []).append(i)
    found = [-1] * len(machines)
    for k in range(most + 1):
        for i in want.get(pcpu.read(0, lay.size), []):
            if found[i] < 0:
                found[i] = k
        pcpu.run(per)
    assert -1 not in found, "a state that is no whole number of slices: work was lost or torn"
    return found


def _steps_of(machine: pyvswitch.Machine, per: int, most: int) -> int:
    return _slices([machine], per, most)[0]


@pytest.mark.parametrize("order", ["round-robin", "random"])
def test_a_schedule_is_exact(order):
    with pyvswitch.open() as hv:
        ms = [hv.host] + [hv.create_vm(f"v{i}") for i in range(3)]
        s = hv.run_schedule(ms, 61, steps=5, order=order, seed=11)
        assert s.switches == 61 and s.steps == 305 and s.running is hv.running(0)
        got = _slices(ms, 5, 61) if order == "round-robin" else [_steps_of(m, 5, 61) for m in ms]
        assert sum(got) == 61                                   # every slice is in exactly one machine
        if order == "round-robin":
            assert got == [16, 15, 15, 15]
        assert s.save_bursts >= 61 and s.min_modeled_ns <= s.modeled_ns / 61 <= s.max_modeled_ns


def test_the_same_seed_gives_the_same_schedule():
    states = []
    for _ in range(2):
        with pyvswitch.open() as hv:
            ms = [hv.host] + [hv.create_vm(f"v{i}") for i in range(4)]
            hv.run_schedule(ms, 40, steps=3, order="random", seed=5)
            states.append([m.state() for m in ms])
    assert states[0] == states[1]


def test_a_stop_flag_ends_it_early_and_nothing_is_torn():
    """Another thread sets the flag once the schedule has made 100 switches (seen in
    ``hv.pcpus``, not after a timer): it ends between two switches, well short of 10**12."""
    with pyvswitch.open() as hv:
        ms = [hv.host] + [hv.create_vm(f"v{i}") for i in range(2)]
        flag = pyvswitch.StopFlag()
        before = hv.pcpus[0].switches
        ended = threading.Event()

        def stop_once_it_runs() -> None:
            try:
                while not ended.is_set() and hv.pcpus[0].switches < before + 100:
                    time.sleep(0.001)               # polling its progress: how long it takes does not matter
            finally:
                flag.set()
        t = threading.Thread(target=stop_once_it_runs, daemon=True)
        t.start()
        try:
            s = hv.run_schedule(ms, 10 ** 12, steps=1, stop=flag)
        finally:
            ended.set()
            t.join(30)
        assert s.stopped and s.why == "stopped" and 100 <= s.switches < 10 ** 12
        assert hv.pcpus[0].switches == before + s.switches and hv.running(0) is s.running
        assert sum(_slices(ms, 1, s.switches)) == s.switches


def test_a_migration_in_the_middle_is_waited_out():
    with pyvswitch.open("datacenter") as hv:
        ms = [hv.create_vm(f"v{i}") for i in range(3)]
        hv.switch_context(None, ms[0], pcpu=1)
        done = threading.Event()

        def flip() -> None:
            while not done.is_set():
                hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/unbind", "mover0")
                hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/bind", "mover0")

        t = threading.Thread(target=flip, daemon=True)
        t.start()
        s = hv.run_schedule(ms, 30_000, steps=2, pcpu=1)
        done.set()
        t.join(30)
        assert s.switches == 30_000 and len(hv.migrations) >= 2
        assert _slices(ms, 2, 10_000) == [10_000] * 3
        assert hv.running(0) is hv.host and hv.running(1) is s.running


def test_a_schedule_says_what_is_wrong():
    with pyvswitch.open() as hv:
        a, b = hv.create_vm("a"), hv.create_vm("b")
        for call, match in ((lambda: hv.run_schedule([a, b], 3), "must include the machine running on pcpu0"),
                            (lambda: hv.run_schedule([hv.host], 3), "two or more distinct machines"),
                            (lambda: hv.run_schedule([hv.host, a], 3, order="sorted"), "order is"),
                            (lambda: hv.run_schedule([hv.host, a], True), "must be an integer"),
                            (lambda: hv.run_schedule([hv.host, a], 2 ** 64), "below 2**64"),
                            (lambda: hv.run_schedule([hv.host, a], 3, pcpu=1), "pcpu must be")):
            with pytest.raises(VswError) as e:
                call()
            assert e.value.errno in (errno.EINVAL, errno.ERANGE) and match in str(e.value)
        assert hv.running(0) is hv.host and a.compare(b) == []
