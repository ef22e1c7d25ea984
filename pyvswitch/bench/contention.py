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

import errno
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import workloads
from ..errors import VswError, check
from ..hw import Bus, BusParams, Layout, MoverParams, Path, Pcpu, Store, ffi, lib
from ..hw.cache import Cache
from .timing import percentile


def latencies(pcpus: int, masters: int, switches: int, layout: str = "x86_64", dirty: bool = True,
              mean_steps: int = 600, seed: int = 1) -> list[float]:
    """The modelled ns of each switch when ``pcpus`` PCPUs switch at once on a
    bus shared by ``masters`` (the others idle), each running 0..2*mean_steps
    workload steps (at 3 GHz, 200 ns on average) between its switches."""
    return switch_costs(pcpus, masters, switches, layout, dirty=dirty, mean_steps=mean_steps, seed=seed).modeled_ns


SCHEDULES = ("round-robin", "uniform", "zipf", "bursts")


@dataclass
class Costs:
    """Each switch's modelled ns and the prior art's for the same groups, and how
    the store served the loads (a cache over MEM when it holds fewer than the machines)."""

    modeled_ns: list[float] = field(default_factory=list)
    prior_art_ns: list[float] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    writebacks: int = 0
    #: With ``record``: every switch in the order the model ran them, (PCPU, machine loaded,
    #: the PCPU's model time then); each PCPU's first load (uncounted) first.
    order: list[tuple[int, int, float]] = field(default_factory=list)


def _loads(schedule: str, vms: int, pcpus: int, count: int, seed: int, zipf_s: float = 1.0,
           burst_len: int = 8) -> list[list[int]]:
    """Each PCPU's next ``count`` machines, from the workload generators (PCPU i
    owns machines i, i + pcpus, ...): as many as it may need, whatever the others do."""
    if schedule not in SCHEDULES:
        raise VswError(errno.EINVAL, f"schedule is one of {', '.join(SCHEDULES)}, not {schedule!r}")
    if vms < 2 * pcpus:
        raise VswError(errno.EINVAL, f"{vms} machines cannot give each of {pcpus} PCPUs two to switch between")
    gen = {"round-robin": lambda names, s: workloads.round_robin(names, count),
           "uniform": lambda names, s: workloads.uniform(names, count, seed=s),
           "zipf": lambda names, s: workloads.zipf(names, count, s=zipf_s, seed=s),
           "bursts": lambda names, s: workloads.bursts(names, count, burst=burst_len, seed=s)}[schedule]
    return [[int(name) for _, name in gen([str(m) for m in range(i, vms, pcpus)], seed + i)] for i in range(pcpus)]


def _in_c(cpu: Pcpu, ctxs: list[Any], loads: list[int], dirty_mask: int, out: Costs) -> None:
    """One PCPU's switches to loads[1:], in one C call (vsw_run_schedule with a
    sequence), each switch's cost recorded: what a model point with nothing to
    interleave needs, at the C switch's speed.  The workload's steps only move
    the PCPU's clock, which a PCPU alone on its bus never waits on."""
    n = len(loads) - 1
    modeled, baseline = ffi.new("uint64_t[]", n), ffi.new("uint64_t[]", n)
    seq = ffi.new("uint32_t[]", loads[1:])
    plan = ffi.new("struct vsw_schedule *", {"switches": n, "order": lib.VSW_ORDER_SEQUENCE, "sequence": seq,
                                             "dirty_mask": dirty_mask, "modeled_ps": modeled,
                                             "baseline_ps": baseline})
    stats = ffi.new("struct vsw_schedule_stats *")
    arr = ffi.new("struct vsw_ctx *[]", ctxs)
    check(lib.vsw_run_schedule(cpu.handle, arr, len(ctxs), loads[0], plan, ffi.NULL, stats), "schedule")
    out.modeled_ns = [ps / 1000.0 for ps in ffi.unpack(modeled, n)]
    out.prior_art_ns = [ps / 1000.0 for ps in ffi.unpack(baseline, n)]


