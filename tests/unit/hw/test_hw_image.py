"""Context images: round trips, and every class of damage refused with nothing changed."""
import errno

import image_header as header
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyvswitch.hw as hw


def sealed(header_and_payload: bytes) -> bytes:
    """Recomputes the CRC of a hand-made image, so only the intended defect remains."""
    img = header.put(header_and_payload, "crc", 0)
    return header.put(img, "crc", hw.crc32c(img))


@pytest.fixture
def saved(x86):
    a = x86.slot(1)
    a.regs.update({"rax": 0x1234, "xmm7": 2**127 + 5, "msr.lstar": 0xFFFF_8000_0000_1000})
    return x86, a


def test_round_trip_between_slots(saved):
    rig, a = saved
    b = rig.slot(2)
    img = a.export()
    assert len(img) == rig.layout.image_size
    b.import_(img)
    assert b.regs["rax"] == 0x1234 and b.regs["xmm7"] == 2**127 + 5
    assert b.export()[header.SIZE:] == img[header.SIZE:]


def test_crc32c_is_the_castagnoli_crc():
    assert hw.crc32c(b"123456789") == 0xE3069283


LAYOUT_VERSION = hw.Layout.get("x86_64").version
CASES = {
    "truncated": (lambda img: img[:-1], errno.ENODATA),
    "header only": (lambda img: img[:header.SIZE // 2], errno.ENODATA),
    "trailing bytes": (lambda img: img + b"\0", errno.EMSGSIZE),
    "bad magic": (lambda img: header.put(img, "magic", int.from_bytes(b"XXXX", "little")), errno.ENOEXEC),
    "bad crc": (lambda img: img[:100] + bytes([img[100] ^ 1]) + img[101:], errno.EBADMSG),
    "newer version": (lambda img: sealed(header.put(img, "version", LAYOUT_VERSION + 1)), errno.EPROTONOSUPPORT),
    "older version": (lambda img: sealed(header.put(img, "version", LAYOUT_VERSION - 1)), errno.EPROTONOSUPPORT),
    "size mismatch": (lambda img: sealed(header.put(img, "payload_size", len(img) - header.SIZE - 8)[:-8]),
                      errno.EMSGSIZE),
    "unknown groups": (lambda img: sealed(header.put(img, "valid_mask", 1 << 20)), errno.EINVAL),
}


@pytest.mark.parametrize("case", CASES)
def test_damaged_images_are_refused_and_change_nothing(saved, case):
    rig, a = saved
    damage, code = CASES[case]
    before = a.export()
    with pytest.raises(hw.VswError) as e:
        a.import_(damage(before))
    assert e.value.errno == code, str(e.value)
    assert str(e.value).startswith("[")  # names the errno, then says what was wrong
    assert a.export() == before


def test_foreign_layout_is_refused(make_rig, saved):
    rig, a = saved
    arm = make_rig("aarch64")
    with pytest.raises(hw.VswError) as e:
        a.import_(arm.slot(9).export())
    assert e.value.errno == errno.EXDEV and "layout" in str(e.value)


@given(pos=st.integers(0, hw.Layout.get("x86_64").image_size - 1), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_refused(make_rig, pos, bit):
    rig = make_rig("x86_64")
    a = rig.slot(1)
    img = bytearray(a.export())
    img[pos] ^= 1 << bit
    with pytest.raises(hw.VswError):
        a.import_(bytes(img))


def test_running_machine_exports_from_the_register_file(x86):
    a = x86.slot(1)
    x86.pcpu.switch(x86.mover, 0, a)
    x86.pcpu.run(50)
    img = x86.pcpu.export()
    b = x86.slot(2)
    b.import_(img)
    assert b.read(0, x86.layout.size) == bytes(x86.pcpu.raw())
