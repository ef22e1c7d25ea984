"""Builders of C-model rigs: the invention's hardware around one PCPU, plus the
prior art's MEM path, with the knobs tests turn (burst size, thresholds,
capacity, memory-bus load).  Tests get them through conftest's fixtures; only a
hypothesis state machine, which takes no fixtures, imports this module."""
from __future__ import annotations

from dataclasses import dataclass

import pyvswitch.hw as hw

LAYOUTS = ["x86_64", "aarch64"]


@dataclass
class Rig:
    """The invention's hardware around one PCPU, plus the prior art's MEM path."""

    layout: hw.Layout
    pcpu: hw.Pcpu
    store: hw.Store
    mem: hw.Store
    sbus: hw.Bus
    mbus: hw.Bus
    mover: hw.Path
    memory: hw.Path

    def slot(self, owner: int, path: "hw.Path | None" = None) -> hw.Slot:
        return (path or self.mover).store.alloc(owner)


def make_rig(layout: str = "x86_64", max_burst: int = 8192, threshold: int = 64, capacity: int = 1 << 20,
             utilisation: float = 0.0) -> Rig:
    lay = hw.Layout.get(layout)
    store, mem = hw.Store(lay, capacity), hw.Store(lay, capacity)
    sbus = hw.Bus(hw.BusParams.of("storage"))
    mbus = hw.Bus(hw.BusParams.of("memory", {"utilisation": utilisation, "seed": 7}))
    mover = hw.Path.mover(store, sbus, hw.MoverParams(max_burst, threshold, threshold))
    mover.set_baseline(mbus)
    memory = hw.Path.memory(mem, mbus)
    return Rig(lay, hw.Pcpu(lay), store, mem, sbus, mbus, mover, memory)
