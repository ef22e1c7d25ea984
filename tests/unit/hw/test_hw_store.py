"""The context store: capacity, ownership, double banking, integrity."""
import errno

import pytest

import pyvswitch.hw as hw


def test_capacity_is_refused_with_enospc():
    lay = hw.Layout.get("x86_64")
    probe = hw.Store(lay, 1 << 20)
    store = hw.Store(lay, 3 * probe.slot_bytes)
    assert store.capacity_slots == 3
    for owner in (1, 2, 3):
        store.alloc(owner)
    with pytest.raises(hw.VswError) as e:
        store.alloc(4)
    assert e.value.errno == errno.ENOSPC and "full" in str(e.value)


def test_store_smaller_than_a_slot_and_bad_arguments():
    with pytest.raises(hw.VswError) as e:
        hw.Store("x86_64", 100)
    assert e.value.errno == errno.ENOSPC
    for bad in (0, -5, "1M"):
        with pytest.raises(hw.VswError) as e:
            hw.Store("x86_64", bad)
        assert e.value.errno == errno.EINVAL
    store = hw.Store("x86_64", 1 << 20)
    store.alloc(1)
    for owner, code in ((0, errno.EINVAL), (1, errno.EEXIST), (2**64, errno.EINVAL)):
        with pytest.raises(hw.VswError) as e:
            store.alloc(owner)
        assert e.value.errno == code


def test_a_slot_answers_only_its_owner(x86):
    a = x86.slot(1)
    intruder = hw.Slot(x86.store, a.index, 2)
    for op in (lambda s: s.read(0, 8), lambda s: s.write(0, b"\1" * 8), lambda s: s.export(),
               lambda s: s.info(), lambda s: x86.pcpu.switch(x86.mover, 0, s)):
        with pytest.raises(hw.VswError) as e:
            op(intruder)
        assert e.value.errno == errno.EACCES
    with pytest.raises(hw.VswError) as e:
        hw.Slot(x86.store, 10**6, 1).info()
    assert e.value.errno == errno.ERANGE


def test_write_to_a_saved_slot_commits_atomically_and_bumps_the_generation(x86):
    a = x86.slot(1)
    gen = a.info().generation
    a.regs["rbx"] = 77
    info = a.info()
    assert info.generation == gen + 1 and info.bank_mask == x86.layout.group("regs").mask
    assert a.regs["rbx"] == 77


def test_a_loaded_slot_is_busy_and_freed_slots_are_gone(x86):
    a = x86.slot(1)
    x86.pcpu.switch(x86.mover, 0, a)
    with pytest.raises(hw.VswError) as e:
        a.read(0, 8)
    assert e.value.errno == errno.EBUSY
    with pytest.raises(hw.VswError) as e:
        a.free()
    assert e.value.errno == errno.EBUSY
    b = x86.slot(2)
    b.free()
    with pytest.raises(hw.VswError) as e:
        b.info()
    assert e.value.errno == errno.ENOENT
    assert x86.store.used_slots == 1


@pytest.mark.parametrize("group", range(15))
def test_a_corrupt_bank_is_detected_on_every_load(x86, group):
    a, b = x86.slot(1), x86.slot(2)
    x86.pcpu.switch(x86.mover, 0, a)
    before = bytes(x86.pcpu.raw())
    b.corrupt(group, byte=group * 4)
    for _ in range(2):
        with pytest.raises(hw.VswError) as e:
            x86.pcpu.switch(x86.mover, 1, b)
        assert e.value.errno == errno.EBADMSG
        assert bytes(x86.pcpu.raw()) == before and x86.pcpu.owner == 1
    c = x86.slot(3)
    x86.pcpu.switch(x86.mover, 1, c)       # other machines are unaffected
    x86.pcpu.switch(x86.mover, 3, a)
    assert bytes(x86.pcpu.raw()) == before
