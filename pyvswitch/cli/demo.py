"""The main job: on the built-in platform, a host and a few VMs are switched
many times over the fast path, then - with the mover unbound at run time -
over the prior-art memory path, then back; every machine's register state is
checked against the same machine run alone, and both paths' figures are
printed side by side."""
from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

from .. import api
from ..errors import DEFAULT_DEMO_SWITCHES, DEFAULT_DEMO_VMS, MAX_DEMO_SWITCHES, MAX_DEMO_VMS, check_int_in, check_uint
from ..replay import replay
from .probe import as_text


class Reference:
    """What each machine must hold: the workload alone for the steps it ran
    (``pyvswitch.replay``), computed once per step count however many machines."""

    def __init__(self, layout: str) -> None:
        self.layout = layout
        self.steps: dict[int, int] = {}
        self._cache: dict[int, bytes] = {}

    def ran(self, machine: api.Machine, steps: int) -> None:
        self.steps[machine.id] = self.steps.get(machine.id, 0) + steps

    def state(self, machine: api.Machine) -> bytes:
        n = self.steps.get(machine.id, 0)
        if n not in self._cache:
            self._cache[n] = replay(n, self.layout)
        return self._cache[n]


def _phase(hv: api.Hypervisor, machines: list[api.Machine], ref: Reference, switches: int,
           steps: int) -> dict[str, Any]:
    cur = next(i for i, m in enumerate(machines) if m.pcpu == 0)
    sums = dict.fromkeys(("modeled_ns", "data_ns", "baseline_ns", "save_bursts", "load_bursts", "bytes"), 0.0)
    path = ""
    t0 = time.perf_counter()
    for _ in range(switches):
        hv.run(steps)
        ref.ran(machines[cur], steps)
        nxt = (cur + 1) % len(machines)
        s = hv.switch_context(machines[cur], machines[nxt])
        sums["modeled_ns"] += s.modeled_ns
        sums["data_ns"] += s.data_ns
        sums["baseline_ns"] += s.baseline_ns
        sums["save_bursts"] += s.save_bursts
        sums["load_bursts"] += s.load_bursts
        sums["bytes"] += s.bytes_saved + s.bytes_loaded
        path = s.path
        cur = nxt
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {k: v / switches for k, v in sums.items()}
    out.update(path=path, exit_entry_ns=s.exit_entry_ns, emulator_us_per_switch=wall / switches * 1e6,
               state_ok=all(m.state() == ref.state(m) for m in machines))
    return out


def run_demo(platform: str | None = None, vms: int = DEFAULT_DEMO_VMS, switches: int = DEFAULT_DEMO_SWITCHES,
             steps: int = 64) -> dict[str, Any]:
    check_int_in(vms, "vms", 1, MAX_DEMO_VMS)
    check_int_in(switches, "switches", 1, MAX_DEMO_SWITCHES)
    check_uint(steps, "steps", 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.FallbackWarning)    # said in the report instead: exit 1
        hv = api.open(platform)
    with hv:
        report = hv.report()
        machines = [hv.host] + [hv.create_vm(f"vm{i + 1}") for i in range(vms)]
        ref = Reference(hv.layout.name)
        phases = {}
        phases["first"] = _phase(hv, machines, ref, switches, steps)
        fell_back = False
        if hv.path == "store" and hv.unbind("mover"):                # the mover goes away
            phases["fallback"] = _phase(hv, machines, ref, switches, steps)
            hv.bind("mover")                                          # and comes back
            phases["restored"] = _phase(hv, machines, ref, max(1, switches // 10), steps)
            fell_back = True
        ok = all(p["state_ok"] for p in phases.values()) and not report.fallback
        lines = ["pyvswitch demo", "", as_text(report, None, platform or "built-in reference"), "",
                 f"host + {vms} VMs on pcpu0, switched round-robin with {steps} workload steps between; "
                 "each machine's state checked against the same machine run alone", "",
                 f"{'phase':9} {'path':7} {'state':6} {'switch ns':>10} {'data ns':>9} {'exit/entry':>10} "
                 f"{'N':>6} {'M':>6} {'bytes':>6} {'prior art ns':>12} {'emulator us':>11}"]
        for name, p in phases.items():
            lines.append(f"{name:9} {p['path']:7} {'ok' if p['state_ok'] else 'WRONG':6} {p['modeled_ns']:10.1f} "
                         f"{p['data_ns']:9.1f} {p['exit_entry_ns']:10.1f} {p['save_bursts']:6.1f} "
                         f"{p['load_bursts']:6.1f} {p['bytes']:6.0f} {p['baseline_ns']:12.1f} "
                         f"{p['emulator_us_per_switch']:11.2f}")
        lines.append("")
        if fell_back:
            st, mm = phases["first"], phases["fallback"]
            lines.append(f"Fast path: the mover moves the data {mm['data_ns'] / st['data_ns']:.1f}x faster than the "
                         f"PCPU storing registers over the memory bus; the whole switch, exit/entry included, is "
                         f"{mm['modeled_ns'] / st['modeled_ns']:.2f}x faster (model). The mover was unbound at run "
                         "time and rebound: contexts moved to MEM and back, nothing lost.")
        elif report.fallback:
            lines.append("FALLBACK: the platform declares the fast path, and it did not come up - every switch took "
                         "the memory path:")
            lines += [f"  - {why}" for why in report.problems]
        else:
            lines.append(f"The fast path is not usable here ({report.reason}); every switch took the memory path.")
        cache = _cache_line(hv, fell_back, lines)
        lines.append("N, M: mover bursts (memory path: the PCPU's register stores and loads). "
                     "Model figures; emulator us is this process's own time per switch.")
        return {"platform": report.platform, "fast_path": report.fast_path, "fallback": report.problems
                if report.fallback else [], "vms": vms, "switches": switches,
                "steps": steps, "phases": phases, "cache": cache, "ok": ok, "text": "\n".join(lines)}


def _cache_line(hv: api.Hypervisor, fell_back: bool, lines: list[str]) -> dict[str, Any] | None:
    """What the context store did as a cache of contexts over MEM (on the fast path)."""
    if hv.path != "store":
        return None
    c = hv.cache.stats()
    since = "since the mover came back" if fell_back else "in this run"
    lines.append(f"The context store holds {c.capacity:,} contexts and caches them over MEM, which has room for "
                 f"{c.home_capacity:,} machines ({c.policy}): {c.hits:,} of the {c.hits + c.misses:,} loads {since} "
                 f"found their context in the store ({c.misses:,} fetched from MEM).")
    return {**dataclasses.asdict(c), "hit_rate": c.hit_rate}
