"""The switch from Python (pyvswitch._fastpath) and its hostile neighbours:
explicit reuse of a SwitchStats (out=), arguments the switcher does not take,
threads sharing stats objects, close() racing switches, and the GIL released
where calls are long."""
import errno
import threading

import pytest

import pyvswitch
from pyvswitch import SwitchStats, VswError
from pyvswitch.hw.stats import Switcher, stats_c


@pytest.fixture
def hv():
    with pyvswitch.open() as h:
        yield h


@pytest.fixture
def dc():
    with pyvswitch.open("datacenter") as h:
        yield h


def _values(s: SwitchStats) -> dict:
    return s.as_dict()


def test_a_switch_returns_a_new_stats_and_a_held_one_keeps_its_values(hv):
    a, b = hv.create_vm("a"), hv.create_vm("b")
    hv.run(10)
    first = hv.switch_context(hv.host, a)           # the host was dirty: a save and a load
    kept = _values(first)
    second = hv.switch_context(a, b)                # a clean save: nothing saved
    assert second is not first
    assert _values(first) == kept and first.bytes_saved > 0
    assert second.bytes_saved == 0 and second.bytes_loaded == hv.layout.size


def test_out_is_filled_and_returned(hv):
    a, b = hv.create_vm("a"), hv.create_vm("b")
    out = SwitchStats()
    assert _values(out)["bytes_loaded"] == 0 and out.path == "store" and out.cache is None
    r = hv.switch_context(hv.host, a, out=out)
    assert r is out and out.bytes_loaded == hv.layout.size and out.cache == "hit"
    assert out.modeled_ns == pytest.approx(out.data_ns + out.exit_entry_ns)
    r = pyvswitch.switch_context(a, b, out=out)     # the module-level switch takes it too
    assert r is out and a.pcpu is None and b.pcpu == 0


def test_out_from_another_pcpu_is_filled_with_this_switch(dc):
    vms = [dc.create_vm(f"v{i}") for i in range(3)]
    other = dc.switch_context(None, vms[0], pcpu=1)     # a stats object of PCPU 1's switch
    dc.run(5)
    r = dc.switch_context(dc.host, vms[1], pcpu=0, out=other)
    assert r is other and other.bytes_saved > 0      # PCPU 0's save of the dirty host, not PCPU 1's idle start
    assert dc.running(0) is vms[1] and dc.running(1) is vms[0]


@pytest.mark.parametrize("bad", [object(), 0, "stats", {}, bytearray(104)], ids=repr)
def test_out_of_the_wrong_type_is_refused_and_nothing_changes(hv, bad):
    a = hv.create_vm("a")
    with pytest.raises(VswError) as e:
        hv.switch_context(hv.host, a, out=bad)
    assert e.value.errno == errno.EINVAL and "SwitchStats" in str(e.value)
    assert hv.running(0) is hv.host and a.pcpu is None
    with pytest.raises(VswError) as e:
        pyvswitch.switch_context(hv.host, a, out=bad)
    assert e.value.errno == errno.EINVAL and hv.running(0) is hv.host


def test_a_refused_switch_leaves_out_untouched(hv):
    a, b = hv.create_vm("a"), hv.create_vm("b")
    out = hv.switch_context(hv.host, a)
    before = _values(out)
    hv.controller.channel.context.inject("load", 0)     # the next load fails once
    with pytest.raises(VswError) as e:
        hv.switch_context(a, b, out=out)
    assert e.value.errno == errno.EIO and _values(out) == before and hv.running(0) is a


@pytest.mark.parametrize("pcpu", [-1, True, 1.0, 1, 2 ** 70, "0"], ids=repr)
def test_bad_pcpu_with_out_is_einval(hv, pcpu):
    a = hv.create_vm("a")
    out = SwitchStats()
    with pytest.raises(VswError) as e:
        hv.switch_context(hv.host, a, pcpu, out=out)
    assert e.value.errno == errno.EINVAL and _values(out) == _values(SwitchStats())
    assert hv.running(0) is hv.host


