"""Several PCPUs on one storage bus: p50/p99 of the modelled switch against how
many PCPUs switch at once.

Event-driven and deterministic: each PCPU runs its machine a seeded random
number of workload steps (what a guest does between exits), then switches
to the other of its two machines, through one store and one storage bus
shared by ``masters`` PCPUs; the PCPU whose model clock is earliest goes
next, so transfers that overlap in model time take turns on the bus, a
transfer at a time in the order the switches begin.
"""
from __future__ import annotations

import random
import statistics
from typing import Any

from ..hw import Bus, BusParams, Layout, MoverParams, Path, Pcpu, Store
from .timing import percentile


def latencies(pcpus: int, masters: int, switches: int, layout: str = "x86_64", dirty: bool = True,
              mean_steps: int = 600, seed: int = 1) -> list[float]:
    """The modelled ns of each switch when ``pcpus`` PCPUs switch at once on a
    bus shared by ``masters`` (the others idle), each running 0..2*mean_steps
    workload steps (at 3 GHz, 200 ns on average) between its switches."""
    return switch_costs(pcpus, masters, switches, layout, dirty=dirty, mean_steps=mean_steps, seed=seed)[0]


def switch_costs(pcpus: int, masters: int, switches: int, layout: str = "x86_64",
                 storage: dict[str, Any] | None = None, mover: dict[str, Any] | None = None,
                 utilisation: float = 0.0, dirty: bool = True, mean_steps: int = 600,
                 seed: int = 1) -> tuple[list[float], list[float]]:
    """Each switch's modelled ns, and the prior art's for the same groups (the
    memory bus at ``utilisation``), with the storage bus and mover parameters
    given over the schema's defaults."""
    rng = random.Random(seed)
    lay = Layout.get(layout)
    slot = Store(lay, 1 << 20).slot_bytes
    store = Store(lay, slot * (2 * pcpus + 1))
    path = Path.mover(store, Bus(BusParams.of("storage", {**(storage or {}), "masters": masters})),
                      MoverParams.of(mover or {}))
    path.set_baseline(Bus(BusParams.of("memory", {"utilisation": utilisation})))
    cpus = [Pcpu(lay) for _ in range(pcpus)]
    pairs = [(store.alloc(2 * i + 1), store.alloc(2 * i + 2)) for i in range(pcpus)]
    for cpu, (a, _) in zip(cpus, pairs):
        cpu.switch(path, 0, a)
        cpu.run(rng.randint(0, 2 * mean_steps))     # its clock now says when it next switches
    costs: tuple[list[float], list[float]] = ([], [])
    try:
        for _ in range(switches):
            i = min(range(pcpus), key=lambda j: cpus[j].state().now_ns)     # in model-time order
            cpu, (a, b) = cpus[i], pairs[i]
            frm, to = (a, b) if cpu.owner == a.owner else (b, a)
            if dirty:
                cpu.mark_dirty(lay.all_groups)
            s = cpu.switch(path, frm.owner, to)
            costs[0].append(s.modeled_ns)
            costs[1].append(s.baseline_ns)
            cpu.run(rng.randint(0, 2 * mean_steps))
    finally:
        for cpu in cpus:
            cpu.switch(path, cpu.owner, None)
            cpu.close()
        path.close()
        store.close()
    return costs


def contention(max_pcpus: int = 4, switches: int = 400, layout: str = "x86_64") -> list[dict[str, Any]]:
    """A row per number of PCPUs switching at once (1..max_pcpus) on a bus all of them share."""
    rows = []
    for n in range(1, max_pcpus + 1):
        xs = sorted(latencies(n, max_pcpus, switches * n, layout))
        rows.append({"pcpus": n, "masters": max_pcpus, "switches": len(xs), "p50_ns": statistics.median(xs),
                     "p99_ns": percentile(xs, 0.99), "max_ns": xs[-1]})
    return rows
