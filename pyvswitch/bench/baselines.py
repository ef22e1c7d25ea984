"""The same switch in plain Python, as fast as plain Python does it - the
baseline that shows what the C core saves a hypervisor prototype.

Same guarantees: double-banked slots, an integrity check on every load, all
or nothing (the save commits only after the load is verified); no cost model.
Nothing is done word by word or group by group: the context moves as one
slice copy and is checked with one ``zlib.crc32``, both running in C inside
CPython.  Per-group saves of only the dirty groups (as the C core does) cost
more in Python - a dozen slices and checks at ~100 ns each - than copying the
clean bytes too, so the fastest plain version saves the whole context when
anything is dirty.
"""
from __future__ import annotations

import errno
from zlib import crc32

from ..hw import Layout, VswError


class PySlot:
    """A machine's context: two banks, the current one and each bank's CRC."""

    def __init__(self, layout: Layout, owner: int) -> None:
        self.owner = owner
        self.banks = [bytearray(layout.size), bytearray(layout.size)]
        self.current = 0
        self.checks = [crc32(self.banks[0]), crc32(self.banks[1])]


class PyPcpu:
    """A register file and the machine it runs; ``switch`` is all or nothing."""

    def __init__(self, layout: "str | Layout") -> None:
        self.layout = Layout.get(layout)
        self.regs = bytearray(self.layout.size)
        self.owner: PySlot | None = None
        self.dirty = 0

    def switch(self, frm: PySlot | None, to: PySlot) -> int:
        """Saves ``frm`` (when anything is dirty) into its other bank, loads ``to``
        after checking it, then commits the save; returns the bytes saved."""
        if frm is not self.owner:
            raise VswError(errno.ESRCH, "frm is not running here")
        regs = self.regs
        saved = frm is not None and self.dirty != 0
        if saved:
            shadow = 1 - frm.current             # type: ignore[union-attr]
            frm.banks[shadow][:] = regs          # type: ignore[union-attr]
            check = crc32(regs)
        bank = to.banks[to.current]
        if crc32(bank) != to.checks[to.current]:
            raise VswError(errno.EBADMSG, f"slot of {to.owner} is corrupt")
        regs[:] = bank                          # verified: only now does anything change
        if saved:
            frm.checks[shadow] = check           # type: ignore[union-attr]
            frm.current = shadow                 # type: ignore[union-attr]
        self.owner, self.dirty = to, 0
        return len(regs) if saved else 0
