"""The same switch in plain Python - kept only to show, in the benchmark, what
the C core saves a hypervisor prototype.  Same layout, same double-banked
slots, same dirty-group saves and per-group integrity checks, same atomicity
(commit after the load is verified); no cost model."""
from __future__ import annotations

import errno

from .hw import Layout, VswError

KEY = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1


def _check(data: memoryview, base_word: int) -> int:
    """A keyed additive check over 64-bit words (one lane; the C core folds 8)."""
    words = data.cast("Q")
    total = 0
    for i, w in enumerate(words):
        total = (total + (w ^ (((base_word + i) * KEY) & MASK64))) & MASK64
    return total


class PySlot:
    def __init__(self, layout: Layout, owner: int) -> None:
        self.owner = owner
        self.banks = [bytearray(layout.size), bytearray(layout.size)]
        self.bank_of = [0] * len(layout.groups)
        self.checks = [[_check(memoryview(self.banks[b])[g.offset:g.offset + g.size], g.offset // 8)
                        for g in layout.groups] for b in (0, 1)]


class PyPcpu:
    def __init__(self, layout: "str | Layout") -> None:
        self.layout = Layout.get(layout)
        self.regs = bytearray(self.layout.size)
        self.owner: PySlot | None = None
        self.dirty = 0

    def switch(self, frm: PySlot | None, to: PySlot) -> int:
        if frm is not self.owner:
            raise VswError(errno.ESRCH, "frm is not running here")
        groups = self.layout.groups
        regs = memoryview(self.regs)
        pending = []
        if frm is not None:
            for g in groups:
                if self.dirty & g.mask:
                    shadow = 1 - frm.bank_of[g.index]
                    frm.banks[shadow][g.offset:g.offset + g.size] = regs[g.offset:g.offset + g.size]
                    pending.append((g, shadow, _check(regs[g.offset:g.offset + g.size], g.offset // 8)))
        before = bytes(self.regs)
        for g in groups:
            bank = to.bank_of[g.index]
            src = memoryview(to.banks[bank])[g.offset:g.offset + g.size]
            if _check(src, g.offset // 8) != to.checks[bank][g.index]:
                self.regs[:] = before
                raise VswError(errno.EBADMSG, f"slot of {to.owner}: group {g.name} is corrupt")
            regs[g.offset:g.offset + g.size] = src
        if frm is not None:
            for g, shadow, check in pending:
                frm.checks[shadow][g.index] = check
                frm.bank_of[g.index] = shadow
        self.owner, self.dirty = to, 0
        return len(pending)
