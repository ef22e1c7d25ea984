"""Guest programs and their address spaces.

Machine m owns guest-physical memory [m * 2 MiB, (m + 1) * 2 MiB) and its own
page tables in it, mapping virtual [0, 2 MiB) onto that region with one large
page; CR3 points at them.  So each machine sees only its own memory, at the
same virtual addresses, and a switch that restores CR3 changes address space.
"""
from __future__ import annotations

import errno
import struct

from ..hw import Layout, VswError, ffi, lib

REGION = 2 << 20
MMIO = 0xC0000000               # guest-physical; no memslot: writes exit to the VMM
CODE, BUFFER, STACK_TOP = 0x10000, 0x100000, 0x1FF000
PORT_RESULT_LO, PORT_RESULT_HI, PORT_PROGRESS, PORT_DONE = 0x10, 0x11, 0x12, 0x13


def programs() -> dict[str, bytes]:
    """Every guest program built into the C core, by name."""
    out, p, i = {}, ffi.new("struct vsw_guest_program *"), 0
    while lib.vsw_guest_program(i, p) == 0:
        out[ffi.string(p.name).decode()] = bytes(ffi.buffer(p.code, p.size))
        i += 1
    return out


def load(memory: object, slot: int, program: str) -> None:
    """Writes page tables and the program into region ``slot`` of guest memory."""
    progs = programs()
    if program not in progs:
        raise VswError(errno.ENOENT, f"no guest program {program!r}; there are {', '.join(progs)}")
    base = slot * REGION
    if base + REGION > len(memory):  # type: ignore[arg-type]
        raise VswError(errno.ENOSPC, f"guest memory holds {len(memory) // REGION - 1} machines; "  # type: ignore[arg-type]
                                     f"region {slot} is beyond it")
    mem = memoryview(memory)  # type: ignore[arg-type]
    mem[base:base + 0x3000] = bytes(0x3000)
    struct.pack_into("<Q", mem, base + 0x0000, (base + 0x1000) | 0x7)        # PML4[0] -> PDPT, user
    struct.pack_into("<Q", mem, base + 0x1000, (base + 0x2000) | 0x7)        # PDPT[0] -> PD, user
    struct.pack_into("<Q", mem, base + 0x2000, base | 0x87)                   # PD[0]: 2 MiB user page
    struct.pack_into("<Q", mem, base + 0x2008, MMIO | 0x87)                   # PD[1]: device registers
    code = progs[program]
    mem[base + CODE:base + CODE + len(code)] = code


def initial_state(slot: int, rounds: int, seed: int) -> bytes:
    """A register file entering the program in 64-bit mode at CODE with its own CR3."""
    lay = Layout.get("x86_64")
    raw = bytearray(lay.reset_state())
    f = lay.fields

    def put(name: str, value: int) -> None:
        fld = f[name]
        raw[fld.offset:fld.offset + fld.size] = value.to_bytes(fld.size, "little")

    for name, value in {"rip": CODE, "rsp": STACK_TOP, "rflags": 0x2, "rdi": rounds, "rsi": seed or 1,
                        "cr0": 0x80050033, "cr3": slot * REGION, "cr4": 0x10620, "efer": 0x500,
                        "fcw": 0x37F, "mxcsr": 0x1F80, "xstate_bv": 0x3, "xcr0": 0x3,
                        "dr6": 0xFFFF0FF0, "dr7": 0x400, "msr.pat": 0x0007040600070406}.items():
        put(name, value)
    for seg in ("ds", "es", "fs", "gs", "ss"):
        for k, v in {"selector": 0x23, "limit": 0xFFFFFFFF, "type": 3, "present": 1, "s": 1, "db": 1, "g": 1,
                     "dpl": 3}.items():
            put(f"{seg}.{k}", v)
    for k, v in {"selector": 0x2B, "limit": 0xFFFFFFFF, "type": 11, "present": 1, "s": 1, "l": 1, "g": 1,
                 "dpl": 3}.items():
        put(f"cs.{k}", v)
    for k, v in {"selector": 0x18, "limit": 0x67, "type": 11, "present": 1}.items():
        put(f"tr.{k}", v)
    put("ldt.unusable", 1)
    put("ldt.type", 2)
    put("ldt.present", 1)
    return bytes(raw)
