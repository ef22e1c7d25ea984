"""The explicit platform (tests/platforms/explicit.toml) resized: the API tests that
fill the store, count PCPUs or run out of MEM build their platforms here."""
from __future__ import annotations

from locations import EXPLICIT

import pyvswitch

#: bytes of one x86_64 context slot, as the store lays it out
SLOT_BYTES = pyvswitch.hw.Store("x86_64", 1 << 20).slot_bytes


def sized_platform(slots: int, npcpus: int, homes: int | None = None) -> str:
    """The explicit platform with a store of ``slots`` contexts, ``npcpus`` PCPUs and,
    when given, MEM for ``homes`` contexts (else MEM as the file has it)."""
    text = EXPLICIT.read_text().replace("capacity_bytes = 8388608", f"capacity_bytes = {slots * SLOT_BYTES + 100}")
    if homes is not None:
        text = text.replace("capacity_bytes = 67108864", f"capacity_bytes = {homes * SLOT_BYTES + 100}")
    extra = "".join(f'\n[[device]]\nname = "pcpu{i}"\ncompatible = ["vsw,pcpu"]\n' for i in range(1, npcpus))
    return text.replace('compatible = ["vsw,pcpu"]', 'compatible = ["vsw,pcpu"]' + extra, 1)
