"""Shared fixtures: a small machine of C models per layout, and hypothesis profiles."""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

import pyvswitch.hw as hw

# C-backed tests: timing varies with the machine's load, so no deadline.
settings.register_profile("ci", parent=settings.get_profile("ci"), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

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
    sbus = hw.Bus(kind="storage", width_bytes=64, clock_mhz=2000, setup_cycles=4)
    mbus = hw.Bus(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True,
                  utilisation=utilisation, seed=7)
    mover = hw.Path.mover(store, sbus, hw.MoverParams(max_burst, threshold, threshold))
    mover.set_baseline(mbus)
    memory = hw.Path.memory(mem, mbus)
    return Rig(lay, hw.Pcpu(lay), store, mem, sbus, mbus, mover, memory)


@pytest.fixture(params=LAYOUTS)
def rig(request: pytest.FixtureRequest) -> Rig:
    return make_rig(request.param)


@pytest.fixture
def x86() -> Rig:
    return make_rig("x86_64")