def test_machines_the_switcher_does_not_take_get_the_same_errnos(hv):
    a = hv.create_vm("a")
    with pyvswitch.open() as other:
        foreign = other.create_vm("x")
        for frm, to in ((hv.host, foreign), (foreign, a), (hv.host, "a"), ("host", a), (hv.host, 1)):
            with pytest.raises(VswError) as e:
                hv.switch_context(frm, to)
            assert e.value.errno == errno.EINVAL, (frm, to)
    with pytest.raises(VswError) as e:
        hv.switch_context(None, None, out=SwitchStats())
    assert e.value.errno == errno.EINVAL
    b = hv.create_vm("b")
    hv.destroy_vm(b)
    with pytest.raises(VswError) as e:
        hv.switch_context(hv.host, b)
    assert e.value.errno == errno.ENOENT
    assert hv.running(0) is hv.host
    hv.close()
    with pytest.raises(VswError) as e:
        hv.switch_context(hv.host, a, out=SwitchStats())
    assert e.value.errno == errno.EBADF
    with pytest.raises(VswError) as e:
        pyvswitch.switch_context(hv.host, a)
    assert e.value.errno == errno.EBADF


def test_a_machine_not_bound_for_the_switcher_is_a_bug_that_surfaces(hv):
    """The slow path checks the arguments first; if the switcher still does not
    take them, that is a bug in pyvswitch, raised - never a silent slow path."""
    a = hv.create_vm("a")
    hv._switcher = Switcher(hv._hw.handles)         # a switcher the machines were not bound for
    with pytest.raises(RuntimeError, match="not bound"):
        hv.switch_context(hv.host, a)
    assert hv._hw.pcpus[0].owner == hv.host.id


def test_the_switcher_refuses_what_it_does_not_take_with_zero(hv):
    a = hv.create_vm("a")
    sw = hv._switcher
    out = SwitchStats()
    for args in ((hv.host, a, -1, None), (hv.host, a, True, None), (hv.host, a, 1, None), (hv.host, a, 0, 1),
                 (hv.host, object(), None, None), (None, None, None, None), (hv.host, a, None, bytearray(104))):
        assert sw.switch(*args) == 0, args
    assert sw.switch_running(object(), a, None) == 0 and sw.switch_running(a, hv.host, out) == 0   # a never ran
    with pytest.raises(TypeError):
        sw.switch(hv.host, a)
    assert Switcher().switch(hv.host, a, None, None) == 0       # no PCPUs (closed, parked)
    assert hv.running(0) is hv.host and sw.owner(0) == hv.host.id
    with pytest.raises(IndexError):
        sw.owner(1)


def test_switchstats_is_read_only_and_shares_its_memory_with_cffi():
    s = SwitchStats()
    with pytest.raises(AttributeError):
        s.bytes_saved = 1                           # type: ignore[misc]
    with pytest.raises(TypeError):
        SwitchStats(1)                              # type: ignore[call-arg]
    c = stats_c(s)
    c.bytes_saved, c.modeled_ps, c.path = 7, 2500, 1
    assert s.bytes_saved == 7 and s.modeled_ns == 2.5 and s.path == "memory"
    assert s.FIELDS == tuple(s.as_dict()) and "N=0" in repr(s)
    assert memoryview(s).nbytes == pyvswitch.hw.ffi.sizeof("struct vsw_switch_stats")