def _interleaved(cpus: list[Pcpu], ctxs: list[Any], loads: list[list[int]], running: list[int], switches: int,
                 dirty_mask: int, rng: random.Random, mean_steps: int, out: Costs, record: bool = False,
                 warm: int = 0, warmed: Callable[[], None] = lambda: None) -> None:
    """Several PCPUs' switches, switch by switch in model-time order (the PCPU whose
    clock is earliest goes next), each running its workload between them; the
    first ``warm`` are not counted (``warmed`` is called after them)."""
    nxt = [0] * len(cpus)
    for k in range(warm + switches):
        if k == warm:
            warmed()
        i = min(range(len(cpus)), key=lambda j: cpus[j].state().now_ns)
        nxt[i] += 1
        to = loads[i][nxt[i]]
        if dirty_mask:
            cpus[i].mark_dirty(dirty_mask)
        if record:
            out.order.append((i, to, cpus[i].state().now_ns))
        s = cpus[i].switch_ctx(ctxs[running[i]], ctxs[to])
        running[i] = to
        out.modeled_ns.append(s.modeled_ns)
        out.prior_art_ns.append(s.baseline_ns)
        cpus[i].run(rng.randint(0, 2 * mean_steps))


def _traced(cpus: list[Pcpu], ctxs: list[Any], trace: list[tuple[int, int]], running: list[int | None],
            dirty_mask: int, rng: random.Random, mean_steps: int, out: Costs, record: bool, warm: int,
            warmed: Callable[[], None]) -> None:
    """A schedule file's switches in its order (a switch to the machine already
    running is a stay, not a switch); the first ``warm`` are not counted."""
    for k, (i, to) in enumerate(trace):
        if k == warm:
            warmed()
        if running[i] == to:
            continue
        if to in running:
            raise VswError(errno.EBUSY, f"trace switch {k + 1}: machine {to} is running on pcpu{running.index(to)} "
                                        f"when pcpu{i} switches to it")
        if dirty_mask and running[i] is not None:
            cpus[i].mark_dirty(dirty_mask)
        if record:
            out.order.append((i, to, cpus[i].state().now_ns))
        frm = running[i]
        s = cpus[i].switch_ctx(None if frm is None else ctxs[frm], ctxs[to])
        running[i] = to
        out.modeled_ns.append(s.modeled_ns)
        out.prior_art_ns.append(s.baseline_ns)
        cpus[i].run(rng.randint(0, 2 * mean_steps))
    if warm >= len(trace):
        warmed()


