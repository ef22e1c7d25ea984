"""The main job: a host and a few VMs switched many times on the reference
hardware, every machine's state checked against a solo run, and the figures of
both paths side by side."""
from __future__ import annotations

import errno
import time

from . import defaults
from .hw import Bus, Path, Pcpu, Store, VswError


def run_demo(vms: int = 3, switches: int = 10000, steps: int = 64) -> dict:
    """Round-robin switches host -> vm1 -> ... -> host with ``steps`` of work each."""
    if vms < 1 or switches < 1:
        raise VswError(errno.EINVAL, f"need at least one VM and one switch (got vms={vms}, switches={switches})")
    store, mem = Store("x86_64", defaults.STORE_BYTES), Store("x86_64", defaults.MEM_BYTES)
    sbus, mbus = Bus(defaults.STORAGE_BUS), Bus(defaults.MEMORY_BUS)
    fast = Path.mover(store, sbus, defaults.MOVER)
    fast.set_baseline(mbus)
    slow = Path.memory(mem, mbus)
    report: dict = {"vms": vms, "switches": switches, "paths": {}}
    ok = True
    for name, path in (("store", fast), ("memory", slow)):
        pcpu = Pcpu("x86_64", defaults.CPU_MHZ, defaults.EXIT_ENTRY_CYCLES)
        slots = [path.store.alloc(i + 1) for i in range(vms + 1)]   # owner 1 is the host
        twins = []
        for s in slots:                     # each machine's solo run, for the check
            twin_store = Store("x86_64", 1 << 16)
            twin = Pcpu("x86_64")
            twin.switch(Path.mover(twin_store, Bus(defaults.STORAGE_BUS), defaults.MOVER), 0,
                        twin_store.alloc(s.owner))
            twins.append(twin)
        pcpu.switch(path, 0, slots[0])
        totals = {"modeled_ns": 0.0, "baseline_ns": 0.0, "data_ns": 0.0, "save_bursts": 0, "load_bursts": 0,
                  "bytes": 0}
        t0 = time.perf_counter()
        cur = 0
        for i in range(switches):
            pcpu.run(steps)
            twins[cur].run(steps)
            nxt = (cur + 1) % len(slots)
            s = pcpu.switch(path, slots[cur].owner, slots[nxt])
            totals["modeled_ns"] += s.modeled_ns
            totals["baseline_ns"] += s.baseline_ns
            totals["data_ns"] += s.data_ns
            totals["save_bursts"] += s.save_bursts
            totals["load_bursts"] += s.load_bursts
            totals["bytes"] += s.bytes_saved + s.bytes_loaded
            cur = nxt
        wall = time.perf_counter() - t0
        pcpu.switch(path, slots[cur].owner, None)
        same = all(s.read(0, 4096) == bytes(t.raw()) for s, t in zip(slots, twins))
        ok &= same
        report["paths"][name] = {
            "state_matches_solo_runs": same,
            "mean_modeled_ns": totals["modeled_ns"] / switches,
            "mean_data_ns": totals["data_ns"] / switches,
            "exit_entry_ns": s.exit_entry_ns,
            "mean_baseline_ns": totals["baseline_ns"] / switches,
            "mean_save_units": totals["save_bursts"] / switches,
            "mean_load_units": totals["load_bursts"] / switches,
            "mean_bytes": totals["bytes"] / switches,
            "emulator_us_per_switch": wall / switches * 1e6,
        }
    st, mm = report["paths"]["store"], report["paths"]["memory"]
    lines = [
        f"pyvswitch demo: host + {vms} VMs on one x86_64 PCPU, {switches} switches per path, {steps} steps between",
        "",
        f"{'path':8} {'state':6} {'switch ns':>10} {'data ns':>9} {'exit/entry':>10} {'N':>6} {'M':>6} "
        f"{'bytes':>7} {'emulator us':>11}",
    ]
    for name, r in (("store", st), ("memory", mm)):
        lines.append(f"{name:8} {'ok' if r['state_matches_solo_runs'] else 'WRONG':6} {r['mean_modeled_ns']:10.1f} "
                     f"{r['mean_data_ns']:9.1f} {r['exit_entry_ns']:10.1f} {r['mean_save_units']:6.1f} "
                     f"{r['mean_load_units']:6.1f} {r['mean_bytes']:7.0f} {r['emulator_us_per_switch']:11.2f}")
    lines += ["", f"The mover moves the data {mm['mean_data_ns'] / st['mean_data_ns']:.1f}x faster than the PCPU "
              f"storing registers over the memory bus; the whole switch, exit/entry included, is "
              f"{mm['mean_modeled_ns'] / st['mean_modeled_ns']:.2f}x faster (model).",
              "N, M: mover bursts (store path) or PCPU stores/loads (memory path)."]
    report["text"] = "\n".join(lines)
    report["ok"] = ok
    return report
