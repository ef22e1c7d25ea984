"""Several PCPUs on one storage bus: they take turns, and only ever wait."""
import errno

import pytest

import pyvswitch.hw as hw
from pyvswitch.bench.contention import contention, latencies, switch_costs


def test_one_pcpu_on_a_shared_bus_equals_a_private_bus():
    assert latencies(1, 4, 200) == latencies(1, 1, 200)


def test_contention_never_lowers_latency_and_shows_in_the_tail():
    alone = latencies(1, 1, 50)[0]
    for n in (2, 3, 4):
        xs = latencies(n, 4, 200 * n)
        assert min(xs) >= alone
    rows = contention(4, 200)
    assert rows[0]["p99_ns"] == rows[0]["p50_ns"] == alone and rows[-1]["max_ns"] > alone


def test_two_loads_at_the_same_model_time_take_turns():
    """The second waits exactly the first's transfer (arbitration, first come first served)."""
    lay = hw.Layout.get("x86_64")
    store = hw.Store(lay, 1 << 20)
    path = hw.Path.mover(store, hw.Bus(hw.BusParams.of("storage", {"masters": 2})), hw.MoverParams())
    a, b = hw.Pcpu(lay), hw.Pcpu(lay)
    first = a.switch(path, 0, store.alloc(1))
    second = b.switch(path, 0, store.alloc(2))
    assert second.modeled_ns == pytest.approx(first.modeled_ns + first.data_ns, abs=0.01)
    assert path.bus.counters().wait_cycles > 0


@pytest.mark.parametrize("masters", [0, -1, True, 1 << 40])
def test_masters_must_be_a_positive_count(masters):
    with pytest.raises(OSError) as e:
        hw.Bus(hw.BusParams.of("storage", {"masters": masters}))
    assert e.value.errno in (errno.EINVAL, errno.ERANGE)


@pytest.mark.parametrize("policy", ["lru", "clock", "belady"])
@pytest.mark.parametrize("schedule", ["round-robin", "uniform", "zipf", "bursts"])
def test_one_pcpu_in_one_c_call_gives_what_switch_by_switch_gives(policy, schedule):
    kw = dict(vms=12, capacity=5, policy=policy, schedule=schedule)
    c, py = switch_costs(1, 1, 300, **kw), switch_costs(1, 1, 300, batched=False, **kw)
    assert (c.modeled_ns, c.prior_art_ns, c.hits, c.misses, c.writebacks) == (
        py.modeled_ns, py.prior_art_ns, py.hits, py.misses, py.writebacks)
    assert c.misses > 0 and len(c.modeled_ns) == 300


def test_belady_misses_least_and_needs_one_pcpu():
    misses = {p: switch_costs(1, 1, 500, vms=16, capacity=6, policy=p, schedule="uniform").misses
              for p in ("lru", "clock", "belady")}
    assert misses["belady"] <= min(misses["lru"], misses["clock"])
    with pytest.raises(OSError) as e:
        switch_costs(2, 2, 10, policy="belady")
    assert e.value.errno == errno.EINVAL and "pcpus = 1" in str(e.value)
