"""Several PCPUs on one storage bus: they take turns, and only ever wait."""
import errno

import pytest

import pyvswitch.hw as hw
from pyvswitch.bench.contention import contention, latencies


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