def test_threads_switching_with_their_own_out_objects(dc):
    """Each of four PCPUs switched by its own thread, each with one out object it
    reuses: every switch's values are its own, and every machine ends where it should."""
    n, rounds = 4, 300
    pairs = [(dc.create_vm(f"a{i}"), dc.create_vm(f"b{i}")) for i in range(n)]
    for i, (a, _) in enumerate(pairs):
        dc.switch_context(dc.host if i == 0 else None, a, pcpu=i)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        a, b = pairs[i]
        out = SwitchStats()
        try:
            for k in range(rounds):
                frm, to = (a, b) if k % 2 == 0 else (b, a)
                r = dc.switch_context(frm, to, i, out=out)
                assert r is out and out.bytes_loaded == dc.layout.size and out.bytes_saved == 0
                r = pyvswitch.switch_context(to, frm, out=out)
                assert r is out and out.bytes_loaded == dc.layout.size
                dc.switch_context(frm, to, i, out=out)
        except BaseException as exc:    # noqa: BLE001 - reported below
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:3]
    assert [dc.running(i) for i in range(n)] == [a for a, _ in pairs]     # an even number of rounds


def test_one_out_object_shared_by_threads_always_holds_one_whole_switch(dc):
    """The switch writes its stats with the GIL held: a reader in another thread
    sees one switch's values or another's, never a mix."""
    a, b = dc.create_vm("a"), dc.create_vm("b")
    c, d = dc.create_vm("c"), dc.create_vm("d")
    dc.switch_context(dc.host, a, 0)
    dc.switch_context(None, c, 1)
    shared = SwitchStats()
    stop = threading.Event()
    seen: list[tuple] = []
    errors: list[BaseException] = []

    def switcher(pcpu: int, x, y, dirty: bool) -> None:
        try:
            on, off = x, y
            while not stop.is_set():
                if dirty:
                    dc.run(1, pcpu)             # a save of the dirty groups
                dc.switch_context(on, off, pcpu, out=shared)
                on, off = off, on
        except BaseException as exc:    # noqa: BLE001 - reported below
            errors.append(exc)

    ts = [threading.Thread(target=switcher, args=(0, a, b, True)),
          threading.Thread(target=switcher, args=(1, c, d, False))]
    for t in ts:
        t.start()
    try:
        for _ in range(3000):
            s = shared.as_dict()
            seen.append((s["bytes_saved"] > 0, s["save_mask"] != 0, s["save_bursts"] > 0))
    finally:
        stop.set()
        for t in ts:
            t.join(30)
    assert not errors, errors[:3]
    # a clean switch saved nothing, a dirty one saved groups in bursts: never half of each
    assert set(seen) <= {(False, False, False), (True, True, True)}


def test_close_racing_switches_with_out(hv):
    a, b = hv.create_vm("a"), hv.create_vm("b")
    hv.switch_context(hv.host, a)
    out = SwitchStats()
    started = threading.Event()
    errors: list[BaseException] = []
    done = [0]

    def work() -> None:
        on, off = a, b
        try:
            while True:
                hv.switch_context(on, off, out=out)
                on, off = off, on
                done[0] += 1
                started.set()
        except VswError as exc:
            if exc.errno != errno.EBADF:
                errors.append(exc)
        except BaseException as exc:    # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            started.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait(30)
    hv.close()
    t.join(30)
    assert not t.is_alive() and not errors, errors[:3]
    assert done[0] > 0 and out.bytes_loaded == hv.layout.size


def test_run_schedule_lets_another_python_thread_run(hv):
    """The schedule runs with the GIL released: a Python thread sees it progress
    (the PCPU's switch count grows while the call is inside C) and stops it."""
    a, b = hv.create_vm("a"), hv.create_vm("b")
    hv.switch_context(hv.host, a)
    stop = pyvswitch.StopFlag()
    pcpu = hv._hw.pcpus[0]
    start = pcpu.state().switches
    watched: list[int] = []

    def watch() -> None:
        while not stop.is_set():
            n = pcpu.state().switches
            if n > start + 100:         # the schedule is running, and so is this thread
                watched.append(n)
                stop.set()

    t = threading.Thread(target=watch)
    t.start()
    try:
        st = hv.run_schedule([a, b], 5 * 10 ** 7, stop=stop)    # seconds of switching if the GIL were held
    finally:
        stop.set()
        t.join(30)
    assert watched and st.stopped and st.why == "stopped" and 100 < st.switches < 5 * 10 ** 7


