"""Attack on issue 21's failure paths: a migration interrupted halfway (a
KeyboardInterrupt or a fault that strikes on every try) and close() racing calls.

Every machine is checked against ``pyvswitch.replay`` of the steps it ran.
"""
from __future__ import annotations

import errno
import warnings

import pytest

import pyvswitch
from pyvswitch import VswError
from pyvswitch.bound import BoundHardware
from pyvswitch.migration import Migration

from effort import effort
from ledger import Ledger, platform

#: bind/unbind cycles racing a refused hv.cache call (it was 1 s of them, ~70 here; the deadlock showed within it)
CYCLES = effort(400, 50)


def _interrupt_second_save_out(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[int]:
    """Park's second save-out of a running PCPU raises ``exc`` (the first went through)."""
    orig = Migration._save_out
    calls: list[object] = []

    def save_out(p, ctx):
        calls.append(ctx)
        if len(calls) == 2:
            raise exc
        return orig(p, ctx)
    monkeypatch.setattr(Migration, "_save_out", staticmethod(save_out))
    return calls


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), VswError(errno.EIO, "save: injected, every try")],
                         ids=["ctrl-c", "eio"])
@pytest.mark.parametrize("path,kind", [("store", "mover"), ("memory", "mem")])
def test_a_park_interrupted_between_two_save_outs_leaves_every_pcpu_running_what_it_ran(monkeypatch, exc, path,
                                                                                         kind):
    """The unbind is refused (the kernel keeps the driver bound) - so nothing may have
    changed: the PCPU already saved out gets its machine back, the gate opens."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hv = pyvswitch.open(platform(slots=8, npcpus=3))
    with hv:
        led = Ledger(hv)
        vms = [hv.create_vm(f"v{i}") for i in range(3)]
        hv.switch_context(None, vms[0], pcpu=1)
        hv.switch_context(None, vms[1], pcpu=2)
        for i in range(3):
            led.run(3 + i, i)
        if path == "memory":
            hv.unbind("mover")
        before = [hv.running(i) for i in range(3)]
        calls = _interrupt_second_save_out(monkeypatch, exc)
        with pytest.raises(type(exc)):
            hv.unbind(kind)
        monkeypatch.undo()
        assert len(calls) == 2
        assert hv.migration.migrator is None and hv.migration.parked is None
        assert hv.path == path and hv._devices_of(kind)[0].driver is not None
        assert [hv.running(i) for i in range(3)] == before
        for i in range(3):
            led.run(2, i)                   # no PCPU idle, none frozen
        hv.switch_context(vms[0], vms[2], pcpu=1)
        led.run(1, 1)
        led.check()
        hv.unbind(kind)                     # and the next migration works whole
        assert hv.path == ("memory" if kind == "mover" else "none")
        hv.bind(kind)
        hv.bind("mover")
        assert hv.path == "store" and [hv.running(i) for i in range(3)] == [hv.host, vms[2], vms[1]]
        led.run(1, 2)
        led.check()


@pytest.mark.parametrize("call", ["stats", "pin"])
def test_the_cache_refused_on_the_memory_path_while_another_thread_binds_does_not_deadlock(call):
    """``hv.cache``'s ENODEV names the fallback reasons, which asks the kernel: under the
    hypervisor's lock that is the reverse of a bind's order (kernel lock, then the
    notifier takes ours) - both threads stuck for good, and close() behind them."""
    import threading
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hv = pyvswitch.open(platform(slots=4, npcpus=2))
    vm = hv.create_vm("v")
    hv.unbind("mover")
    done = threading.Event()
    errors: list[BaseException] = []

    def refused():
        while not done.is_set():
            try:
                hv.cache.stats() if call == "stats" else hv.cache.pin(vm)
            except VswError as exc:
                if exc.errno != errno.ENODEV:
                    errors.append(exc)
                    return

    def cycle():
        try:
            for _ in range(CYCLES):
                hv.unbind("storage-bus")
                hv.bind("storage-bus")
                hv.bind("context-store")
                hv.unbind("mover")          # the fast path came back with the bus: the cache refuses again
        finally:
            done.set()

    threads = [threading.Thread(target=fn, daemon=True) for fn in (refused, cycle)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)                          # a bound on a deadlock, not a timing
    stuck = [t for t in threads if t.is_alive()]
    assert not stuck, "a refused hv.cache call and a bind deadlocked"
    assert errors == []
    assert hv.path == "memory"
    hv.close()


@pytest.mark.parametrize("flag", ["no", "", None, [], 0, 1, 0.0, float("nan")], ids=repr)
def test_pin_takes_a_bool_and_anything_else_changes_nothing(flag):
    """``pin(vm, "no")`` pinned and ``pin(vm, [])`` unpinned (truthiness): a
    non-bool flag is EINVAL, the pin as it was."""
    with pyvswitch.open() as hv:
        vm = hv.create_vm("v")
        hv.cache.pin(vm)
        with pytest.raises(VswError) as e:
            hv.cache.pin(vm, flag)
        assert e.value.errno == errno.EINVAL and "bool" in str(e.value)
        assert hv.cache.where(vm).pinned
        hv.cache.unpin(vm)
        with pytest.raises(VswError):
            hv.cache.pin(vm, flag)
        assert not hv.cache.where(vm).pinned


def test_a_released_memoryview_is_einval_for_pin_and_plan():
    with pyvswitch.open() as hv:
        vm = hv.create_vm("v")
        gone = memoryview(bytearray(8))
        gone.release()
        for call in (lambda: hv.cache.pin(vm, gone), lambda: hv.cache.plan(gone)):
            with pytest.raises(VswError) as e:
                call()
            assert e.value.errno == errno.EINVAL
        assert not hv.cache.where(vm).pinned


def test_ctrl_c_inside_the_move_back_to_the_fast_path_leaves_the_memory_path_whole(monkeypatch):
    """A KeyboardInterrupt while the contexts go back into the store: the attempt is
    undone and the memory path taken, every PCPU running what it ran - not parked
    (ENODEV for every call with every driver bound) - and the interrupt still raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hv = pyvswitch.open(platform(slots=8, npcpus=2))
    with hv:
        led = Ledger(hv)
        vms = [hv.create_vm(f"v{i}") for i in range(3)]
        hv.switch_context(None, vms[0], pcpu=1)
        led.run(4, 1)
        hv.unbind("mover")
        led.run(3, 0)
        orig = BoundHardware.check_fits

        def interrupted(self, pinned, running):
            monkeypatch.setattr(BoundHardware, "check_fits", orig)   # once
            raise KeyboardInterrupt
        monkeypatch.setattr(BoundHardware, "check_fits", interrupted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(KeyboardInterrupt):
                hv.bind("mover")
        assert hv.migration.parked is None and hv.migration.migrator is None
        assert hv.path == "memory" and [hv.running(i) for i in range(2)] == [hv.host, vms[0]]
        led.run(2, 1)
        led.check()
        hv.unbind("mover")
        hv.bind("mover")
        assert hv.path == "store" and [hv.running(i) for i in range(2)] == [hv.host, vms[0]]
        led.run(1, 1)
        led.check()
