"""Burst accounting and the patent's thresholds."""
import errno
import functools
import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import group_masks

import pyvswitch.hw as hw


def runs(lay, mask):
    """Byte lengths of the runs of adjacent groups in mask (reference model)."""
    out, cur = [], 0
    for g in lay.groups:
        if mask & g.mask:
            cur += g.size
        elif cur:
            out.append(cur)
            cur = 0
    return out + ([cur] if cur else [])


def bursts(lay, mask, max_burst):
    return sum(math.ceil(r / max_burst) for r in runs(lay, mask))


@pytest.mark.parametrize("layout", ["x86_64", "aarch64"])
@pytest.mark.parametrize("max_burst", [64, 256, 1000 - 1000 % 8, 4096, 65536])
def test_full_transfer_takes_ceil_s_over_max_burst(make_rig, layout, max_burst):
    rig = make_rig(layout, max_burst=max_burst, threshold=1 << 20)
    lay = rig.layout
    a, b = rig.slot(1), rig.slot(2)
    rig.pcpu.switch(rig.mover, 0, a)
    rig.pcpu.mark_dirty(lay.all_groups)
    s = rig.pcpu.switch(rig.mover, 1, b)
    assert s.save_bursts == s.load_bursts == math.ceil(lay.size / max_burst)
    assert s.bytes_saved == s.bytes_loaded == lay.size
    assert rig.mover.limits().full_units == math.ceil(lay.size / max_burst)


@given(mask=group_masks("x86_64"), max_burst=st.sampled_from([64, 128, 512, 4096]))
def test_dirty_only_saves_move_the_runs_of_dirty_groups(make_rig, mask, max_burst):
    rig = make_rig("x86_64", max_burst=max_burst, threshold=1 << 20)
    a, b = rig.slot(1), rig.slot(2)
    rig.pcpu.switch(rig.mover, 0, a)
    if mask:
        rig.pcpu.mark_dirty(mask)
    s = rig.pcpu.switch(rig.mover, 1, b)
    assert s.save_mask == mask
    assert s.save_bursts == bursts(rig.layout, mask, max_burst) == rig.mover.units(mask)
    assert s.bytes_saved == sum(runs(rig.layout, mask))
    assert s.bytes_saved <= rig.layout.size


def test_run_marks_only_the_groups_it_writes(x86):
    x86.pcpu.switch(x86.mover, 0, x86.slot(1))
    x86.pcpu.run(1000)
    dirty = x86.pcpu.state().dirty_mask
    lay = x86.layout
    assert dirty & lay.mask(["regs", "fpu_sse"]) == lay.mask(["regs", "fpu_sse"])
    assert not dirty & lay.mask(["zmm_hi256", "hi16_zmm", "debugregs"])


@functools.lru_cache(maxsize=None)
def every_dirty_sets_runs(layout: str) -> frozenset[tuple[int, ...]]:
    """The runs of every one of the 2**groups dirty sets (each distinct list once)."""
    lay = hw.Layout.get(layout)
    return frozenset(tuple(runs(lay, m)) for m in range(1 << len(lay.groups)))


@pytest.mark.parametrize("max_burst", [64, 192, 512, 2048])
def test_worst_case_is_the_most_any_dirty_set_needs(make_rig, max_burst):
    rig = make_rig("x86_64", max_burst=max_burst, threshold=1 << 20)
    worst = max(sum(math.ceil(r / max_burst) for r in rs) for rs in every_dirty_sets_runs("x86_64"))
    assert rig.mover.limits().worst_save_units == worst


def test_thresholds_are_enforced_when_configured_not_mid_switch(make_rig):
    rig = make_rig("x86_64", max_burst=4096, threshold=16)
    limits = rig.mover.limits()
    # N must stay strictly below the write threshold for every possible save
    ok = hw.MoverParams(4096, limits.worst_save_units + 1, limits.full_units + 1)
    rig.mover.configure(ok)
    for params in (hw.MoverParams(4096, limits.worst_save_units, 64), hw.MoverParams(4096, 64, limits.full_units),
                   hw.MoverParams(64, 16, 16)):
        with pytest.raises(hw.VswError) as e:
            rig.mover.configure(params)
        assert e.value.errno == errno.E2BIG and "threshold" in str(e.value)
        assert rig.mover.params == ok  # the old configuration stays in force
    with pytest.raises(hw.VswError) as e:
        hw.Path.mover(rig.store, rig.sbus, hw.MoverParams(64, 8, 8))
    assert e.value.errno == errno.E2BIG


@pytest.mark.parametrize("bad", [0, 12, -64])
def test_zero_or_ragged_burst_sizes_are_refused(make_rig, bad):
    rig = make_rig("x86_64")
    with pytest.raises(hw.VswError) as e:
        rig.mover.configure(hw.MoverParams(bad, 16, 16))
    assert e.value.errno == errno.EINVAL


def test_every_switch_keeps_n_and_m_below_the_thresholds(make_rig):
    rig = make_rig("x86_64", max_burst=512, threshold=24)
    slots = [rig.slot(i) for i in range(1, 5)]
    rig.pcpu.switch(rig.mover, 0, slots[0])
    cur = 1
    for _, mask in zip(range(200), itertools.cycle([0x5555, 0x2AAA, 0x7FFF, 0x1, 0x4001])):
        rig.pcpu.mark_dirty(mask)
        nxt = (cur % 4) + 1
        s = rig.pcpu.switch(rig.mover, cur, slots[nxt - 1])
        assert s.save_bursts < 24 and s.load_bursts < 24
        cur = nxt
