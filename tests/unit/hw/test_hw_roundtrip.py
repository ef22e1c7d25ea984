"""Any register contents survive save -> load bit-exact, on both layouts and both paths."""
import random

from hypothesis import given
from hypothesis import strategies as st
from strategies import field_values

import pyvswitch.hw as hw


def round_trip(rig, path, values, owners):
    a, b = path.store.alloc(owners[0]), path.store.alloc(owners[1])
    try:
        rig.pcpu.switch(path, 0, a)
        rig.pcpu.regs.update(values)
        before = bytes(rig.pcpu.raw())
        rig.pcpu.switch(path, owners[0], b)
        assert a.read(0, rig.layout.size) == before       # saved bit-exact
        rig.pcpu.switch(path, owners[1], a)
        assert bytes(rig.pcpu.raw()) == before           # loaded bit-exact
        assert all(rig.pcpu.regs[n] == v for n, v in values.items())
        rig.pcpu.switch(path, owners[0], None)
    finally:
        a.free()
        b.free()


@given(values=field_values("x86_64"), fast=st.booleans())
def test_x86_64_registers_survive(rigs, values, fast):
    rig = rigs["x86_64"]
    round_trip(rig, rig.mover if fast else rig.memory, values, (11, 12))


@given(values=field_values("aarch64"), fast=st.booleans())
def test_aarch64_registers_survive(rigs, values, fast):
    rig = rigs["aarch64"]
    round_trip(rig, rig.mover if fast else rig.memory, values, (21, 22))


SIZE = hw.Layout.get("x86_64").size


@given(seed=st.integers(0, 2**64), patch=st.binary(max_size=64), at=st.integers(0, SIZE))
def test_every_byte_of_the_register_file_survives(rigs, seed, patch, at):
    rig = rigs["x86_64"]
    raw = bytearray(random.Random(seed).randbytes(SIZE))
    raw[at:at + len(patch)] = patch[:SIZE - at]
    raw = bytes(raw)
    a, b = rig.store.alloc(31), rig.store.alloc(32)
    try:
        rig.pcpu.switch(rig.mover, 0, a)
        rig.pcpu.write(0, raw)
        rig.pcpu.switch(rig.mover, 31, b)
        rig.pcpu.switch(rig.mover, 32, a)
        assert bytes(rig.pcpu.raw()) == raw
        img = rig.pcpu.export()
        rig.pcpu.switch(rig.mover, 31, None)
        b.import_(img)
        assert b.read(0, SIZE) == raw
    finally:
        a.free()
        b.free()
