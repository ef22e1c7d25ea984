"""The replay ledger of the failure-path tests (tests/unit/api/test_api_failpaths.py and
their long forms in tests/stress/test_api_failpaths_long.py): the steps each machine
ran, from the calls that succeeded, checked against ``pyvswitch.replay``; and issue
21's scenario of a move to the fast path that cannot place every context."""
from __future__ import annotations

import functools
import threading
from collections import Counter

import pytest

import pyvswitch
from pyvswitch import FallbackWarning

from sized_platform import sized_platform

KINDS = ("pcpu", "mem", "memory-bus", "storage-bus", "context-store", "mover")


def platform(slots: int = 8, npcpus: int = 4, homes: int = 64) -> str:
    """The explicit platform with ``npcpus`` PCPUs and a store of ``slots`` contexts."""
    return sized_platform(slots, npcpus, homes)


@functools.lru_cache(maxsize=None)
def replay(steps: int) -> bytes:
    return pyvswitch.replay(steps)


class Ledger:
    """The steps each machine ran, from the calls that succeeded."""

    def __init__(self, hv: pyvswitch.Hypervisor) -> None:
        self.hv = hv
        self.steps: Counter[str] = Counter()
        self.lock = threading.Lock()

    def run(self, steps: int, pcpu: int) -> None:
        on = self.hv.running(pcpu)
        self.hv.run(steps, pcpu=pcpu)
        with self.lock:
            self.steps[on.name] += steps

    def check(self) -> None:
        for m in self.hv.machines:
            assert m.state() == replay(self.steps[m.name]), f"{m.name}: not replay({self.steps[m.name]})"


def failed_move(hv: pyvswitch.Hypervisor) -> tuple[Ledger, list[pyvswitch.Machine]]:
    """Issue 21's scenario: pin 5, unbind the mover, run 3 others on PCPUs 1-3 and
    bind the mover: 9 contexts must be in an 8-context store."""
    led = Ledger(hv)
    for i in range(5):
        hv.cache.pin(hv.create_vm(f"p{i}"))
    others = [hv.create_vm(f"o{i}") for i in range(3)]
    hv.unbind("mover")
    assert hv.path == "memory"
    for i, m in enumerate(others, 1):
        hv.switch_context(None, m, pcpu=i)
        led.run(7, i)
    led.run(3, 0)
    with pytest.warns(FallbackWarning, match=r"ENOSPC.*9 contexts must be in the store \(6 pinned, 3 more running\)"
                                             r" and it holds 8.*memory path"):
        assert hv.bind("mover") == ["mover0"]
    return led, others
