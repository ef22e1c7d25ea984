"""The guest memory layout: where a guest's code, data and device registers
are, how large its address space may be, and ``Regions``, which divides one
vCPU's guest-physical memory between machines (a 2 MiB-aligned region each).
The page tables that make a region a machine's address space are
``pyvswitch.guest.loader``'s."""
from __future__ import annotations

import errno
import threading
from typing import Any

from ..errors import DEFAULT_GUEST_MEM_MIB, MAX_GUEST_MEM_MIB
from ..hw import VswError
from ..hw.kvm import MMIO     # the device registers: guest-physical (and, for ELF guests, virtual)

PAGE_2M = 2 << 20
CODE, BUFFER, STACK_TOP = 0x10000, 0x100000, 0x1FF000     # a built-in program's, in its 2 MiB
DEFAULT_MEM = DEFAULT_GUEST_MEM_MIB << 20  # an ELF guest's address space unless asked otherwise (pyvswitch.errors)
MAX_MEM = MAX_GUEST_MEM_MIB << 20  # a guest's address space at most (pyvswitch.errors)


class Regions:
    """Hands out 2 MiB-aligned regions of a vCPU's guest memory, one per machine, and
    takes them back (``release``) when the machine goes: free space is kept sorted
    and merged with its neighbours, so any number of create/destroy cycles fit in
    the memory of the machines alive at once.  Thread-safe."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._by_machine: dict[int, tuple[int, int]] = {}
        self._free: list[tuple[int, int]] = [(0, memory_bytes)] if memory_bytes > 0 else []   # (base, size), sorted

    @staticmethod
    def _merged(free: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for b, n in sorted(free):
            if out and out[-1][0] + out[-1][1] == b:
                out[-1] = (out[-1][0], out[-1][1] + n)
            else:
                out.append((b, n))
        return out

    def get(self, machine_id: int, size: int) -> int:
        """The base of machine ``machine_id``'s region of ``size`` bytes (its own region
        again if it has one of that size; else a new one, the old one given back)."""
        if not isinstance(size, int) or isinstance(size, bool) or size < PAGE_2M or size % PAGE_2M or size > MAX_MEM:
            got = f"{size >> 20} MiB" if isinstance(size, int) and not isinstance(size, bool) and \
                size % (1 << 20) == 0 else repr(size)
            raise VswError(errno.EINVAL, f"guest memory is a multiple of 2 MiB from 2 MiB to {MAX_MEM >> 20} MiB, "
                                         f"got {got}")
        with self._lock:
            have = self._by_machine.get(machine_id)
            if have is not None and have[1] == size:
                return have[0]
            free = self._merged(self._free + ([have] if have is not None else []))
            at = next((i for i, (_, n) in enumerate(free) if n >= size), None)
            if at is None:
                used = sum(n for _, n in self._by_machine.values())
                raise VswError(errno.ENOSPC, f"guest memory is full: {self.memory_bytes >> 20} MiB, "
                                             f"{used >> 20} MiB given out, {size >> 20} MiB more asked "
                                             "(destroy a machine, or raise the platform's guest_memory_bytes)")
            base, n = free[at]
            free[at:at + 1] = [(base + size, n - size)] if n > size else []
            self._free = free
            self._by_machine[machine_id] = (base, size)
            return base

    def release(self, machine_id: int) -> "tuple[int, int] | None":
        """Gives machine ``machine_id``'s region back; (base, size) it had, or None."""
        with self._lock:
            have = self._by_machine.pop(machine_id, None)
            if have is not None:
                self._free = self._merged([*self._free, have])
            return have

    @property
    def in_use(self) -> int:
        """Bytes given out to machines."""
        with self._lock:
            return sum(n for _, n in self._by_machine.values())


def regions_of(vcpu: Any) -> Regions:
    """The ``Regions`` dividing ``vcpu``'s guest memory between machines (the
    vsw,pcpu-kvm driver gives its vCPU one): ENODEV for a vCPU nobody divides."""
    regions = getattr(vcpu, "regions", None)
    if regions is None:
        raise VswError(errno.ENODEV, "this vCPU's guest memory is not divided between machines: create it with "
                                     "regions=pyvswitch.guest.layout.Regions(mem_bytes), as the vsw,pcpu-kvm driver does")
    return regions