def switch_costs(pcpus: int, masters: int, switches: int, layout: str = "x86_64",
                 storage: dict[str, Any] | None = None, mover: dict[str, Any] | None = None,
                 utilisation: float = 0.0, dirty: bool = True, mean_steps: int = 600, seed: int = 1,
                 vms: int = 0, capacity: int = 0, policy: str = "lru", schedule: str = "round-robin",
                 reaches_dram: bool = False, batched: bool = True, record: bool = False, warmup: int = 0,
                 start: str = "warm", zipf_s: float = 1.0, burst_len: int = 8,
                 trace: list[tuple[int, int]] | None = None) -> Costs:
    """``switches`` switches of ``pcpus`` PCPUs at once on a storage bus shared by
    ``masters``, each running a seeded random 0..2*mean_steps workload steps between
    its switches and going next to the machine ``schedule`` picks among its share of
    ``vms`` machines (0: two each), through a store of ``capacity`` contexts (0: room
    for every machine) that caches them over MEM with ``policy``; the storage bus
    and mover parameters given over the schema's defaults.  Belady needs the
    future, so one PCPU (whose loads are known before it starts).  One PCPU's
    schedule runs in one C call (``batched``; False: switch by switch, as
    several PCPUs do - the same figures, slower).  ``record``: ``Costs.order`` says
    which PCPU loaded which machine when, for checking against a reference.

    ``warmup`` switches per PCPU run first and are not counted; ``start`` "warm"
    begins with the first ``capacity`` machines in the store (placed, never
    loaded), "cold" with the store empty.  ``zipf_s`` and ``burst_len`` shape
    those schedules.  ``trace`` replaces ``schedule``: (PCPU, machine) switches in
    the order given (``vms`` and ``pcpus`` must cover it), every one counted (each
    PCPU's first is from idle), ``warmup`` counting switches of the trace."""
    if policy == "belady" and pcpus > 1:
        raise VswError(errno.EINVAL, "belady evicts by the future: with several PCPUs the order of their loads "
                                     "is known only as they run; sweep it with pcpus = 1")
    if start not in ("warm", "cold"):
        raise VswError(errno.EINVAL, f"start is warm or cold, not {start!r}")
    rng = random.Random(seed)
    lay = Layout.get(layout)
    vms = vms or 2 * pcpus
    capacity = capacity or vms
    slot = Store(lay, 1 << 20).slot_bytes
    cold = capacity if start == "cold" else 0
    store, mem = Store(lay, slot * capacity), Store(lay, slot * (vms + cold))
    path = Path.mover(store, Bus(BusParams.of("storage", {**(storage or {}), "masters": masters})),
                      MoverParams.of(mover or {}))
    membus = Bus(BusParams.of("memory", {"utilisation": utilisation}))
    path.set_baseline(membus)
    cache = Cache(path, mem, membus, policy, "mover" if reaches_dram else "pcpu")
    fillers = [cache.new_context(vms + 1 + k, 1) for k in range(cold)]     # hold the store while the machines
    ctxs = [cache.new_context(m + 1, 1) for m in range(vms)]                # are made: they start at home
    for x in reversed(fillers):     # the free slots a stack: slot 0 on top, so a cold store fills 0, 1, ...
        lib.vsw_ctx_release(x)      # as CLOCK's hand (from slot 0) expects: it meets the oldest first
    cpus = [Pcpu(lay) for _ in range(pcpus)]
    mask = lay.all_groups if dirty else 0
    out = Costs()

    def warmed() -> None:
        cache.reset_stats()
        out.modeled_ns.clear()
        out.prior_art_ns.clear()
    try:
        for cpu in cpus:
            cpu.thaw(1)
        if trace is not None:
            if policy == "belady":      # the loads: a stay (the machine already running) loads nothing
                on: list[int | None] = [None] * pcpus
                future = []
                for i, m in trace:
                    if on[i] != m:
                        future.append(ctxs[m])
                        on[i] = m
                cache.plan(future)
            _traced(cpus, ctxs, trace, [None] * pcpus, mask, rng, mean_steps, out, record, warmup, warmed)
        else:
            loads = _loads(schedule, vms, pcpus, warmup * pcpus + switches + 1, seed, zipf_s, burst_len)
            running = [ld[0] for ld in loads]
            if policy == "belady":      # the whole future, the first load included: every eviction Belady's
                cache.plan([ctxs[m] for m in loads[0][:warmup + switches + 1]])
            for i, cpu in enumerate(cpus):
                if record:
                    out.order.append((i, running[i], cpu.state().now_ns))
                cpu.switch_ctx(None, ctxs[running[i]])
                cpu.run(rng.randint(0, 2 * mean_steps))     # its clock now says when it next switches
            cache.reset_stats()
            if pcpus == 1 and batched:      # nothing to interleave: the whole schedule in one C call
                seq = loads[0][:warmup + switches + 1]
                if record:
                    out.order += [(0, m, 0.0) for m in seq[1:]]
                if warmup:
                    _in_c(cpus[0], ctxs, seq[:warmup + 1], mask, out)
                    warmed()
                _in_c(cpus[0], ctxs, seq[warmup:], mask, out)
            else:
                _interleaved(cpus, ctxs, loads, running, switches, mask, rng, mean_steps, out, record,
                             warmup * pcpus, warmed)
        c = cache.stats()
        out.hits, out.misses, out.writebacks = c.hits, c.misses, c.writebacks
    finally:
        for cpu in cpus:
            if cpu.owner:
                cpu.switch(path, cpu.owner, None)
            cpu.close()
        for x in ctxs:
            lib.vsw_ctx_release(x)
        del cache
        path.close()
        store.close()
    return out


def contention(max_pcpus: int = 4, switches: int = 400, layout: str = "x86_64") -> list[dict[str, Any]]:
    """A row per number of PCPUs switching at once (1..max_pcpus) on a bus all of them share."""
    rows = []
    for n in range(1, max_pcpus + 1):
        xs = sorted(latencies(n, max_pcpus, switches * n, layout))
        rows.append({"pcpus": n, "masters": max_pcpus, "switches": len(xs), "p50_ns": statistics.median(xs),
                     "p99_ns": percentile(xs, 0.99), "max_ns": xs[-1]})
    return rows
