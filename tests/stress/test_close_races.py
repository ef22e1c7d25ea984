"""close() racing every public call at once (issue 21's attack): creating and
destroying VMs, pinning, snapshot/restore, register reads and writes, set_state,
bind/unbind cycles, a run_schedule with a StopFlag, the module-level
switch_context, run and the read-only views.  Each call ends with success (or
partial stats) or EBADF - nothing else, no hang - and every later call is EBADF.
Run under scripts/sanitize, no ASan/UBSan report."""
from __future__ import annotations

import errno
import random
import threading
import time
import warnings
from collections import Counter

import pytest

import pyvswitch
from pyvswitch import VswError

from sized_platform import sized_platform

def platform(slots: int, npcpus: int) -> str:
    return sized_platform(slots, npcpus)


def _race(plat: str, delay: float) -> Counter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hv = pyvswitch.open(platform(slots=8, npcpus=2))
        if plat == "memory":
            hv.unbind("mover")
    vms = [hv.create_vm(f"c{i}") for i in range(6)]
    hv.switch_context(None, vms[0], pcpu=1)
    img = vms[2].snapshot()
    stop = pyvswitch.StopFlag()
    bad: Counter = Counter()
    fns: dict = {}
    start = threading.Barrier(10)
    made = [0]

    def create_destroy():
        made[0] += 1
        hv.destroy_vm(hv.create_vm(f"n{made[0]}"))

    def pin():
        try:
            hv.cache.pin(vms[3])
            hv.cache.unpin(vms[3])
        except VswError as exc:
            if exc.errno != errno.ENODEV:       # the memory path has no store
                raise

    def regs():
        vms[4].restore(img)
        vms[4].regs["rax"] = 5
        vms[4].set_state(vms[5].state())
        assert vms[4].regs["rax"] == vms[5].regs["rax"]
        vms[5].compare(vms[4])

    def schedule():
        s = hv.run_schedule([hv.host, vms[2], vms[3]], 10 ** 9, steps=1, stop=stop)
        if s.changed and s.errno != errno.EBADF:
            bad[("schedule ended by", s.errno, s.why)] += 1
        raise VswError(errno.EBADF, "ended")

    def bind_cycle():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hv.unbind("storage-bus")
            hv.bind("storage-bus")
            hv.bind("context-store")
            hv.bind("mover")
            if plat == "memory":
                hv.unbind("mover")

    on = [vms[0]]

    def module_switch():
        nxt = vms[1] if on[0] is vms[0] else vms[0]
        pyvswitch.switch_context(on[0], nxt)
        on[0] = nxt

    def views():
        hv.pcpus, hv.running(1), hv.machines, hv.path, hv.migrations   # noqa: B018

    fns = dict(create_destroy=create_destroy, pin=pin, regs=regs, schedule=schedule, bind=bind_cycle,
               module_switch=module_switch, views=views, run=lambda: hv.run(3, pcpu=1),
               snapshot=lambda: [m.snapshot() for m in vms])

    def guard(name, fn):
        def body():
            start.wait()
            try:
                while True:
                    fn()
            except VswError as exc:
                if exc.errno != errno.EBADF:
                    bad[(name, exc.errno, str(exc))] += 1
            except BaseException as exc:        # noqa: BLE001 - any other type breaks the contract
                bad[(name, type(exc).__name__, str(exc))] += 1
        return body

    threads = [threading.Thread(target=guard(n, f), daemon=True) for n, f in fns.items()]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(delay)
    hv.close()
    for t in threads:
        t.join(30)
        if t.is_alive():
            bad[("outlived close() for 30 s",)] += 1
    for name, fn in fns.items():
        if name != "schedule":
            with pytest.raises(VswError) as e:
                fn()
            assert e.value.errno == errno.EBADF, name
    stop.set()
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("plat", ["store", "memory"])
def test_close_racing_every_public_call_ends_each_with_ebadf(plat):
    rnd = random.Random(21)
    bad: Counter = Counter()
    for _ in range(12):
        bad += _race(plat, rnd.choice([0.0, 0.001, 0.005, 0.02]))
    assert not bad, bad
