"""The context store as a cache of contexts over their homes in MEM."""
import errno
import functools
import pathlib

import pytest
from effort import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import pyvswitch
from pyvswitch import VswError

from sized_platform import sized_platform


def platform(slots: int, homes: int = 64, policy: str = "lru", reaches_dram: int = 0) -> str:
    """The explicit platform with a store of ``slots`` contexts over a MEM of ``homes``."""
    return (sized_platform(slots, 1, homes)
            .replace('policy = "lru"', f'policy = "{policy}"')
            .replace("reaches_dram = 0", f"reaches_dram = {reaches_dram}"))


@functools.lru_cache(maxsize=None)
def replay(steps: int) -> bytes:
    return pyvswitch.replay(steps)


# --- the reference models: which loads hit, slot by slot ----------------------------
def reference_hits(policy: str, slots: int, vms: int, loads: list[int]) -> list[bool]:
    """Hits of ``loads`` (machine numbers, 0 the pinned host running first) on a store of
    ``slots`` slots after ``vms`` VMs were created (the first slots - 1 in the store), as
    the policy textbook says - the machine running cannot be evicted."""
    frame = [0] + [m for m in range(1, vms + 1)][:slots - 1]     # slot -> machine, the host in slot 0
    frame += [None] * (slots - len(frame))
    recency = list(frame[1:])                                      # LRU order, oldest first
    ref = dict.fromkeys(frame, 0)
    hand, running, hits = 0, 0, []
    for m in loads:
        if m in frame:
            hits.append(True)
        else:
            hits.append(False)
            if None in frame:
                i = frame.index(None)
            elif policy == "lru":
                victim = next(v for v in recency if v not in (0, running))
                i = frame.index(victim)
                recency.remove(victim)
            else:                                                  # CLOCK over the slots
                while True:
                    v = frame[hand]
                    i, hand = hand, (hand + 1) % slots
                    if v in (0, running, None):
                        continue
                    if not ref[v]:
                        break
                    ref[v] = 0
            frame[i] = m
        ref[m] = 1
        if m in recency:
            recency.remove(m)
        recency.append(m)
        running = m
    return hits


def hits_on(hv, vms, loads) -> list[bool]:
    machines = [hv.host, *vms]
    out, running = [], hv.host
    for m in loads:
        out.append(hv.switch_context(running, machines[m]).cache == "hit")
        running = machines[m]
    return out


loads_strategy = st.lists(st.integers(0, 7), min_size=1, max_size=60).map(
    lambda xs: [x for i, x in enumerate(xs) if x != (xs[i - 1] if i else 0)])


@pytest.mark.parametrize("policy", ["lru", "clock"])
@given(loads=loads_strategy)
@settings(max_examples=examples(40))
def test_hits_are_what_the_textbook_policy_gives(policy, loads):
    with pyvswitch.open(platform(4, policy=policy)) as hv:
        vms = [hv.create_vm(f"vm{i}") for i in range(1, 8)]
        hv.cache.reset_stats()
        want = reference_hits(policy, 4, 7, loads)
        assert hits_on(hv, vms, loads) == want
        s = hv.cache.stats()
        assert (s.hits, s.misses) == (want.count(True), want.count(False))


@given(loads=loads_strategy)
@settings(max_examples=examples(40))
def test_belady_never_misses_more_than_lru(loads):
    misses = {}
    for policy in ("lru", "belady"):
        with pyvswitch.open(platform(4, policy=policy)) as hv:
            vms = [hv.create_vm(f"vm{i}") for i in range(1, 8)]
            machines = [hv.host, *vms]
            hv.cache.plan([machines[m] for m in loads])
            misses[policy] = hits_on(hv, vms, loads).count(False)
            assert all(m.compare(replay(0)) == [] for m in machines if m is not hv.running())
    assert misses["belady"] <= misses["lru"]


def test_a_hit_moves_nothing_more_and_a_miss_writes_back_only_what_changed():
    with pyvswitch.open(platform(3)) as hv:
        h = hv.host
        a, b, c = (hv.create_vm(n) for n in "abc")      # c only at home
        hv.cache.reset_stats()

        def to(frm, m, steps=0):
            st = hv.switch_context(frm, m)
            hv.run(steps)
            return st

        hit = to(h, a, 10)
        assert (hit.cache, hit.bytes_fetched, hit.bytes_written_back, hit.cache_ns) == ("hit", 0, 0, 0)
        to(a, h)
        miss = to(h, c)                                 # evicts b (least recently used)
        assert (miss.cache, miss.bytes_fetched) == ("miss", hv.layout.size)
        assert miss.bytes_written_back == hv.layout.size    # b was made in the store: nothing of it at home yet
        assert miss.modeled_ns > hit.modeled_ns and miss.data_ns >= miss.cache_ns > 0
        assert hv.cache.where(b).slot is None
        to(c, h)
        assert to(h, b).bytes_written_back == hv.layout.size    # evicts a, first time home too
        to(b, h)
        clean = to(h, a, 5)                             # evicts c: fetched, never changed
        assert (clean.cache, clean.bytes_written_back) == ("miss", 0)
        to(a, h)
        assert 0 < hv.cache.where(a).changed_mask < hv.layout.all_groups
        to(h, c)
        to(c, h)
        partial = to(h, b)                              # evicts a: only the groups its run changed
        assert 0 < partial.bytes_written_back < hv.layout.size
        assert a.state() == replay(15) and b.state() == replay(0) and c.state() == replay(0)
        s = hv.cache.stats()
        assert (s.hits, s.misses, s.writebacks, s.resident, s.capacity, s.pinned) == (6, 5, 3, 3, 3, 1)
        assert s.hit_rate == pytest.approx(6 / 11)


