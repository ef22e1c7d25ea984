"""The ELF loader cannot write outside its guest: every segment is checked
against the file and the guest's region before a byte is written, and a
refusal (ENOEXEC naming the segment) leaves guest memory exactly as it was.
Runs without /dev/kvm (guest memory is a bytearray); the CLI test needs KVM."""
from __future__ import annotations

import errno
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from elfcraft import PT_LOAD, body_offset, elf
from locations import GUESTS

from pyvswitch import VswError
from pyvswitch.guest import GuestImage, Segment
from pyvswitch.guest.image import LOAD_FLOOR
from pyvswitch.guest import loader as guests

MiB = 1 << 20
SIZE = 4 * MiB                  # the guest's region; a neighbour on each side
BASE = SIZE


def _memory() -> bytearray:
    mem = bytearray(b"\xa5" * (3 * SIZE))
    mem[BASE:BASE + SIZE] = bytes(SIZE)
    return mem


def _clear(mem: bytearray):
    def clear(off: int, n: int) -> None:
        mem[off:off + n] = bytes(n)
    return clear


def _digest(mem: bytearray) -> bytes:
    return hashlib.sha256(mem).digest()


def _refused(mem: bytearray, image: "GuestImage | bytes", size: int = SIZE, base: int = BASE) -> VswError:
    before = _digest(mem)
    with pytest.raises(VswError) as e:
        img = GuestImage.read(image) if isinstance(image, bytes) else image
        guests.load_image(mem, _clear(mem), base, size, img)
    assert _digest(mem) == before, "a refused image changed guest memory"
    return e.value


def test_a_valid_image_lands_in_its_region_only():
    o = body_offset(2)
    img = GuestImage.read(elf([(PT_LOAD, o, LOAD_FLOOR, 16, 32), (PT_LOAD, o + 16, LOAD_FLOOR + 0x1000, 8, 0x100)],
                              bytes(range(1, 25))))
    mem = _memory()
    guests.load_image(mem, _clear(mem), BASE, SIZE, img)
    assert mem[BASE + LOAD_FLOOR:BASE + LOAD_FLOOR + 32] == bytes(range(1, 17)) + bytes(16)
    assert mem[BASE + LOAD_FLOOR + 0x1000:BASE + LOAD_FLOOR + 0x1008] == bytes(range(17, 25))
    assert mem[:BASE] == b"\xa5" * BASE and mem[BASE + SIZE:] == b"\xa5" * SIZE


def test_filesz_over_memsz_is_refused_naming_the_segment():
    o = body_offset(2)
    e = _refused(_memory(), elf([(PT_LOAD, o, LOAD_FLOOR, 8, 8), (PT_LOAD, o, LOAD_FLOOR + 0x1000, 64, 32)],
                                bytes(64)))
    assert e.errno == errno.ENOEXEC and "segment 1" in str(e) and "p_filesz" in str(e)


def test_data_past_the_end_of_the_file_is_refused():
    e = _refused(_memory(), elf([(PT_LOAD, body_offset(1), LOAD_FLOOR, 64, 64)], bytes(63)))
    assert e.errno == errno.ENOEXEC and "segment 0" in str(e) and "past the end" in str(e)


def test_an_offset_far_past_the_file_is_refused():
    e = _refused(_memory(), elf([(PT_LOAD, 1 << 62, LOAD_FLOOR, 1, 1)]))
    assert e.errno == errno.ENOEXEC and "segment 0" in str(e)


def test_overlapping_segments_are_refused():
    o = body_offset(2)
    e = _refused(_memory(), elf([(PT_LOAD, o, LOAD_FLOOR, 8, 0x2000), (PT_LOAD, o, LOAD_FLOOR + 0x1fff, 8, 8)],
                                bytes(8)))
    assert e.errno == errno.ENOEXEC and "overlaps" in str(e)


def test_touching_segments_are_not_overlapping():
    o = body_offset(2)
    img = GuestImage.read(elf([(PT_LOAD, o, LOAD_FLOOR, 8, 0x1000), (PT_LOAD, o, LOAD_FLOOR + 0x1000, 8, 8)],
                              bytes(8)))
    assert len(img.segments) == 2


@pytest.mark.parametrize("vaddr,memsz", [(SIZE - 8, 16), (SIZE, 1), (LOAD_FLOOR - 1, 2), (1 << 40, 8),
                                         ((1 << 64) - 8, 8)])
def test_a_segment_one_past_the_region_is_refused_before_a_write(vaddr, memsz):
    o = body_offset(2)
    raw = elf([(PT_LOAD, o, LOAD_FLOOR, 4, 4), (PT_LOAD, o, vaddr, 4, memsz)], b"\x11" * 4, entry=LOAD_FLOOR)
    mem = _memory()
    e = _refused(mem, raw)
    assert e.errno == errno.ENOEXEC and "segment 1" in str(e)