def test_pcpu_switch_follows_a_new_epoch():
    """Pcpu.switch keeps context handles per slot; after a migration-style rekey
    it makes them again (once) instead of failing with ESTALE."""
    from pyvswitch import hw
    store = hw.Store("x86_64", 1 << 20)
    path = hw.Path.mover(store, hw.Bus(hw.BusParams.of("storage")), hw.MoverParams())
    p = hw.Pcpu("x86_64")
    a, b = store.alloc(1), store.alloc(2)
    p.switch(path, 0, a)
    p.switch(path, 1, b)
    p.freeze()
    p.thaw(12345)
    assert p.state().epoch == 12345
    s = p.switch(path, 2, a)
    assert s.bytes_loaded == p.layout.size and p.owner == 1
    with pytest.raises(VswError) as e:
        p.switch(path, 2, b)                    # not running: ESRCH, as C says it
    assert e.value.errno == errno.ESRCH and p.owner == 1


def test_the_method_and_the_module_function_take_only_their_arguments(hv):
    a = hv.create_vm("a")
    with pytest.raises(TypeError):
        hv.switch_context(hv.host)                  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        hv.switch_context(hv.host, a, 0, None)      # out is keyword-only
    with pytest.raises(TypeError):
        hv.switch_context(hv.host, a, 0, pcpu=0)    # twice
    with pytest.raises(TypeError):
        hv.switch_context(hv.host, a, bogus=1)      # type: ignore[call-arg]
    with pytest.raises(TypeError):
        pyvswitch.switch_context(hv.host, a, 0)     # type: ignore[misc]
    with pytest.raises(TypeError):
        pyvswitch.switch_context(hv.host, a, pcpu=0)    # type: ignore[call-arg]
    assert hv.running(0) is hv.host
    s = type(hv).switch_context(hv, hv.host, a, pcpu=0, out=SwitchStats())     # through the class
    assert s.bytes_loaded == hv.layout.size and hv.running(0) is a
    assert "all or nothing" in type(hv).switch_context.__doc__ and "frm" in pyvswitch.switch_context.__doc__


# --- atk_switch: hostile callers of the new hot path ---------------------------------------------
def test_frm_and_to_by_keyword_as_the_signature_says(dc):
    """inspect.signature says frm and to are positional-or-keyword (and 4afc564's
    functions took them so): a call by those names switches, and what the
    signature forbids is still a TypeError that changes nothing."""
    import inspect
    a, b = dc.create_vm("a"), dc.create_vm("b")
    assert list(inspect.signature(dc.switch_context).parameters)[:2] == ["frm", "to"]
    s = dc.switch_context(frm=dc.host, to=a)
    assert s.bytes_loaded == dc.layout.size and dc.running(0) is a
    out = SwitchStats()
    assert dc.switch_context(a, to=b, pcpu=0, out=out) is out and dc.running(0) is b
    assert dc.switch_context(None, pcpu=1, to=a) is not None and dc.running(1) is a
    assert pyvswitch.switch_context(frm=b, to=dc.host).bytes_loaded == dc.layout.size
    assert pyvswitch.switch_context(dc.host, to=b, out=out) is out and dc.running(0) is b
    for bad in (lambda: dc.switch_context(a, frm=a, to=b),          # frm twice
                lambda: dc.switch_context(frm=b),                   # to missing
                lambda: dc.switch_context(b, to=a, out=out, frm=b),
                lambda: dc.switch_context(b, a, 0, to=a),
                lambda: dc.switch_context(to=a, pcpu=0),            # frm missing
                lambda: pyvswitch.switch_context(b, frm=b, to=a),
                lambda: pyvswitch.switch_context(frm=b),
                lambda: pyvswitch.switch_context(to=a, out=out),
                lambda: pyvswitch.switch_context(b, a, pcpu=0)):
        with pytest.raises(TypeError):
            bad()
    assert dc.running(0) is b and dc.running(1) is a