def test_the_mover_that_reaches_dram_fetches_faster_than_the_pcpu():
    cost = {}
    for reaches in (0, 1):
        with pyvswitch.open(platform(3, reaches_dram=reaches)) as hv:
            a, _, c = (hv.create_vm(n) for n in "abc")
            hv.switch_context(hv.host, a)
            cost[reaches] = hv.switch_context(a, c).cache_ns
    assert 0 < cost[1] < cost[0]


def test_pinned_machines_stay_and_a_store_of_pinned_contexts_refuses_cleanly():
    with pyvswitch.open(platform(2)) as hv:
        a, b = hv.create_vm("a"), hv.create_vm("b")
        assert hv.cache.where(hv.host).pinned and hv.cache.where(a).resident
        hv.cache.pin(b)                                 # fetched now: a goes home
        assert hv.cache.where(b).resident and not hv.cache.where(a).resident
        with pytest.raises(VswError) as e:
            hv.switch_context(hv.host, a)               # host and b pinned: no room
        assert e.value.errno == errno.ENOSPC and "pinned or running" in str(e.value)
        assert hv.running() is hv.host
        hv.cache.unpin(b)
        assert hv.switch_context(hv.host, a).cache == "miss" and not hv.cache.where(b).resident


@pytest.mark.parametrize("kind", ["fetch", "writeback"])
@pytest.mark.parametrize("group", [0, 3])
def test_a_fault_in_a_fetch_or_write_back_loses_nothing(kind, group):
    with pyvswitch.open(platform(3)) as hv:
        a, x, b = (hv.create_vm(n) for n in "axb")     # b only at home
        hv.switch_context(hv.host, a)
        hv.run(25)
        hv.switch_context(a, hv.host)
        hv.switch_context(hv.host, x)
        hv.switch_context(x, hv.host)                   # a is the least recently used
        hv.cache.inject(kind, group)
        with pytest.raises(VswError) as e:
            hv.switch_context(hv.host, b)
        assert e.value.errno == errno.EIO and hv.running() is hv.host
        assert a.state() == replay(25) and b.state() == replay(0)
        w = hv.cache.where(a)                           # a keeps its slot; after a fetch fault it is clean
        assert w.resident and (w.changed_mask == 0) == (kind == "fetch")
        assert hv.switch_context(hv.host, b).cache == "miss"        # the fault was spent
        assert hv.switch_context(b, a).cache == "miss" and hv.run(5) is None and a.state() == replay(30)


def test_a_corrupt_home_is_refused_before_anything_changes():
    with pyvswitch.open(platform(2)) as hv:
        a, b = hv.create_vm("a"), hv.create_vm("b")
        hv.machine("b").regs["rax"] = 7
        home = pyvswitch.hw.Slot(hv._hw.memory.store, 0, b.id)    # b's home: the only slot MEM backs
        home.corrupt(0)
        with pytest.raises(VswError) as e:
            hv.switch_context(hv.host, b)
        assert e.value.errno == errno.EBADMSG and hv.cache.where(a).resident and hv.running() is hv.host


def test_create_is_bounded_by_mem_and_destroy_gives_the_home_back():
    with pyvswitch.open(platform(2, homes=4)) as hv:
        vms = [hv.create_vm(f"v{i}") for i in range(3)]
        with pytest.raises(VswError) as e:
            hv.create_vm("v3")
        assert e.value.errno == errno.ENOSPC
        hv.destroy_vm(vms[2])
        hv.create_vm("v3")
        assert hv.cache.stats().machines == 4


