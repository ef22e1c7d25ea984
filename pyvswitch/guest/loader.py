"""Guest programs and their address spaces: the loader (page tables, images,
the initial state; the layout they follow is ``pyvswitch.guest.layout``).

Each machine owns a region of the vCPU's guest-physical memory (``Regions``)
with its own page tables at its start, and CR3 points at them; so each machine
sees only its own memory, at the same virtual addresses, and a switch that
restores CR3 changes address space.

Two kinds of program:
- the built-in assembly programs of the C core (``hash``, ``vecsum``, ``prng``):
  a 2 MiB region mapped at virtual 0, device registers at virtual 2 MiB;
- any freestanding C program built with ``pyvswitch guest build`` (an ELF
  image): a region of ``mem_bytes`` (``pyvswitch.guest.layout.DEFAULT_MEM`` by default) mapped at virtual
  [2 MiB, size) - the first 2 MiB unmapped, so a null pointer faults - and the
  device registers at virtual 0xC0000000 (``vsw_guest.h``).

An ELF guest's region also holds, below 2 MiB where its own code never reaches,
a system area mapped supervisor-only at ``SYS_VIRT``: a GDT, a TSS, an IDT and a
handler per CPU exception that records the fault and writes its vector to the
FAULT device register.  So a crash ends the guest as its kind (page fault,
general protection, invalid opcode, ...), its RIP and, for a page fault, the
address (``fault_frame``), where it used to be a triple fault with no state left.
"""
from __future__ import annotations

import errno
import struct
from collections.abc import Callable

from ..hw import Layout, VswError, ffi, lib
from .image import LOAD_FLOOR, GuestImage
from .layout import CODE, MMIO, PAGE_2M, STACK_TOP

#: XCR0 components a guest gets by default, where the host has them: x87, SSE,
#: AVX, opmask, ZMM_Hi256, Hi16_ZMM, PKRU.
GUEST_XCR0 = 0x2E7
CR4 = 0x10620 | 1 << 18         # PAE, OSFXSR, OSXMMEXCPT, FSGSBASE, OSXSAVE
DEV_PT_OFF = 0x4000             # ELF guests: the page table that maps the device registers' one page


def programs() -> dict[str, bytes]:
    """Every guest program built into the C core, by name."""
    out, p, i = {}, ffi.new("struct vsw_guest_program *"), 0
    while lib.vsw_guest_program(i, p) == 0:
        out[ffi.string(p.name).decode()] = bytes(ffi.buffer(p.code, p.size))
        i += 1
    return out


def _check_room(memory: object, base: int, size: int) -> memoryview:
    mem = memoryview(memory)  # type: ignore[arg-type]
    if base + size > len(mem):
        raise VswError(errno.ENOSPC, f"region {base:#x}+{size:#x} is beyond the {len(mem):#x} bytes of guest memory")
    return mem