def test_the_last_byte_of_the_region_is_refused_for_the_stack_not_with_a_traceback():
    """A segment that fits but leaves no stack: EFBIG; at the end of guest memory,
    not the ValueError of a short slice."""
    raw = elf([(PT_LOAD, body_offset(1), SIZE - 16, 16, 16)], b"\x22" * 16)
    mem = _memory()
    e = _refused(mem, raw, base=2 * SIZE)           # the last region of guest memory
    assert e.errno == errno.EFBIG


def test_a_hand_built_image_is_held_to_the_same_rules():
    with pytest.raises(VswError) as e:
        GuestImage("x", LOAD_FLOOR, (Segment(LOAD_FLOOR, b"\x00" * 64, 32),))
    assert e.value.errno == errno.ENOEXEC and "segment 0" in str(e.value)
    with pytest.raises(VswError):
        GuestImage("x", LOAD_FLOOR, (Segment(LOAD_FLOOR, "text", 32),))     # type: ignore[arg-type]
    with pytest.raises(VswError) as e:
        GuestImage("x", 0, (Segment(LOAD_FLOOR, b"", 32),))
    assert "entry point" in str(e.value)
    # frozen, but object.__setattr__ gets around it: load_image checks again
    img = GuestImage("x", LOAD_FLOOR, (Segment(LOAD_FLOOR, b"\x01", 32),))
    object.__setattr__(img.segments[0], "data", b"\x02" * 64)
    e2 = _refused(_memory(), img)
    assert e2.errno == errno.ENOEXEC


def test_a_region_past_guest_memory_is_refused_before_a_write():
    raw = elf([(PT_LOAD, body_offset(1), LOAD_FLOOR, 4, 4)], b"\x33" * 4)
    e = _refused(_memory(), raw, base=3 * SIZE)
    assert e.errno == errno.ENOSPC


def test_segment_repr_is_short():
    s = Segment(LOAD_FLOOR, bytes(1 << 20), 2 << 20)
    assert len(repr(s)) < 100 and "1048576 bytes" in repr(s)


def test_cli_run_refuses_a_hostile_image_without_a_traceback(tmp_path):
    from pyvswitch.kvm import why_unusable
    why = why_unusable()
    if why is not None:
        pytest.skip(f"KVM unusable here: {why}")
    bad = tmp_path / "bad.elf"
    bad.write_bytes(elf([(PT_LOAD, body_offset(1), LOAD_FLOOR, 0x2000, 0x10)], bytes(0x2000)))
    r = subprocess.run([sys.executable, "-m", "pyvswitch", "run", str(bad)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "segment 0" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_hostile_image_beside_a_loaded_guest_changes_nothing(tmp_path):
    """The issue's attack: an image whose segment would reach past its region
    into the next guest's page tables.  Refused before a region is even taken;
    the neighbour's memory is as it was, and it runs to its own output."""
    from pyvswitch.kvm import why_unusable
    why = why_unusable()
    if why is not None:
        pytest.skip(f"KVM unusable here: {why}")
    import pyvswitch
    from pyvswitch.guest import build
    from pyvswitch.kvm import Scheduler
    good = build([GUESTS / "abi.c"], tmp_path / "abi.elf")
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        vcpu = sched.vcpu
        big = 4 * SIZE                              # room for abi's heap above its stack's reserve
        first = sched.add(hv.create_vm("first"), good, mem_bytes=big)
        victim = sched.add(hv.create_vm("victim"), good, mem_bytes=big)
        assert victim.base == first.base + big
        before, used = bytes(vcpu.memory[victim.base:victim.base + big]), vcpu.regions.in_use
        bad = hv.create_vm("bad")
        state = bad.state()
        for raw in (elf([(PT_LOAD, body_offset(1), LOAD_FLOOR, 0x1000, 0x1000)], b"\xcc" * 0x1000),   # fits
                    elf([(PT_LOAD, body_offset(1), SIZE - 0x800, 0x1000, 0x1000)], b"\xcc" * 0x1000),
                    elf([(PT_LOAD, body_offset(1), LOAD_FLOOR, 0x1000, 0x10)], b"\xcc" * 0x1000)):
            try:
                sched.add(bad, raw, mem_bytes=SIZE)
            except VswError as e:
                assert e.errno == errno.ENOEXEC and "segment 0" in str(e)
                assert bad.state() == state and vcpu.regions.in_use == used
            else:                                   # the one that fits took a region of its own, not the victim's
                assert sched.jobs[-1].base not in (first.base, victim.base)
                sched.jobs.pop()
                hv.destroy_vm(bad)
                bad, state, used = hv.create_vm("bad2"), hv.create_vm("tmp").state(), vcpu.regions.in_use
        assert bytes(vcpu.memory[victim.base:victim.base + big]) == before
        sched.run(slice_us=200)
    assert victim.exit_status == 0 and victim.text == "abi ok (0 failures)\n"
