"""A context store as the textbook policies define it, in plain Python: what the
C cache must equal switch by switch (hit or miss, victim, write-back bytes,
fetched bytes, the slot each context lands in).

Written from the definitions, not from csrc/cache.c:

- the store has ``slots`` slots; machines made while a slot is free are placed
  in the lowest free slot (never loaded, nothing of them at home: all changed);
- a load of a context not in the store (a miss) takes a free slot, else evicts a
  victim among the contexts in the store that are neither pinned nor running on
  any PCPU (the one being switched away from still runs while ``to`` is claimed);
  the victim's changed groups go home first; the fetched context is clean;
- LRU: the victim is the least recently loaded, in the order of loads; contexts
  never loaded count as least recent, the lowest slot first;
- LRU by model time ("lru-time"): least recent by the loading PCPU's clock, ties
  in load order, never loaded first;
- CLOCK: a hand over the slots from slot 0; a load sets the context's reference
  bit; a context that cannot be evicted is passed over untouched; a set bit is
  cleared and the hand moves on; the first clear bit is the victim, and the hand
  stops just past it;
- Belady: the context whose next load in the planned sequence is furthest away
  (never again: furthest of all), ties least recently loaded as LRU; a load off
  the plan abandons it (every next use unknown from then on);
- after the claim, the switched-away context's saved groups are changed.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Step:
    """What one switch did to the store."""

    result: str                 # "hit" or "miss"
    victim: int | None          # the machine evicted
    written_back: int           # bytes of the victim's changed groups
    fetched: int


class ReferenceStore:
    """A store of ``slots`` contexts with ``policy`` over the machines ``owners`` (made in that order)."""

    def __init__(self, policy: str, slots: int, owners: list[int], group_sizes: list[int],
                 pinned: tuple[int, ...] = (), cold: bool = False) -> None:
        self.policy, self.n = policy, slots
        self.sizes = group_sizes
        self.all = (1 << len(group_sizes)) - 1
        self.at: list[int | None] = [None] * slots
        self.slot: dict[int, int] = {}
        self.changed: dict[int, int] = {}
        self.seq: dict[int, int] = {o: 0 for o in owners}
        self.time: dict[int, float] = {o: 0.0 for o in owners}
        self.ref: dict[int, int] = {o: 0 for o in owners}
        self.pinned = set(pinned)
        self.running: dict[int, int] = {}           # pcpu -> machine
        self.loads = 0
        self.hand = 0
        self.plan: list[int] | None = None
        self.pos = 0
        for o in [] if cold else owners:           # cold: the store starts empty, every machine at home
            if None in self.at:
                s = self.at.index(None)
                self.at[s], self.slot[o], self.changed[o] = o, s, self.all

    def bytes(self, mask: int) -> int:
        return sum(size for g, size in enumerate(self.sizes) if mask >> g & 1)

    def set_plan(self, loads: list[int]) -> None:
        self.plan, self.pos = list(loads), 0

    def where(self) -> dict[int, int]:
        """machine -> slot, for every machine in the store."""
        return dict(self.slot)

    def _evictable(self, m: int | None) -> bool:
        return m is not None and m not in self.pinned and m not in self.running.values()

    def _older(self, a: int, b: int) -> bool:
        if self.policy == "lru-time" and self.seq[a] and self.seq[b] and self.time[a] != self.time[b]:
            return self.time[a] < self.time[b]
        return self.seq[a] < self.seq[b]

    def _next_use(self, m: int) -> float:
        if self.plan is None:
            return float("inf")
        try:
            return self.plan.index(m, self.pos)
        except ValueError:
            return float("inf")

    def _victim(self) -> int:
        if self.policy == "clock":
            for _ in range(2 * self.n + 1):
                m = self.at[self.hand]
                self.hand = (self.hand + 1) % self.n
                if not self._evictable(m):
                    continue
                if not self.ref[m]:
                    return m
                self.ref[m] = 0
            raise AssertionError("no victim")
        best = None
        for m in self.at:                           # slot order: the lowest slot wins a tie
            if not self._evictable(m):
                continue
            if best is None:
                best = m
            elif self.policy == "belady" and self._next_use(m) != self._next_use(best):
                best = m if self._next_use(m) > self._next_use(best) else best
            elif self._older(m, best):
                best = m
        assert best is not None, "no victim"
        return best

    def switch(self, pcpu: int, to: int | None, save_mask: int = 0, now: float = 0.0) -> Step:
        """PCPU ``pcpu`` switches from what it runs to ``to`` (None: idle), saving ``save_mask``."""
        frm = self.running.get(pcpu)
        step = Step("hit", None, 0, 0)
        if to is not None:
            if to not in self.slot:
                step.result, step.fetched = "miss", self.bytes(self.all)
                if None in self.at:
                    s = self.at.index(None)
                else:
                    v = self._victim()
                    step.victim, step.written_back = v, self.bytes(self.changed[v])
                    s = self.slot.pop(v)
                    del self.changed[v]
                self.at[s], self.slot[to], self.changed[to] = to, s, 0
            self.loads += 1
            self.seq[to], self.time[to], self.ref[to] = self.loads, now, 1
            if self.plan is not None:
                if self.pos < len(self.plan) and self.plan[self.pos] == to:
                    self.pos += 1
                else:
                    self.plan = None
        if frm is not None and save_mask:
            self.changed[frm] |= save_mask
        if to is None:
            self.running.pop(pcpu, None)
        else:
            self.running[pcpu] = to
        return step
