"""A guest's ELF image, read with pyelftools: what to load where, and where to start."""
from __future__ import annotations

import errno
import io
import os
from dataclasses import dataclass
from typing import Any

from elftools.elf.elffile import ELFFile

from ..hw import VswError

#: The first 2 MiB of a guest's address space stay unmapped (null pointers fault).
LOAD_FLOOR = 2 << 20


@dataclass(frozen=True)
class Segment:
    vaddr: int
    data: bytes
    memsz: int                  # data, then zeros up to memsz (.bss)


@dataclass(frozen=True)
class GuestImage:
    """A static x86-64 executable, its loadable segments and entry point."""

    name: str
    entry: int
    segments: tuple[Segment, ...]
    #: a guest built with ``--libc musl`` (a ``.vsw_linux`` section): a static Linux
    #: program (its ``pyvswitch.guest.linux.LinuxImage``), loaded with a Linux stack
    linux: Any = None

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
            label = name or os.fspath(source)
            try:
                with open(source, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise VswError(exc.errno or errno.EIO, f"guest image {label}: {exc.strerror}") from None
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64":
                raise VswError(errno.ENOEXEC, f"guest image {label}: {elf.elfclass}-bit {elf['e_machine']}, "
                                              "expected a 64-bit x86-64 executable")
            if elf["e_type"] != "ET_EXEC":
                raise VswError(errno.ENOEXEC, f"guest image {label}: type {elf['e_type']}, expected a static "
                                              "executable (ET_EXEC; build it with `pyvswitch guest build`)")
            segs = []
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    raise VswError(errno.ENOEXEC, f"guest image {label}: dynamically linked; a guest has no "
                                                  "loader (build it with `pyvswitch guest build`)")
                if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                    continue
                if seg["p_vaddr"] < LOAD_FLOOR:
                    raise VswError(errno.ENOEXEC, f"guest image {label}: a segment at {seg['p_vaddr']:#x}, below "
                                                  f"{LOAD_FLOOR:#x} where guest images start (vsw_guest.ld)")
                segs.append(Segment(seg["p_vaddr"], seg.data(), seg["p_memsz"]))
            entry = elf["e_entry"]
            is_linux = elf.get_section_by_name(".vsw_linux") is not None
        except VswError:
            raise
        except Exception as exc:    # noqa: BLE001 - hostile bytes: pyelftools raises many kinds
            raise VswError(errno.ENOEXEC, f"guest image {label}: not a valid ELF file "
                                          f"({type(exc).__name__}: {exc})") from None
        if not segs:
            raise VswError(errno.ENOEXEC, f"guest image {label}: nothing to load (no PT_LOAD segment)")
        linux = None
        if is_linux:
            from .linux.image import LinuxImage
            linux = LinuxImage.read(data, os.path.basename(label))
        return cls(os.path.basename(label), entry, tuple(segs), linux)
