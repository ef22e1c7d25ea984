"""The switch: what it reports, both paths, misuse, threads, trace."""
import errno
import threading

import pytest

import pyvswitch.hw as hw


def test_stats_split_data_movement_from_exit_entry(x86):
    a, b = x86.slot(1), x86.slot(2)
    x86.pcpu.switch(x86.mover, 0, a)
    x86.pcpu.run(100)
    s = x86.pcpu.switch(x86.mover, 1, b)
    assert s.path == "store" and s.save_bursts >= 1 and s.load_bursts == 1
    assert s.exit_entry_ns == pytest.approx(1500 / 3.0, abs=0.01)   # 1500 cycles at 3 GHz
    assert s.modeled_ns == pytest.approx(s.data_ns + s.exit_entry_ns)
    assert s.baseline_ns > s.modeled_ns > s.exit_entry_ns
    # the mover's data movement on the hand-computed storage bus: bursts of setup + beats at 2 GHz
    assert s.data_ns == pytest.approx(sum((4 + -(-n // 64)) / 2.0 for n in (s.bytes_saved, s.bytes_loaded)), rel=0.2)


def test_memory_path_says_so_and_costs_what_it_models(x86):
    a, b = x86.memory.store.alloc(1), x86.memory.store.alloc(2)
    x86.pcpu.switch(x86.memory, 0, a)
    x86.pcpu.mark_dirty(x86.layout.all_groups)
    s = x86.pcpu.switch(x86.memory, 1, b)
    assert s.path == "memory" and s.baseline_ns == s.modeled_ns
    stores = sum(-(-g.used // (64 if g.vector else 8)) for g in x86.layout.groups)
    assert s.save_bursts == s.load_bursts == stores
    # idle memory bus: every store is 44 + beats cycles at 3.2 GHz
    lines = sum(-(-g.used // 64) for g in x86.layout.groups if g.vector)
    words = sum(g.used // 8 for g in x86.layout.groups if not g.vector)
    one_way = (lines * (44 + 8) + words * (44 + 1)) / 3.2
    assert s.data_ns == pytest.approx(2 * one_way, abs=0.01)


def test_a_context_cannot_cross_paths_without_migration(x86):
    a = x86.slot(1)
    m = x86.memory.store.alloc(2)
    x86.pcpu.switch(x86.mover, 0, a)
    with pytest.raises(hw.VswError) as e:
        x86.pcpu.switch(x86.memory, 1, m)
    assert e.value.errno == errno.EXDEV


@pytest.mark.parametrize("case", ["wrong from", "same machine", "idle to idle", "other layout"])
def test_misuse_is_refused_and_changes_nothing(make_rig, x86, case):
    a, b = x86.slot(1), x86.slot(2)
    x86.pcpu.switch(x86.mover, 0, a)
    before = bytes(x86.pcpu.raw()), x86.pcpu.state()
    with pytest.raises(hw.VswError) as e:
        if case == "wrong from":
            x86.pcpu.switch(x86.mover, 2, b)
        elif case == "same machine":
            x86.pcpu.switch(x86.mover, 1, a)
        elif case == "idle to idle":
            x86.pcpu.switch(x86.mover, 1, None)
            x86.pcpu.switch(x86.mover, 0, None)
        else:
            arm = make_rig("aarch64")
            x86.pcpu.switch(arm.mover, 1, arm.slot(1))
    assert e.value.errno in (errno.ESRCH, errno.EALREADY, errno.EINVAL, errno.EXDEV)
    if case != "idle to idle":
        assert (bytes(x86.pcpu.raw()), x86.pcpu.state()) == before


def test_idle_pcpu_holds_no_state(x86):
    a = x86.slot(1)
    x86.pcpu.switch(x86.mover, 0, a)
    x86.pcpu.run(10)
    x86.pcpu.switch(x86.mover, 1, None)
    assert bytes(x86.pcpu.raw()) == bytes(x86.layout.size) and x86.pcpu.owner == 0
    for op in (lambda: x86.pcpu.run(1), lambda: x86.pcpu.write(0, b"x" * 8), lambda: x86.pcpu.export()):
        with pytest.raises(hw.VswError) as e:
            op()
        assert e.value.errno == errno.ESRCH


def test_a_machine_runs_on_one_pcpu_at_a_time(x86):
    other = hw.Pcpu(x86.layout)
    a, b = x86.slot(1), x86.slot(2)
    x86.pcpu.switch(x86.mover, 0, a)
    with pytest.raises(hw.VswError) as e:
        other.switch(x86.mover, 0, a)
    assert e.value.errno == errno.EBUSY
    other.switch(x86.mover, 0, b)


def test_two_threads_on_one_pcpu_never_tear_it(make_rig):
    rig = make_rig("x86_64")
    slots = [rig.slot(i) for i in range(1, 5)]
    rig.pcpu.switch(rig.mover, 0, slots[0])
    errors = []

    def worker(seed):
        for i in range(2000):
            cur = rig.pcpu.owner
            nxt = slots[(cur + seed + i) % 4]
            try:
                if nxt.owner != cur:
                    rig.pcpu.switch(rig.mover, cur, nxt)
                rig.pcpu.run(3)
            except hw.VswError as e:   # the other thread switched first: frm no longer runs
                if e.errno not in (errno.ESRCH, errno.EALREADY):
                    errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # every machine's saved context is intact (its checks pass on the way back in)
    cur = rig.pcpu.owner
    for s in slots:
        if s.owner != cur:
            rig.pcpu.switch(rig.mover, cur, s)
            cur = s.owner


def test_pcpus_switch_in_parallel_on_a_shared_store(make_rig):
    rig = make_rig("x86_64")
    pcpus = [rig.pcpu, hw.Pcpu(rig.layout)]
    pairs = [(rig.slot(1), rig.slot(2)), (rig.slot(3), rig.slot(4))]

    def worker(p, pair):
        p.switch(rig.mover, 0, pair[0])
        for i in range(3000):
            p.run(1)
            p.switch(rig.mover, pair[i % 2].owner, pair[(i + 1) % 2])

    threads = [threading.Thread(target=worker, args=a) for a in zip(pcpus, pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rig.sbus.counters().transactions >= 2 * 3000 * 2


def test_trace_records_nest_and_add_up(x86):
    trace = hw.Trace(4096)
    x86.pcpu.set_trace(trace)
    a, b = x86.slot(1), x86.slot(2)
    stats = [x86.pcpu.switch(x86.mover, 0, a)]
    for i in range(5):
        x86.pcpu.run(100)
        stats.append(x86.pcpu.switch(x86.mover, *((1, b) if i % 2 == 0 else (2, a))))
    recs = trace.records()
    for seq, s in enumerate(stats):
        mine = [r for r in recs if r.seq == seq]
        (sw,) = [r for r in mine if r.kind == "switch"]
        bursts = [r for r in mine if r.kind == "burst"]
        assert all(sw.start_ns <= r.start_ns <= r.end_ns <= sw.end_ns for r in mine)
        assert sum(r.bytes for r in bursts if r.dir == "save") == s.bytes_saved
        assert sum(r.bytes for r in bursts if r.dir == "load") == s.bytes_loaded
        assert len([r for r in bursts if r.dir == "save"]) == s.save_bursts
        assert sw.end_ns - sw.start_ns == pytest.approx(s.modeled_ns)
    x86.pcpu.set_trace(None)


def test_closed_objects_say_so(x86):
    a = x86.slot(1)
    x86.pcpu.close()
    with pytest.raises(hw.VswError) as e:
        x86.pcpu.switch(x86.mover, 0, a)
    assert e.value.errno == errno.EBADF


def test_plain_python_baseline_switches_exactly_and_refuses_a_corrupt_slot():
    """The benchmark's plain-Python switch keeps the same promises as the C one."""
    from pyvswitch.bench.baselines import PyPcpu, PySlot
    from pyvswitch.hw import Layout
    lay = Layout.get("x86_64")
    p, a, b = PyPcpu(lay), PySlot(lay, 1), PySlot(lay, 2)
    p.switch(None, a)
    p.regs[:8] = b"machineA"
    p.dirty = lay.all_groups
    assert p.switch(a, b) == lay.size and bytes(p.regs[:8]) == bytes(8)
    p.regs[:8] = b"machineB"
    p.dirty = 1
    p.switch(b, a)
    assert bytes(p.regs[:8]) == b"machineA"
    b.banks[b.current][100] ^= 0x10                     # a flipped bit in b's saved context
    with pytest.raises(OSError) as e:
        p.switch(a, b)
    assert e.value.errno == errno.EBADMSG
    assert p.owner is a and bytes(p.regs[:8]) == b"machineA"     # nothing changed
    b.banks[b.current][100] ^= 0x10
    p.switch(a, b)
    assert bytes(p.regs[:8]) == b"machineB"


def test_switcher_takes_only_pcpu_and_context_handles():
    """hw.stats.Switcher hands raw addresses to C: a handle of another type (an int,
    a char buffer, a Pcpu object, NULL) must be refused when it is given, not
    dereferenced by the next owner() or switch() (a segfault)."""
    import errno

    from pyvswitch import VswError
    from pyvswitch.hw import ffi
    from pyvswitch.hw.stats import ContextHandle, Switcher
    p = hw.Pcpu("x86_64")
    for bad in ([12345], [ffi.new("char[64]")], [p], [ffi.NULL], [ffi.cast("struct vsw_pcpu *", 0)],
                [p.handle, "x"], [ffi.cast("struct vsw_ctx *", 64)]):
        with pytest.raises(VswError) as e:
            Switcher(bad)
        assert e.value.errno == errno.EINVAL and "PCPU" in str(e.value)
    sw = Switcher([p.handle])
    assert sw.npcpus == 1 and sw.owner(0) == 0
    h = ContextHandle()
    for bad in (64, ffi.new("char[64]"), ffi.NULL, p.handle, object()):
        with pytest.raises(VswError) as e:
            sw.bind(h, bad)
        assert e.value.errno == errno.EINVAL and "context handle" in str(e.value)
        assert h._handle is None and sw.switch(h, None, 0, None) == 0    # unbound: never reaches C


def test_pcpu_switch_keeps_no_path_alive_and_one_handle_per_slot():
    """Pcpu.switch keeps context handles to reuse; it must not keep every Path (and its
    Store) it ever switched over alive, nor a handle per owner a slot ever had: a
    PCPU switched over 40 short-lived paths, and 40 owners through one slot."""
    import gc
    import weakref
    p = hw.Pcpu("x86_64")
    gone = []
    for k in range(40):
        store = hw.Store("x86_64", 1 << 16)
        path = hw.Path.mover(store, hw.Bus(hw.BusParams.of("storage")), hw.MoverParams())
        a, b = store.alloc(2 * k + 1), store.alloc(2 * k + 2)
        p.switch(path, 0, a)
        s = p.switch(path, a.owner, b)
        assert s.bytes_loaded == p.layout.size and p.owner == b.owner
        p.switch(path, b.owner, None)
        gone.append(weakref.ref(path))
        del store, path, a, b, s
    gc.collect()
    assert sum(r() is not None for r in gone) <= 1, "Pcpu.switch keeps the paths it switched over alive"
    store = hw.Store("x86_64", 1 << 16)
    path = hw.Path.mover(store, hw.Bus(hw.BusParams.of("storage")), hw.MoverParams())
    host = store.alloc(1)
    p.switch(path, 0, host)

    def handles() -> int:
        gc.collect()
        return sum(type(o) is hw.stats.ContextHandle for o in gc.get_objects())
    before = handles()
    for owner in range(100, 140):               # one slot, a new owner each time
        vm = store.alloc(owner)
        p.switch(path, 1, vm)
        p.switch(path, owner, host)
        assert p.owner == 1
        vm.free()
    assert handles() - before <= 2, "a context handle kept for every owner the slot had"


_CLOSED_THEN_SWITCH = """
import errno, sys
from pyvswitch import hw, VswError
store = hw.Store("x86_64", 1 << 20)
bus = hw.Bus(hw.BusParams.of("storage"))
path = hw.Path.mover(store, bus, hw.MoverParams())
p = hw.Pcpu("x86_64")
a, b = store.alloc(1), store.alloc(2)
p.switch(path, 0, a)
p.switch(path, 1, b)                # the usual call from here: handles kept
p.switch(path, 2, a)
{close}.close()
junk = [bytearray(4096) for _ in range(256)]    # the freed memory reused
try:
    p.switch(path, 1, b)
except VswError as exc:
    print(exc.errno, exc)
    sys.exit(0 if exc.errno == errno.EBADF and p.owner == 1 else 3)
sys.exit(4)                         # switched over freed hardware
"""


@pytest.mark.parametrize("closed", ["path", "store", "bus"])
def test_pcpu_switch_over_a_closed_path_store_or_bus_is_ebadf(closed):
    """Pcpu.switch's usual call reused the context handles it kept for a path even
    after the path (or its store, or its bus) was closed - C then read the freed
    path: a segfault (4afc564 said EBADF).  In a child process, so a regression
    fails this test instead of killing the run."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _CLOSED_THEN_SWITCH.format(close=closed)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    assert "closed" in r.stdout
