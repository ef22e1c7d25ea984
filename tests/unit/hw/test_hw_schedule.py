"""The C schedule loop (vsw_run_schedule) given a sequence of machines - the form the
contention model (pyvswitch.bench.contention) runs - on hw objects: a sequence is
checked whole before anything runs, and each switch's modelled cost is recorded.
The round-robin and random schedules of ``Hypervisor.run_schedule`` are tested
through the API (tests/unit/api/test_api_schedule.py)."""
import errno

import pytest

from pyvswitch.hw import Bus, BusParams, Layout, MoverParams, Path, Pcpu, Store, ffi, lib
from pyvswitch.hw.cache import Cache

LAY = Layout.get("x86_64")


@pytest.fixture
def four():
    """A PCPU running the first of four contexts of a store-backed cache."""
    slot = Store(LAY, 1 << 20).slot_bytes
    path = Path.mover(Store(LAY, 4 * slot), Bus(BusParams.of("storage", {})), MoverParams.of({}))
    cache = Cache(path, Store(LAY, 4 * slot), Bus(BusParams.of("memory", {})), "lru")
    ctxs = [cache.new_context(m + 1, 1) for m in range(4)]
    cpu = Pcpu(LAY)
    cpu.thaw(1)
    cpu.switch_ctx(None, ctxs[0])
    yield cpu, ctxs
    owner = cpu.owner
    if owner:
        cpu.switch_ctx(ctxs[owner - 1], None)
    cpu.close()
    for x in ctxs:
        lib.vsw_ctx_release(x)


def _schedule(cpu: Pcpu, ctxs: list, sequence: list[int], **plan: object):
    seq = ffi.new("uint32_t[]", sequence)
    c_plan = ffi.new("struct vsw_schedule *", {"switches": len(sequence), "order": lib.VSW_ORDER_SEQUENCE,
                                               "sequence": seq, **plan})
    out = ffi.new("struct vsw_schedule_stats *")
    arr = ffi.new("struct vsw_ctx *[]", ctxs)
    return lib.vsw_run_schedule(cpu.handle, arr, len(ctxs), 0, c_plan, ffi.NULL, out), out


@pytest.mark.parametrize("bad", [[1, 2, 2], [1, 4], [0, 1]], ids=["a repeat", "beyond the machines", "the one running"])
def test_a_sequence_is_checked_whole_before_anything_runs(four, bad):
    cpu, ctxs = four
    before, regs = cpu.state(), cpu.read(0, LAY.size)
    r, out = _schedule(cpu, ctxs, bad)
    assert r == -errno.EINVAL and out.switches == 0
    after = cpu.state()
    assert (cpu.owner, after.switches, after.now_ns) == (1, before.switches, before.now_ns)
    assert cpu.read(0, LAY.size) == regs


def test_a_sequence_runs_in_its_order_and_records_each_switchs_cost(four):
    cpu, ctxs = four
    costs = ffi.new("uint64_t[]", 4)
    before = cpu.state().switches
    r, out = _schedule(cpu, ctxs, [2, 1, 3, 0], modeled_ps=costs, dirty_mask=LAY.all_groups)
    assert r == 0 and out.switches == 4 and out.current == 0 and cpu.owner == 1
    assert cpu.state().switches == before + 4
    assert all(c > 0 for c in ffi.unpack(costs, 4)) and sum(ffi.unpack(costs, 4)) == out.modeled_ps
    assert out.bytes_saved == 4 * LAY.size          # every group marked dirty before each switch
