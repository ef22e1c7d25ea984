"""A guest's ELF image, read with pyelftools: what to load where, and where to start.

Every ``PT_LOAD`` segment is checked before anything is loaded: its file bytes
lie inside the file and are no more than its memory size, it starts at or above
``LOAD_FLOOR``, it overlaps no other segment and no address wraps.  A
``GuestImage`` built by hand is held to the same rules (``__post_init__``), and
``pyvswitch.guest.loader.load_image`` checks every segment against the guest's
region before it writes a byte.  A refusal is ``VswError(ENOEXEC)`` naming the
segment.
"""
from __future__ import annotations

import errno
import io
import os
from dataclasses import dataclass
from typing import Any

from elftools.elf.elffile import ELFFile

from ..errors import MAX_GUEST_IMAGE_BYTES, read_regular_file
from ..hw import VswError

#: The first 2 MiB of a guest's address space stay unmapped (null pointers fault).
LOAD_FLOOR = 2 << 20
#: Where a guest's address space ends at most: the device registers start at 3 GiB.
LOAD_CEILING = 3 << 30


@dataclass(frozen=True)
class Segment:
    vaddr: int
    data: bytes
    memsz: int                  # data, then zeros up to memsz (.bss)

    def __repr__(self) -> str:
        return f"Segment(vaddr={self.vaddr:#x}, {len(self.data)} bytes of data, memsz={self.memsz:#x})" \
            if isinstance(self.vaddr, int) and isinstance(self.memsz, int) and isinstance(self.data, bytes) \
            else f"Segment({self.vaddr!r}, <{type(self.data).__name__}>, {self.memsz!r})"

    def describe(self, index: int) -> str:
        return f"segment {index} [{self.vaddr:#x}, {self.vaddr + self.memsz:#x})"


def _refuse(label: str, what: str) -> VswError:
    return VswError(errno.ENOEXEC, f"guest image {label}: {what}")


@dataclass(frozen=True)
class GuestImage:
    """A static x86-64 executable, its loadable segments and entry point."""

    name: str
    entry: int
    segments: tuple[Segment, ...]
    #: a guest built with ``--libc musl`` (a ``.vsw_linux`` section): a static Linux
    #: program (its ``pyvswitch.guest.linux.LinuxImage``), loaded with a Linux stack
    linux: Any = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """ENOEXEC, naming the segment, unless every segment is whole, at or above
        LOAD_FLOOR, below LOAD_CEILING and apart from every other one."""
        label = self.name
        if not isinstance(self.segments, tuple) or not self.segments:
            raise _refuse(label, "nothing to load (no PT_LOAD segment)")
        if not isinstance(self.entry, int) or isinstance(self.entry, bool):
            raise _refuse(label, f"entry point {self.entry!r} is not an address")
        spans = []
        for i, s in enumerate(self.segments):
            if not isinstance(s, Segment) or not isinstance(s.data, bytes) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in (s.vaddr, s.memsz)):
                raise _refuse(label, f"segment {i} is not a Segment(vaddr: int, data: bytes, memsz: int)")
            if len(s.data) > s.memsz:
                raise _refuse(label, f"{s.describe(i)} has {len(s.data):#x} bytes of file data, more than its "
                                     f"memory size {s.memsz:#x} (p_filesz > p_memsz)")
            if s.memsz <= 0:
                raise _refuse(label, f"segment {i} at {s.vaddr:#x} is empty")
            if s.vaddr < LOAD_FLOOR:
                raise _refuse(label, f"{s.describe(i)} starts below {LOAD_FLOOR:#x}, where guest images start "
                                     "(vsw_guest.ld)")
            if s.vaddr + s.memsz > LOAD_CEILING:
                raise _refuse(label, f"{s.describe(i)} ends past {LOAD_CEILING:#x}, where the device registers are")
            spans.append((s.vaddr, s.vaddr + s.memsz, i))
        spans.sort()
        for (a0, a1, i), (b0, b1, j) in zip(spans, spans[1:]):
            if b0 < a1:
                raise _refuse(label, f"{self.segments[j].describe(j)} overlaps {self.segments[i].describe(i)}")
        if not any(s.vaddr <= self.entry < s.vaddr + s.memsz for s in self.segments):
            raise _refuse(label, f"entry point {self.entry:#x} is in no segment")

    @property
    def end(self) -> int:
        """The first address past every segment."""
        return max(s.vaddr + s.memsz for s in self.segments)

    @classmethod
    def read(cls, source: "str | os.PathLike[str] | bytes", name: str | None = None) -> "GuestImage":
        """From a path or the bytes of an ELF file; ENOEXEC says what is wrong with one."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data, label = bytes(source), name or "<bytes>"
        else:
            label = name or (os.fsdecode(source) if isinstance(source, (str, bytes, os.PathLike)) else repr(source))
            data = read_regular_file(source, "guest image", MAX_GUEST_IMAGE_BYTES)   # never /dev/zero, a FIFO
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64":
                raise _refuse(label, f"{elf.elfclass}-bit {elf['e_machine']}, expected a 64-bit x86-64 executable")
            if elf["e_type"] != "ET_EXEC":
                raise _refuse(label, f"type {elf['e_type']}, expected a static executable (ET_EXEC; build it "
                                     "with `pyvswitch guest build`)")
            segs = []
            for i, seg in enumerate(elf.iter_segments()):
                if seg["p_type"] == "PT_INTERP":
                    raise _refuse(label, "dynamically linked; a guest has no loader (build it with "
                                         "`pyvswitch guest build`)")
                if seg["p_type"] != "PT_LOAD":
                    continue
                off, filesz, memsz, vaddr = seg["p_offset"], seg["p_filesz"], seg["p_memsz"], seg["p_vaddr"]
                where = f"segment {i} (PT_LOAD at {vaddr:#x})"
                if filesz > memsz:
                    raise _refuse(label, f"{where} has p_filesz {filesz:#x} > p_memsz {memsz:#x}")
                if off + filesz > len(data):
                    raise _refuse(label, f"{where}: its data [{off:#x}, {off + filesz:#x}) runs past the end of "
                                         f"the {len(data):#x}-byte file (truncated?)")
                if memsz == 0:
                    continue
                segs.append(Segment(vaddr, data[off:off + filesz], memsz))
            entry = elf["e_entry"]
            is_linux = elf.get_section_by_name(".vsw_linux") is not None
        except VswError:
            raise
        except Exception as exc:    # noqa: BLE001 - hostile bytes: pyelftools raises many kinds
            raise _refuse(label, f"not a valid ELF file ({type(exc).__name__}: {exc})") from None
        linux = None
        if is_linux:
            from .linux.image import LinuxImage
            linux = LinuxImage.read(data, os.path.basename(label))
        return cls(os.path.basename(label), entry, tuple(segs), linux)
