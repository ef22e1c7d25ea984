"""Hand-made ELF64 x86-64 executables for loader tests and the ELF fuzz harness:
an ELF header, program headers given field by field, then the file's bytes."""
from __future__ import annotations

import struct
from collections.abc import Sequence

PT_LOAD = 1
EHDR, PHDR = 64, 56


def elf(phdrs: Sequence[tuple[int, int, int, int, int]], body: bytes = b"", entry: int | None = None,
        e_type: int = 2, machine: int = 62) -> bytes:
    """``phdrs``: (p_type, p_offset, p_vaddr, p_filesz, p_memsz) each; ``body`` follows
    the headers, so offsets from ``body_offset(len(phdrs))`` point into it."""
    n = len(phdrs)
    if entry is None:
        entry = phdrs[0][2] if phdrs else 0
    hdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, e_type, machine, 1, entry, EHDR, 0, 0,
                      EHDR, PHDR, n, 64, 0, 0)
    ph = b"".join(struct.pack("<IIQQQQQQ", t, 5, off, vaddr, vaddr, filesz, memsz, 0x1000)
                  for t, off, vaddr, filesz, memsz in phdrs)
    return hdr + ph + body


def body_offset(nphdrs: int) -> int:
    """Where ``body`` starts in the file ``elf`` makes."""
    return EHDR + PHDR * nphdrs
