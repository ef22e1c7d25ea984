"""The bus cost model on hand-computed cases; seeded contention is reproducible."""
import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyvswitch.hw as hw


def test_point_to_point_transaction_cost():
    bus = hw.Bus(kind="storage", width_bytes=64, clock_mhz=2000, setup_cycles=4)
    # 4 setup + ceil(4096 / 64) = 64 beats = 68 cycles at 2 GHz = 34 ns
    assert bus.transact(4096) == (34.0, 0.0)
    # 4 + ceil(100 / 64) = 6 cycles = 3 ns
    assert bus.transact(100) == (3.0, 0.0)
    c = bus.counters()
    assert (c.transactions, c.bytes, c.busy_cycles, c.wait_cycles) == (2, 4196, 74, 0)


def test_idle_memory_bus_never_waits():
    bus = hw.Bus(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True)
    # 44 + 1 beat = 45 cycles at 3.2 GHz = 14.0625 ns (model time is kept in whole picoseconds)
    for _ in range(100):
        cost, wait = bus.transact(8)
        assert cost == pytest.approx(14.0625, abs=0.001) and wait == 0.0


def waits(u, seed, n=300):
    bus = hw.Bus(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True,
                 utilisation=u, seed=seed)
    return [bus.transact(64)[1] for _ in range(n)]


def test_contention_is_reproducible_from_the_seed():
    assert waits(0.5, 3) == waits(0.5, 3)
    assert waits(0.5, 3) != waits(0.5, 4)
    bus = hw.Bus(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True, utilisation=0.5, seed=3)
    first = [bus.transact(64)[1] for _ in range(50)]
    bus.reset()
    assert [bus.transact(64)[1] for _ in range(50)] == first


@given(u1=st.floats(0, 0.95), u2=st.floats(0, 0.95), seed=st.integers(0, 2**32))
def test_more_load_never_shortens_a_wait(u1, u2, seed):
    lo, hi = sorted((u1, u2))
    assert all(a <= b for a, b in zip(waits(lo, seed, 50), waits(hi, seed, 50)))


def test_mean_wait_matches_the_geometric_model():
    # other master's transaction: 44 + 8 beats = 52 cycles; mean wait u/(1-u) of them
    w = waits(0.5, 11, 20000)
    mean_cycles = sum(w) / len(w) * 3.2
    assert abs(mean_cycles - 52.0) < 3.0


@pytest.mark.parametrize("kw,code", [({"width_bytes": 0}, errno.EINVAL), ({"clock_mhz": 0}, errno.EINVAL),
                                     ({"utilisation": 1.0}, errno.EDOM), ({"utilisation": -0.1}, errno.EDOM),
                                     ({"utilisation": 0.5}, errno.EINVAL), ({"kind": "pci"}, errno.EINVAL)])
def test_bad_bus_parameters(kw, code):
    with pytest.raises(hw.VswError) as e:
        hw.Bus(**kw)
    assert e.value.errno == code


def test_zero_byte_transaction_is_refused():
    with pytest.raises(hw.VswError) as e:
        hw.Bus().transact(0)
    assert e.value.errno == errno.EINVAL


@pytest.mark.parametrize("u", [1 - 1e-12, 1 - 1e-14, 1 - 2 ** -53])
def test_a_bus_loaded_to_its_edge_never_costs_less_than_idle_nor_wraps(u):
    """utilisation is any fraction below 1 (C's bound): the largest double below 1 drew waits of
    2^64 cycles and more, cast and summed in 64 bits - a transaction costing 0.0 ns, less than on
    an idle bus, and a wait counter that wrapped (going down).  The model saturates instead."""
    idle = hw.Bus(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True).transact(64)[0]
    bus = hw.Bus(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True, utilisation=u, seed=1)
    last = 0
    for _ in range(2000):
        cost, wait = bus.transact(64)
        assert cost >= idle and cost >= wait >= 0, (cost, wait, idle)
        now = bus.counters().wait_cycles
        assert now >= last, "the wait counter wrapped"
        last = now


@pytest.mark.parametrize("nbytes, err", [(-1, errno.EINVAL), (2 ** 32, errno.ERANGE), (2 ** 64, errno.ERANGE),
                                         (True, errno.EINVAL), (1.5, errno.EINVAL), ("64", errno.EINVAL)])
def test_a_transaction_of_a_byte_count_c_cannot_take_is_refused_in_its_words(nbytes, err):
    """transact(-1) raised cffi's OverflowError, transact(1.5) a TypeError and transact(True)
    moved one byte: a bad count is a VswError saying what was expected, and counts nothing."""
    bus = hw.Bus(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True)
    with pytest.raises(hw.VswError) as e:
        bus.transact(nbytes)
    assert e.value.errno == err and "bus transaction" in str(e.value) and repr(nbytes) in str(e.value)
    assert bus.counters().transactions == 0