def load(memory: object, base: int, program: str) -> None:
    """Writes page tables and a built-in program into the 2 MiB region at ``base``."""
    progs = programs()
    if program not in progs:
        raise VswError(errno.ENOENT, f"no guest program {program!r}; there are {', '.join(progs)}")
    mem = _check_room(memory, base, PAGE_2M)
    mem[base:base + 0x3000] = bytes(0x3000)
    struct.pack_into("<Q", mem, base + 0x0000, (base + 0x1000) | 0x7)        # PML4[0] -> PDPT, user
    struct.pack_into("<Q", mem, base + 0x1000, (base + 0x2000) | 0x7)        # PDPT[0] -> PD, user
    struct.pack_into("<Q", mem, base + 0x2000, base | 0x87)                   # PD[0]: 2 MiB user page
    struct.pack_into("<Q", mem, base + 0x2000 + 8 * (lib.VSW_BUILTIN_REGS // PAGE_2M), MMIO | 0x87)   # the device page
    code = progs[program]
    mem[base + CODE:base + CODE + len(code)] = code


def check_image(image: GuestImage, size: int) -> None:
    """ENOEXEC naming the segment unless every byte of ``image`` lies in a guest
    address space of ``size`` bytes above its unmapped first 2 MiB; EFBIG when
    it leaves less than 1 MiB of stack."""
    image.check()                               # a GuestImage's fields could have been swapped since
    for i, seg in enumerate(image.segments):
        if seg.vaddr < LOAD_FLOOR or seg.vaddr + seg.memsz > size or len(seg.data) > seg.memsz:
            raise VswError(errno.ENOEXEC, f"guest image {image.name}: {seg.describe(i)} is outside the guest's "
                                          f"{size >> 20} MiB address space [{LOAD_FLOOR:#x}, {size:#x})")
    if image.end > size - (1 << 20):
        raise VswError(errno.EFBIG, f"guest image {image.name} reaches {image.end:#x}; a {size >> 20} MiB "
                                    "address space leaves it no stack (give it more guest memory)")


def load_image(memory: object, clear: "Callable[[int, int], None]", base: int, size: int,
               image: GuestImage) -> None:
    """Clears the region (``clear(base, size)``), maps virtual [2 MiB, size) onto it and
    0xC0000000 onto the device registers, and copies the image's segments in.

    Everything is checked before a byte is written: a segment with any byte outside
    [2 MiB, size) is refused with ENOEXEC naming it, an image that leaves no stack
    with EFBIG, a region outside guest memory with ENOSPC."""
    check_image(image, size)
    mem = _check_room(memory, base, size)
    clear(base, size)
    struct.pack_into("<Q", mem, base + 0x0000, (base + 0x1000) | 0x7)        # PML4[0] -> PDPT
    struct.pack_into("<Q", mem, base + 0x1000, (base + 0x2000) | 0x7)        # PDPT[0] -> PD: [0, 1 GiB)
    struct.pack_into("<Q", mem, base + 0x1018, (base + 0x3000) | 0x7)        # PDPT[3] -> PD: [3 GiB, 4 GiB)
    for i in range(1, size // PAGE_2M):                                        # PD[0] stays unmapped
        struct.pack_into("<Q", mem, base + 0x2000 + 8 * i, (base + i * PAGE_2M) | 0x87)
    # the device registers: one 4 KiB page, so the rest of the 2 MiB above 0xC0000000 faults
    # instead of reaching registers through aliases of the page
    struct.pack_into("<Q", mem, base + 0x3000, (base + DEV_PT_OFF) | 0x7)     # PD[0] of 3 GiB -> a page table
    struct.pack_into("<Q", mem, base + DEV_PT_OFF, MMIO | 0x7)               # PT[0]: the register page
    _system_area(mem, base)
    for seg in image.segments:
        mem[base + seg.vaddr:base + seg.vaddr + len(seg.data)] = seg.data


#: The system area: its offsets in the region, and its virtual address (supervisor-only).
SYS_VIRT = MMIO + PAGE_2M
GDT_OFF, TSS_OFF, IDT_OFF, STUB_OFF, COMMON_OFF, FAULT_STACK_TOP = 0x8000, 0x8100, 0x9000, 0xA000, 0xA200, 0xC000
VECTORS = 32                    # the CPU's exceptions; anything else is refused by the IDT's limit (#GP)
ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})     # the vectors that push an error code
KERNEL_CS, USER_CS = 0x08, 0x2B


def _gdt() -> bytes:
    """null, kernel code (0x08), kernel data (0x10), the TSS (0x18, two entries),
    user code (0x28; 0x2B at CPL 3).  The user data selector 0x23 the state loads
    is never reloaded from here (no IRET, no SYSRET), so the TSS may own entry 4."""
    tss, lim = SYS_VIRT + TSS_OFF, 0x67
    tss_lo = lim & 0xFFFF | (tss & 0xFFFFFF) << 16 | 0x8B << 40 | (tss >> 24 & 0xFF) << 56
    return struct.pack("<7Q", 0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF, tss_lo, tss >> 32, 0x00AFFA000000FFFF, 0)


def _idt() -> bytes:
    """An interrupt gate (DPL 0, kernel code) per exception, to its stub."""
    out = b""
    for v in range(VECTORS):
        h = SYS_VIRT + STUB_OFF + 16 * v
        out += struct.pack("<QQ", h & 0xFFFF | KERNEL_CS << 16 | 0x8E << 40 | (h >> 16 & 0xFFFF) << 48, h >> 32)
    return out


def _handlers() -> bytes:
    """Machine code, instruction by instruction.  Stub v (16 bytes): push a zero
    error code where the CPU pushes none (6A 00), push v (6A v), jmp common (E9
    rel32), int3 padding.  Common: mov %cr2,%rax (0F 20 D0); push %rax (50);
    mov 8(%rsp),%eax (8B 44 24 08: the vector); movabs $FAULT,%rdx (48 BA imm64);
    mov %eax,(%rdx) (89 02: exits to the VMM); jmp . (EB FE: never resumed).
    The frame, from the top of the fault stack down: SS, RSP, RFLAGS, CS, RIP,
    error code, vector, CR2."""
    stubs = b""
    for v in range(VECTORS):
        code = (b"" if v in ERROR_CODE else b"\x6a\x00") + bytes((0x6A, v))
        at = STUB_OFF + 16 * v + len(code) + 5
        code += b"\xe9" + struct.pack("<i", COMMON_OFF - at)
        stubs += code.ljust(16, b"\xcc")
    common = (b"\x0f\x20\xd0" b"\x50" b"\x8b\x44\x24\x08" b"\x48\xba" + struct.pack("<Q", MMIO + lib.VSW_REG_FAULT)
              + b"\x89\x02" b"\xeb\xfe")
    return stubs.ljust(COMMON_OFF - STUB_OFF, b"\xcc") + common


def _system_area(mem: memoryview, base: int) -> None:
    struct.pack_into("<Q", mem, base + 0x3008, base | 0x83)                  # SYS_VIRT: supervisor 2 MiB page
    gdt, idt, code = _gdt(), _idt(), _handlers()
    mem[base + GDT_OFF:base + GDT_OFF + len(gdt)] = gdt
    struct.pack_into("<IQ", mem, base + TSS_OFF, 0, SYS_VIRT + FAULT_STACK_TOP)   # RSP0
    struct.pack_into("<H", mem, base + TSS_OFF + 102, 104)                         # no I/O bitmap
    mem[base + IDT_OFF:base + IDT_OFF + len(idt)] = idt
    mem[base + STUB_OFF:base + STUB_OFF + len(code)] = code


def fault_frame(memory: object, base: int) -> dict[str, int]:
    """What the exception handlers of the guest at ``base`` recorded: vector,
    error_code, rip, cs, rflags, rsp, cr2."""
    mem = memoryview(memory)  # type: ignore[arg-type]
    cr2, vector, error_code, rip, cs, rflags, rsp, _ss = struct.unpack_from("<8Q", mem, base + FAULT_STACK_TOP - 64)
    return {"vector": vector, "error_code": error_code, "rip": rip, "cs": cs, "rflags": rflags, "rsp": rsp,
            "cr2": cr2}


def _state(values: dict[str, int]) -> bytes:
    """A register file in 64-bit mode at CPL 3 with the given registers set."""
    lay = Layout.get("x86_64")
    raw = bytearray(lay.reset_state())
    f = lay.fields

    def put(name: str, value: int) -> None:
        fld = f[name]
        raw[fld.offset:fld.offset + fld.size] = value.to_bytes(fld.size, "little")

    base = {"rflags": 0x2, "cr0": 0x80050033, "cr4": CR4, "efer": 0x500, "fcw": 0x37F, "mxcsr": 0x1F80,
            "xstate_bv": 0x3, "xcr0": 0x3, "dr6": 0xFFFF0FF0, "dr7": 0x400, "msr.pat": 0x0007040600070406}
    for name, value in {**base, **values}.items():
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


def initial_state(base: int, rounds: int, seed: int, xcr0: int = 0x3, cr4: int = CR4) -> bytes:
    """A built-in program's entry: rdi = rounds, rsi = seed, its own CR3."""
    return _state({"rip": CODE, "rsp": STACK_TOP, "rdi": rounds, "rsi": seed or 1, "cr3": base, "xcr0": xcr0,
                   "cr4": cr4})


def image_state(base: int, size: int, image: GuestImage, xcr0: int = 0x3, cr4: int = CR4) -> bytes:
    """An ELF guest's entry (crt0's _start): rdi = the size of its address space,
    the stack at its top, its own CR3."""
    return _state({"rip": image.entry, "rsp": size, "rdi": size, "cr3": base, "xcr0": xcr0, "cr4": cr4,
                   "gdt.base": SYS_VIRT + GDT_OFF, "gdt.limit": 7 * 8 - 1, "idt.base": SYS_VIRT + IDT_OFF,
                   "idt.limit": VECTORS * 16 - 1, "tr.base": SYS_VIRT + TSS_OFF})