def test_pcpu_as_an_int_subclass_switches_as_an_int(dc):
    """The slow path accepts any int but bool as a PCPU index (as 4afc564 did, and as
    hv.running() does); the switcher took only exact ints, so an IntEnum PCPU
    raised RuntimeError ('not bound for this hypervisor's switcher')."""
    import enum

    class Cpu(enum.IntEnum):
        BOOT = 0
        SECOND = 1

    a, b = dc.create_vm("a"), dc.create_vm("b")
    out = SwitchStats()
    assert dc.switch_context(dc.host, a, Cpu.BOOT, out=out) is out and dc.running(Cpu.BOOT) is a
    assert dc.switch_context(None, b, pcpu=Cpu.SECOND).bytes_loaded == dc.layout.size
    assert dc.running(1) is b and b.pcpu == 1
    with pytest.raises(VswError) as e:
        dc.switch_context(a, b, Cpu.SECOND)     # a runs on PCPU 0: refused as C says it
    assert e.value.errno == errno.ESRCH and dc.running(0) is a and dc.running(1) is b


def test_machine_pcpu_mid_bring_up_reads_one_switcher(dc, monkeypatch):
    """Machine.pcpu takes no lock: a thread may read it while a bind's bring-up has
    published the new PCPUs' handles but not yet their switcher.  It read the
    switcher of one and the PCPU count of the other, and raised IndexError ('no
    PCPU 1 here (0)'); tests/stress/test_switch_views_race.py races it for real."""
    import pyvswitch.bound as bound
    a = dc.create_vm("a")
    dc.switch_context(None, a, pcpu=1)
    seen: list = []

    class Peeking(Switcher):
        __slots__ = ()

        def __new__(cls, handles=()):
            if handles:                     # bring_up: hw.handles is new, hw.switcher still the old one
                try:
                    seen.append(a.pcpu)
                    seen.append(repr(a))
                except Exception as exc:    # noqa: BLE001 - asserted below
                    seen.append(exc)
            return super().__new__(cls, handles)

    monkeypatch.setattr(bound, "Switcher", Peeking)
    dc.unbind("mover")
    dc.bind("mover")
    assert seen and not [s for s in seen if isinstance(s, Exception)], seen
    assert set(s for s in seen if not isinstance(s, str)) <= {1, None}
    assert dc.running(1) is a and a.pcpu == 1


def test_a_machine_made_by_hand_is_not_one_of_the_hypervisors(hv):
    """pyvswitch.Machine is public, and Machine(hv, name, id) passed the table's check
    (same hypervisor, not destroyed) without being in its table: the switch raised
    RuntimeError ('not bound ... a bug'), register access and destroy_vm a cffi
    TypeError.  It is EINVAL, 'not a machine of this hypervisor', and changes nothing -
    even when it copies a real machine's name and id."""
    a = hv.create_vm("a")
    fakes = [pyvswitch.Machine(hv, "evil", 99), pyvswitch.Machine(hv, "a", a.id),
             pyvswitch.Machine(hv, "host", hv.host.id)]
    calls = [lambda f: hv.switch_context(hv.host, f), lambda f: hv.switch_context(f, a),
             lambda f: hv.switch_context(None, f, out=SwitchStats()), lambda f: pyvswitch.switch_context(f, a),
             lambda f: pyvswitch.switch_context(hv.host, to=f), lambda f: f.regs["rax"],
             lambda f: f.set_state(a.state()), lambda f: f.snapshot(), lambda f: hv.destroy_vm(f),
             lambda f: hv.run_schedule([hv.host, f], 2)]
    for f in fakes:
        for call in calls:
            with pytest.raises(VswError) as e:
                call(f)
            assert e.value.errno == errno.EINVAL and "not a machine of this hypervisor" in str(e.value), (f, e)
    assert hv.running(0) is hv.host and hv.vms == [a] and a.pcpu is None
    assert hv.switch_context(hv.host, a).bytes_loaded == hv.layout.size
