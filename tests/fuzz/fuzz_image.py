"""Fuzz: context image import.  A refused image leaves the slot and the running
machine unchanged; an accepted one is what the slot then holds."""
from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import atheris  # noqa: E402

with atheris.instrument_imports():
    import pyvswitch
    from pyvswitch import VswError
    from pyvswitch.hw import crc32c, ffi

from _common import main  # noqa: E402

warnings.simplefilter("ignore", pyvswitch.FallbackWarning)
HV = pyvswitch.open()
SAVED = HV.create_vm("saved")
HV.run(1000)
VALID = HV.host.snapshot()
CRC = ffi.offsetof("struct vsw_image_header", "crc")       # where the C core keeps it


def reseal(img: bytearray) -> bytes:
    """Gives a mutated image a correct CRC, so the checks behind the CRC are reached too."""
    crc = slice(CRC, CRC + 4)
    img[crc] = bytes(4)
    img[crc] = crc32c(bytes(img)).to_bytes(4, "little")
    return bytes(img)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:
        img = fdp.ConsumeBytes(fdp.remaining_bytes())
    else:
        img = bytearray(VALID)
        for _ in range(fdp.ConsumeIntInRange(0, 8)):
            at = fdp.ConsumeIntInRange(0, len(img) - 1)
            img[at] = fdp.ConsumeIntInRange(0, 255)
        cut = fdp.ConsumeIntInRange(0, 1)
        img = img[:fdp.ConsumeIntInRange(0, len(img))] if cut else img
        img = reseal(img) if mode == 2 and len(img) >= 40 else bytes(img)
    for m in (SAVED, HV.host):
        before = m.snapshot()
        try:
            m.restore(img)
        except VswError:
            assert m.snapshot() == before, "a refused image changed the machine"
            continue
        state, valid = m.state(), int.from_bytes(img[12:16], "little")
        for g in HV.layout.groups:          # what the image holds, group by group, is what the machine holds
            if valid >> g.index & 1:
                assert state[g.offset:g.offset + g.size] == img[40 + g.offset:40 + g.offset + g.size], g.name
        m.restore(before)


def seeds() -> list[bytes]:
    return [b"\x00" + VALID, b"\x01" + bytes(16), b"\x02" + bytes(16)]


if __name__ == "__main__":
    main(test_one_input, seeds)
