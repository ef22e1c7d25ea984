"""The emulator half of the bench: what a hypervisor prototype pays per switch
(``timing``) and what plain Python would pay (``baselines``)."""
from __future__ import annotations

import statistics
import time
from typing import Any

from ..hw import Layout
from . import timing
from .baselines import PyPcpu, PySlot
from .progress import Progress


def _purepy_speed(layout: str, calls: int, rounds: int = 5) -> dict[str, Any]:
    """The plain-Python switch (all groups dirty, as the API rows it is compared with)."""
    lay = Layout.get(layout)
    p, a, b = PyPcpu(lay), PySlot(lay, 1), PySlot(lay, 2)
    p.switch(None, a)
    times = []
    for _ in range(rounds):
        t = time.perf_counter_ns()
        for _ in range(calls // 2):
            p.dirty = lay.all_groups
            p.switch(a, b)
            p.dirty = lay.all_groups
            p.switch(b, a)
        times.append((time.perf_counter_ns() - t) / (calls - calls % 2))
    return {"layout": layout, "switch_ns": statistics.median(times), "switch_ns_min": min(times),
            "switch_ns_max": max(times)}


def emulator(quick: bool, prog: Progress) -> dict[str, Any]:
    batch, batches = (500, 20) if quick else (2000, 60)
    out: dict[str, Any] = {"api": [], "c": [], "pure_python": [], "flat": []}
    for plat in ("reference", "aarch64"):
        prog.step(f"emulator: switch_context on {plat}")
        out["api"].append(timing.api_switch(plat, batch, batches, dirty="all"))
    for layout in ("x86_64", "aarch64"):
        prog.step(f"emulator: C switch loop, {layout}")
        out["c"].append(timing.c_switch(layout, 2, 20000 if quick else 200000, 3 if quick else 5))
        prog.step(f"emulator: plain Python, {layout}")
        out["pure_python"].append(_purepy_speed(layout, 100 if quick else 1000))
    for vms in (2, 100, 10000):
        prog.step(f"emulator: {vms} VMs")
        r = timing.api_switch("datacenter", batch, max(5, batches // 3), dirty="all", vms=vms)
        r["c_round_robin"] = timing.c_switch("x86_64", vms, 20000 if quick else 100000, 3, active=vms)
        out["flat"].append(r)
    for r in out["pure_python"]:
        fast = next(a for a in out["api"] if a["layout"] == r["layout"])
        r["times_switch_context"] = r["switch_ns"] / fast["switch_ns"]
    return out
