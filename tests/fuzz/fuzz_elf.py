"""Fuzz: guest ELF images, parsed by pyelftools (``GuestImage.read``) and built
raw (``GuestImage``/``Segment`` from fuzzed fields), then loaded into a guest
region between two neighbours.  A refused image changed no byte of guest
memory; an accepted one changed only its own region, and holds its segments."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
import atheris  # noqa: E402

with atheris.instrument_imports():
    from pyvswitch import VswError
    from pyvswitch.guest import GuestImage, Segment
    from pyvswitch.guest import loader as guests

from _common import main  # noqa: E402
from elfcraft import PT_LOAD, body_offset, elf  # noqa: E402

MiB = 1 << 20
SIZE = 4 * MiB                      # the guest's region, a neighbour on each side
BASE = NEAR = 64 << 10
MEM = bytearray(b"\xa5" * (NEAR + SIZE + NEAR))
SNAP = [bytes(MEM)]                 # guest memory as it was before the input
FLOOR = 2 * MiB
#: addresses near every edge a segment can cross
EDGES = (0, FLOOR - 1, FLOOR, FLOOR + 0x1000, SIZE - MiB, SIZE - 8, SIZE, 3 << 30, (1 << 63), (1 << 64) - 1)


def clear(off: int, n: int) -> None:
    MEM[off:off + n] = bytes(n)


def near(fdp: "atheris.FuzzedDataProvider") -> int:
    """An address or size near an edge, or anything."""
    if fdp.ConsumeBool():
        return fdp.ConsumeIntInRange(0, (1 << 64) - 1)
    return max(0, min((1 << 64) - 1, EDGES[fdp.ConsumeIntInRange(0, len(EDGES) - 1)]
                      + fdp.ConsumeIntInRange(-16, 16)))


def small(fdp: "atheris.FuzzedDataProvider") -> int:
    return near(fdp) if fdp.ConsumeIntInRange(0, 7) == 0 else fdp.ConsumeIntInRange(0, 0x3000)


def image(fdp: "atheris.FuzzedDataProvider") -> "GuestImage | None":
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 3:                                       # raw: a GuestImage built from fields
        segs = tuple(Segment(near(fdp), fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)), small(fdp))
                     for _ in range(fdp.ConsumeIntInRange(0, 4)))
        return GuestImage("raw", near(fdp), segs)
    if mode == 0:                                       # anything at all
        raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    else:                                               # well-formed headers with fuzzed fields
        n = fdp.ConsumeIntInRange(1, 4)
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256))
        o = body_offset(n)
        ph = []
        for k in range(n):
            if fdp.ConsumeIntInRange(0, 3):             # plausible: in the file, in the region, apart
                filesz = fdp.ConsumeIntInRange(0, len(body))
                ph.append((PT_LOAD, o + fdp.ConsumeIntInRange(0, len(body) - filesz), FLOOR + k * 0x10000
                           + fdp.ConsumeIntInRange(0, 0x10000), filesz, filesz + fdp.ConsumeIntInRange(0, 0x100)))
            else:
                ph.append((PT_LOAD if fdp.ConsumeIntInRange(0, 5) else fdp.ConsumeIntInRange(0, 7),
                           o + fdp.ConsumeIntInRange(0, 300) if fdp.ConsumeIntInRange(0, 5) else near(fdp),
                           near(fdp), small(fdp), small(fdp)))
        raw = bytearray(elf(ph, body, entry=near(fdp) if fdp.ConsumeIntInRange(0, 7) == 0 else None))
        if mode == 2:                                   # and a few bytes flipped or the file cut
            for _ in range(fdp.ConsumeIntInRange(0, 4)):
                raw[fdp.ConsumeIntInRange(0, len(raw) - 1)] = fdp.ConsumeIntInRange(0, 255)
            raw = raw[:fdp.ConsumeIntInRange(0, len(raw))]
        raw = bytes(raw)
    return GuestImage.read(raw)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    try:
        img = image(fdp)
        guests.load_image(MEM, clear, BASE, SIZE, img)
    except VswError:
        assert MEM == SNAP[0], "a refused image changed guest memory"
        return
    assert MEM[:BASE] == b"\xa5" * NEAR and MEM[BASE + SIZE:] == b"\xa5" * NEAR, "a write outside the region"
    for s in img.segments:
        assert FLOOR <= s.vaddr and s.vaddr + s.memsz <= SIZE - MiB and len(s.data) <= s.memsz
        assert MEM[BASE + s.vaddr:BASE + s.vaddr + len(s.data)] == s.data
    SNAP[0] = bytes(MEM)


def seeds() -> list[bytes]:
    return [b"\x01" * 64, b"\x02" * 64, b"\x00" + elf([(PT_LOAD, body_offset(1), FLOOR, 16, 32)], bytes(16)),
            b"\x03" * 32]


if __name__ == "__main__":
    main(test_one_input, seeds)
