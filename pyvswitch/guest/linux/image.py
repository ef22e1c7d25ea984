"""An unmodified static Linux x86-64 program as a guest: its ELF image (static or
static-PIE; a dynamically linked one is refused, naming its interpreter) and the
stack the kernel would give it (argc, argv, envp, auxv)."""
from __future__ import annotations

import errno
import io
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from ...hw import VswError
from ..image import LOAD_FLOOR, GuestImage, Segment

PAGE = 4096
#: where a static-PIE program is placed (its first byte); above the unmapped 2 MiB
PIE_BIAS = 4 << 20

# auxv keys (include/uapi/linux/auxvec.h)
AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN = 23, 25, 26, 31

#: CPUID.1:EDX bit names as /proc/cpuinfo spells them (AT_HWCAP on x86-64 is that word)
_EDX1 = ("fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr", "pge", "mca",
         "cmov", "pat", "pse36", "pn", "clflush", "", "dts", "acpi", "mmx", "fxsr", "sse", "sse2", "ss", "ht", "tm",
         "ia64", "pbe")


def host_hwcap() -> int:
    """AT_HWCAP as the host's kernel gives it (CPUID.1:EDX), read from /proc/cpuinfo
    (the guest runs on the host's CPU and reads the same CPUID); 0 where it is unreadable."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return sum(1 << i for i, n in enumerate(_EDX1) if n and n in have)
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class LinuxImage:
    """A static x86-64 Linux executable, placed: segments at their final addresses."""

    name: str
    entry: int
    segments: tuple[Segment, ...]
    phdr: int               # where the program headers are, in the guest (AT_PHDR)
    phnum: int
    phent: int
    pie: bool

    @property
    def end(self) -> int:
        return max(s.vaddr + s.memsz for s in self.segments)

    def guest_image(self) -> GuestImage:
        """The loadable part, as the freestanding loader takes it."""
        return GuestImage(self.name, self.entry, self.segments)

    @classmethod
    def read(cls, source: "str | os.PathLike[str] | bytes", name: str | None = None) -> "LinuxImage":
        """From a path or the bytes of an ELF file; ENOEXEC says what is wrong with one."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data, label = bytes(source), name or "<bytes>"
        else:
            label = name or os.fspath(source)
            try:
                with open(source, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise VswError(exc.errno or errno.EIO, f"Linux program {label}: {exc.strerror}") from None
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64":
                raise VswError(errno.ENOEXEC, f"Linux program {label}: {elf.elfclass}-bit {elf['e_machine']}, "
                                              "expected a 64-bit x86-64 executable")
            kind = elf["e_type"]
            if kind not in ("ET_EXEC", "ET_DYN"):
                raise VswError(errno.ENOEXEC, f"Linux program {label}: type {kind}, expected an executable")
            loads = []
            phdr_seg = None
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interp = seg.data().rstrip(b"\0").decode(errors="replace")
                    raise VswError(errno.ENOEXEC, f"Linux program {label}: dynamically linked (interpreter "
                                                  f"{interp}); only static or static-PIE programs run as guests")
                if seg["p_type"] == "PT_PHDR":
                    phdr_seg = seg["p_vaddr"]
                if seg["p_type"] == "PT_LOAD" and seg["p_memsz"] > 0:
                    if seg["p_filesz"] > seg["p_memsz"]:
                        raise VswError(errno.ENOEXEC, f"Linux program {label}: a segment with more file bytes "
                                                      "than memory bytes")
                    loads.append(seg)
            if not loads:
                raise VswError(errno.ENOEXEC, f"Linux program {label}: nothing to load (no PT_LOAD segment)")
            pie = kind == "ET_DYN"
            low = min(s["p_vaddr"] for s in loads) & ~(PAGE - 1)
            bias = PIE_BIAS - low if pie else 0
            segs = []
            for s in loads:
                vaddr = s["p_vaddr"] + bias
                if vaddr < LOAD_FLOOR:
                    raise VswError(errno.ENOEXEC, f"Linux program {label}: a segment at {vaddr:#x}, below "
                                                  f"{LOAD_FLOOR:#x} where a guest's memory starts")
                segs.append(Segment(vaddr, s.data(), s["p_memsz"]))
            if phdr_seg is not None:
                phdr = phdr_seg + bias
            else:
                first = next((s for s in loads if s["p_offset"] == 0), None)
                if first is None:
                    raise VswError(errno.ENOEXEC, f"Linux program {label}: its program headers are not loaded "
                                                  "(no PT_PHDR, no segment from offset 0)")
                phdr = first["p_vaddr"] + bias + elf["e_phoff"]
            return cls(os.path.basename(label), elf["e_entry"] + bias, tuple(segs), phdr, elf["e_phnum"],
                       elf["e_phentsize"], pie)
        except VswError:
            raise
        except Exception as exc:    # noqa: BLE001 - hostile bytes: pyelftools raises many kinds
            raise VswError(errno.ENOEXEC, f"Linux program {label}: not a valid ELF file "
                                          f"({type(exc).__name__}: {exc})") from None


def build_stack(top: int, image: LinuxImage, argv: Sequence[bytes], envp: Sequence[bytes], random16: bytes,
                ids: tuple[int, int, int, int] = (0, 0, 0, 0), hwcap: int = 0,
                execfn: bytes = b"") -> tuple[int, bytes]:
    """The initial stack of a process whose stack ends at ``top``: (rsp, the bytes
    from rsp up to ``top``), laid out as Linux's create_elf_tables does - argc,
    argv pointers, NULL, envp pointers, NULL, auxv pairs, AT_NULL, then the
    strings, AT_RANDOM's 16 bytes and the platform name."""
    if len(random16) != 16:
        raise VswError(errno.EINVAL, "AT_RANDOM takes 16 bytes")
    blob = bytearray()

    def put(b: bytes) -> int:
        blob.extend(b)
        return len(blob) - len(b)            # offset from the start of the string area

    offs_argv = [put(a + b"\0") for a in argv]
    offs_env = [put(e + b"\0") for e in envp]
    off_exec = put((execfn or (argv[0] if argv else b"")) + b"\0")
    off_plat = put(b"x86_64\0")
    off_rand = put(random16)
    strings_at = (top - len(blob) - 16) & ~0xF
    uid, euid, gid, egid = ids
    aux = [(AT_PHDR, image.phdr), (AT_PHENT, image.phent), (AT_PHNUM, image.phnum), (AT_PAGESZ, PAGE),
           (AT_BASE, 0), (AT_FLAGS, 0), (AT_ENTRY, image.entry), (AT_UID, uid), (AT_EUID, euid), (AT_GID, gid),
           (AT_EGID, egid), (AT_SECURE, 0), (AT_HWCAP, hwcap), (AT_HWCAP2, 0), (AT_CLKTCK, 100),
           (AT_PLATFORM, strings_at + off_plat), (AT_RANDOM, strings_at + off_rand),
           (AT_EXECFN, strings_at + off_exec), (AT_NULL, 0)]
    words = [len(argv), *(strings_at + o for o in offs_argv), 0, *(strings_at + o for o in offs_env), 0]
    for k, v in aux:
        words += [k, v]
    size = 8 * len(words)
    rsp = (strings_at - size) & ~0xF
    table = struct.pack(f"<{len(words)}Q", *words)
    out = bytearray(top - rsp)
    out[0:size] = table
    out[strings_at - rsp:strings_at - rsp + len(blob)] = blob
    return rsp, bytes(out)