class CachedMachines(RuleBasedStateMachine):
    """More machines than slots, switched, run, created, destroyed, pinned, faulted:
    each holds exactly what it would had it run alone."""

    policy = "lru"

    def __init__(self) -> None:
        super().__init__()
        self.hv = pyvswitch.open(platform(3, homes=8, policy=self.policy))
        self.steps = {self.hv.host: 0}
        self.names = iter(range(10 ** 6))

    def teardown(self) -> None:
        self.hv.close()

    def others(self):
        return [m for m in self.steps if m is not self.hv.running()]

    @precondition(lambda self: len(self.steps) < 8)
    @rule()
    def create(self):
        self.steps[self.hv.create_vm(f"m{next(self.names)}")] = 0

    @precondition(lambda self: len(self.others()) > 1)
    @rule(data=st.data())
    def destroy(self, data):
        m = data.draw(st.sampled_from([m for m in self.others() if not m.is_host]))
        self.hv.destroy_vm(m)
        del self.steps[m]

    @precondition(lambda self: self.others())
    @rule(data=st.data())
    def switch(self, data):
        to = data.draw(st.sampled_from(self.others()))
        try:
            self.hv.switch_context(self.hv.running(), to)
        except VswError as e:
            assert e.errno in (errno.EIO, errno.ENOSPC), e

    @rule(steps=st.integers(0, 200))
    def run(self, steps):
        self.hv.run(steps)
        self.steps[self.hv.running()] += steps

    @rule(kind=st.sampled_from(["fetch", "writeback"]), group=st.integers(0, 15))
    def fault(self, kind, group):
        self.hv.cache.inject(kind, group)

    @rule(data=st.data(), pinned=st.booleans())
    def pin(self, data, pinned):
        m = data.draw(st.sampled_from(list(self.steps)))
        try:
            self.hv.cache.pin(m, pinned)
        except VswError as e:
            assert e.errno in (errno.EIO, errno.ENOSPC), e

    @rule(data=st.data())
    def plan(self, data):
        self.hv.cache.plan(data.draw(st.lists(st.sampled_from(list(self.steps)), max_size=12)))

    @invariant()
    def every_machine_is_as_if_alone(self):
        for m, n in self.steps.items():
            assert m.state() == replay(n), m.name
        s = self.hv.cache.stats()
        assert s.resident <= s.capacity and s.machines == len(self.steps)
        assert self.hv.cache.where(self.hv.running()).loaded


class CachedMachinesClock(CachedMachines):
    policy = "clock"


class CachedMachinesBelady(CachedMachines):
    policy = "belady"


for _cls in (CachedMachines, CachedMachinesClock, CachedMachinesBelady):
    _cls.TestCase.settings = settings(max_examples=examples(25), stateful_step_count=30)
TestCachedLru = CachedMachines.TestCase
TestCachedClock = CachedMachinesClock.TestCase
TestCachedBelady = CachedMachinesBelady.TestCase


def test_schedules_in_c_count_hits_and_keep_every_machine_exact():
    with pyvswitch.open(platform(3)) as hv:
        ms = [hv.host, *(hv.create_vm(f"v{i}") for i in range(6))]
        hv.cache.reset_stats()
        total = hv.run_schedule(ms, switches=400, steps=3, order="random", seed=5)
        assert total.hits + total.misses == 400 and total.misses > 0 and 0 < total.hit_rate < 1
        assert total.bytes_fetched == total.misses * hv.layout.size and total.cache_ns > 0
        s = hv.cache.stats()
        assert (s.hits, s.misses, s.writebacks) == (total.hits, total.misses, total.writebacks)
    with pyvswitch.open(platform(3)) as hv:
        ms = [hv.host, *(hv.create_vm(f"v{i}") for i in range(6))]
        total = hv.run_schedule(ms, switches=400, steps=3)              # round robin over 7 through 3 slots
        hits = len(range(6, 400, 7)) + 2        # the pinned host's loads, and the first of the 2 VMs made in the store
        assert (total.hits, total.misses) == (hits, 400 - hits)
        for k, m in enumerate(ms):
            assert m.state() == replay(3 * len(range(k, 400, 7))), m.name


def test_two_pcpus_hit_and_miss_at_once_and_every_machine_stays_exact():
    """The hit path takes no lock: two PCPUs switching through one small store at
    once, while a third thread reads registers, pins and reads the statistics."""
    import threading
    text = platform(5).replace('compatible = ["vsw,pcpu"]', 'compatible = ["vsw,pcpu"]\n\n[[device]]\nname = "pcpu1"\n'
                               'compatible = ["vsw,pcpu"]', 1)
    with pyvswitch.open(text) as hv:
        assert hv.npcpus == 2
        vms = [hv.create_vm(f"v{i}") for i in range(9)]
        hv.switch_context(None, vms[4], pcpu=1)
        plans = {0: [hv.host, *vms[:2]], 1: vms[4:]}      # mostly hits, and all misses, evicting both's
        n, steps, done, errors = 20000, 2, threading.Event(), []
        hv.cache.reset_stats()

        def side():
            while not done.is_set():
                hv.cache.stats()
                for m in vms:
                    m.regs["rax"]                           # read wherever it is, never torn
                hv.cache.pin(vms[8], True)
                hv.cache.pin(vms[8], False)

        def caught(fn, *args, **kw):
            try:
                fn(*args, **kw)
            except BaseException as e:      # noqa: BLE001 - reported by the test below
                errors.append(e)

        threads = [threading.Thread(target=caught, args=(hv.run_schedule, ms, n), kwargs={"steps": steps, "pcpu": p})
                   for p, ms in plans.items()]
        watcher = threading.Thread(target=caught, args=(side,))
        watcher.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        watcher.join()
        assert not errors, errors
        s = hv.cache.stats()
        assert s.hits + s.misses >= 2 * n and s.misses > 0 and s.hits > 0
        for ms in plans.values():
            for k, m in enumerate(ms):
                assert m.state() == replay(steps * len(range(k, n, len(ms)))), m.name
