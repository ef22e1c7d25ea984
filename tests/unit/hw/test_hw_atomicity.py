"""A switch happens whole or not at all: a fault at any burst leaves the before-state."""
import errno

import image_header as header
import pytest

import pyvswitch.hw as hw


def snapshot(rig, path, slots):
    """Everything a switch could touch: the register file, who runs, each saved slot."""
    state = rig.pcpu.state()
    saved = {s.owner: (s.export()[header.SIZE:], s.info().generation) for s in slots if s.owner != state.owner}
    return bytes(rig.pcpu.raw()), state.owner, state.dirty_mask, saved


def prepared(make_rig, layout, kind, max_burst=256):
    rig = make_rig(layout, max_burst=max_burst, threshold=1 << 20)
    path = rig.mover if kind == "store" else rig.memory
    a, b = path.store.alloc(1), path.store.alloc(2)
    rig.pcpu.switch(path, 0, b)
    rig.pcpu.run(333)
    rig.pcpu.switch(path, 2, a)
    rig.pcpu.run(1000)
    rig.pcpu.mark_dirty(rig.layout.all_groups)
    return rig, path, a, b


@pytest.mark.parametrize("layout", ["x86_64", "aarch64"])
@pytest.mark.parametrize("kind", ["store", "memory"])
@pytest.mark.parametrize("direction", ["save", "load"])
def test_a_fault_at_every_unit_leaves_everything_as_before(make_rig, layout, kind, direction):
    rig, path, a, b = prepared(make_rig, layout, kind)
    units = path.units(rig.layout.all_groups)
    assert units > 1
    for unit in range(units):
        before = snapshot(rig, path, [a, b])
        path.inject(direction, unit)
        with pytest.raises(hw.VswError) as e:
            rig.pcpu.switch(path, 1, b)
        assert e.value.errno == errno.EIO and "nothing changed" in str(e.value)
        assert snapshot(rig, path, [a, b]) == before, f"{direction} fault at unit {unit}"
    # and the machine still switches, to exactly the state it had
    image_b = b.export()[header.SIZE:]
    rig.pcpu.switch(path, 1, b)
    assert bytes(rig.pcpu.raw()) == image_b


def test_a_fault_beyond_the_transfer_does_nothing(x86):
    a, b = x86.slot(1), x86.slot(2)
    x86.pcpu.switch(x86.mover, 0, a)
    x86.mover.inject("load", 10**6)
    x86.pcpu.switch(x86.mover, 1, b)
    assert x86.pcpu.owner == 2
