"""pyvswitch bench: the architect's view and the prototype developer's.

Two parts, as tables or one JSON document:

- emulator speed: what a hypervisor prototype pays per switch - switch_context
  from Python and the switch loop in C against floors measured in the same run
  (one ffi.memmove of the same bytes; memcpy in C), against a plain-Python
  implementation of the same switch, and with 2, 100 and 10,000 VMs;
- the model: what the hardware would buy - the patented path against the prior
  art for x86_64 with AVX2- and AVX-512-sized state and for aarch64, data
  movement and the fixed exit/entry apart, across burst sizes and thresholds,
  under memory-bus load (p50, p99, p99.9, seeded), with dirty-only saves on and
  off - including where the patented path stops paying.
"""
from __future__ import annotations

import errno
import os
import platform as pyplatform
import sys
import statistics
import time
from dataclasses import replace
from typing import Any

from . import speed
from .hw import Bus, BusParams, Layout, MoverParams, Path, Store, VswError, lib
from .platform import Platform
from .purepy import PyPcpu, PySlot

#: x86_64 with AVX2 only: what XCR0 = x87|SSE|AVX saves (no MPX, AVX-512 or PKRU components).
AVX2_GROUPS = ("regs", "sregs", "fpu_sse", "xsave_header", "avx", "xcrs", "debugregs", "events", "msrs")
#: What the deterministic workload dirties between two switches (general, flags, vector, some system registers).
TYPICAL_DIRTY = ("regs", "sregs", "fpu_sse", "avx", "msrs")
#: Reference point measured on an x86 host of ours: XSAVE + XRSTOR of 2,688 bytes of AVX-512 state.
XSAVE_XRSTOR_CYCLES = (300, 380)


class Progress:
    """Progress on a terminal only (stderr), silent otherwise."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.tty = total, 0, sys.stderr.isatty()

    def step(self, what: str) -> None:
        self.done += 1
        if self.tty:
            print(f"\r[{self.done}/{self.total}] {what:60}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print("\r" + " " * 72 + "\r", end="", file=sys.stderr, flush=True)


# --- emulator speed ---------------------------------------------------------------
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
        out["api"].append(speed.api_switch(plat, batch, batches, dirty="all"))
    for layout in ("x86_64", "aarch64"):
        prog.step(f"emulator: C switch loop, {layout}")
        out["c"].append(speed.c_switch(layout, 2, 20000 if quick else 200000, 3 if quick else 5))
        prog.step(f"emulator: plain Python, {layout}")
        out["pure_python"].append(_purepy_speed(layout, 100 if quick else 1000))
    for vms in (2, 100, 10000):
        prog.step(f"emulator: {vms} VMs")
        r = speed.api_switch("datacenter", batch, max(5, batches // 3), dirty="all", vms=vms)
        r["c_round_robin"] = speed.c_switch("x86_64", vms, 20000 if quick else 100000, 3, active=vms)
        out["flat"].append(r)
    for r in out["pure_python"]:
        fast = next(a for a in out["api"] if a["layout"] == r["layout"])
        r["times_switch_context"] = r["switch_ns"] / fast["switch_ns"]
    return out


# --- the model -----------------------------------------------------------------------
class Model:
    """Prices transfers with the switch's own cost model, from a platform's parameters."""

    def __init__(self, plat: Platform, layout: str) -> None:
        self.lay = Layout.get(layout)
        p = {s.kind: s.params for s in plat.devices if s.kind}
        sb, mb, mv, cpu = p.get("storage-bus", {}), p["memory-bus"], p.get("mover", {}), p["pcpu"]
        self.sbus = BusParams(kind="storage", **{k: sb.get(k, getattr(BusParams(), k)) for k in
                                                ("width_bytes", "clock_mhz", "setup_cycles")})
        self.mbus = BusParams(kind="memory", shared=True, **{k: mb[k] for k in (
            "width_bytes", "clock_mhz", "setup_cycles", "utilisation", "other_bytes", "seed")})
        self.mover = MoverParams(mv.get("max_burst", 8192), mv.get("write_threshold", 16), mv.get("read_threshold", 16))
        self.exit_entry_ns = cpu["exit_entry_cycles"] * 1000.0 / cpu["cpu_mhz"]
        self.cpu_mhz = cpu["cpu_mhz"]
        self.store, self.mem = Store(self.lay, 1 << 16), Store(self.lay, 1 << 16)

    def store_path(self, max_burst: int | None = None, unchecked: bool = False) -> Path:
        params = replace(self.mover, max_burst=max_burst or self.mover.max_burst)
        if unchecked:       # price any burst size: thresholds high enough to admit it
            params = replace(params, write_threshold=1 << 30, read_threshold=1 << 30)
        return Path.mover(self.store, Bus(self.sbus), params)

    def memory_path(self, utilisation: float | None = None, seed: int | None = None) -> Path:
        bus = Bus(replace(self.mbus, utilisation=self.mbus.utilisation if utilisation is None else utilisation,
                          seed=self.mbus.seed if seed is None else seed))
        return Path.memory(self.mem, bus)

    def switch(self, path: Path, save: int, load: int) -> dict[str, float]:
        n, save_ns = path.price(save)
        m, load_ns = path.price(load)
        data = save_ns + load_ns
        return {"N": n, "M": m, "data_ns": data, "exit_entry_ns": self.exit_entry_ns,
                "total_ns": data + self.exit_entry_ns}


def _scenarios() -> list[tuple[str, str, tuple[str, ...] | None]]:
    return [("x86_64 AVX-512", "x86_64", None), ("x86_64 AVX2", "x86_64", AVX2_GROUPS), ("aarch64", "aarch64", None)]


def model(plat: Platform, quick: bool, prog: Progress) -> dict[str, Any]:
    samples = 300 if quick else 5000
    out: dict[str, Any] = {"paths": [], "bursts": [], "load": [], "stops_paying": []}
    for label, layout, groups in _scenarios():
        prog.step(f"model: {label}")
        mdl = Model(plat, layout)
        state = mdl.lay.mask(groups) if groups else mdl.lay.all_groups
        state_bytes = sum(g.size for g in mdl.lay.groups if g.mask & state)
        typical = mdl.lay.mask([g for g in TYPICAL_DIRTY if g in [x.name for x in mdl.lay.groups]]) & state \
            if layout == "x86_64" else mdl.lay.mask(["core", "fpsimd"])
        for dirty_only in (True, False):
            save = typical if dirty_only else state
            st = mdl.switch(mdl.store_path(unchecked=True), save, state)
            mm = mdl.switch(mdl.memory_path(), save, state)
            out["paths"].append({"scenario": label, "state_bytes": state_bytes, "dirty_only": dirty_only,
                                 "save_bytes": sum(g.size for g in mdl.lay.groups if g.mask & save),
                                 "store": st, "memory": mm, "data_speedup": mm["data_ns"] / st["data_ns"],
                                 "switch_speedup": mm["total_ns"] / st["total_ns"]})
        # burst size and thresholds: N, worst N, M, admissible thresholds, data time
        if layout == "x86_64" and groups is None:
            for mb in (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384):
                path = mdl.store_path(mb, unchecked=True)
                lim = path.limits()
                d = mdl.switch(path, typical, state)
                out["bursts"].append({"max_burst": mb, "N_full": lim.full_units, "N_worst": lim.worst_save_units,
                                      "N_typical": d["N"], "M": lim.worst_load_units, "data_ns": d["data_ns"],
                                      "admissible_thresholds": [t for t in (4, 8, 16, 32, 64, 128)
                                                                if lim.worst_save_units < t and lim.full_units < t]})
        # memory-bus background load: latency distribution of the prior art, seeded
        if groups is None or layout == "x86_64":
            st = mdl.switch(mdl.store_path(unchecked=True), typical, state)
            for u in [i / 10 for i in range(10)]:
                path = mdl.memory_path(u, seed=12345)
                lat = [mdl.switch(path, typical, state)["total_ns"] for _ in range(samples)]
                out["load"].append({"scenario": label, "utilisation": u, "samples": samples,
                                    "memory_p50": speed._percentile(lat, 0.5), "memory_p99": speed._percentile(lat, 0.99),
                                    "memory_p999": speed._percentile(lat, 0.999), "store": st["total_ns"]})
    out["stops_paying"] = _stops_paying(plat)
    return out


def _stops_paying(plat: Platform) -> list[dict[str, Any]]:
    """Cases where the patented path buys little or nothing, made visible."""
    mdl = Model(plat, "x86_64")
    lay = mdl.lay
    typical = lay.mask(list(TYPICAL_DIRTY))
    rows = []

    def row(case: str, patented: dict[str, float], against: str, other_ns: float, why: str) -> None:
        rows.append({"case": case, "patented_ns": patented["total_ns"], "against": against, "against_ns": other_ns,
                     "gain": other_ns / patented["total_ns"], "why": why})

    regs = lay.mask(["regs"])
    row("tiny context (general registers only, 192 B)", mdl.switch(mdl.store_path(unchecked=True), regs, regs),
        "prior art, idle bus", mdl.switch(mdl.memory_path(0.0), regs, regs)["total_ns"],
        "the fixed exit/entry dominates both paths")
    small = mdl.switch(mdl.store_path(64, unchecked=True), lay.all_groups, lay.all_groups)
    row("thresholds forcing 64-byte bursts", small, f"the same mover with its {mdl.mover.max_burst}-byte bursts",
        mdl.switch(mdl.store_path(unchecked=True), lay.all_groups, lay.all_groups)["total_ns"],
        f"{small['N']} + {small['M']} bursts, each paying its setup")
    frag = lay.mask([g.name for g in lay.groups][::2])
    row("dirty-only save of scattered groups", mdl.switch(mdl.store_path(unchecked=True), frag, lay.all_groups),
        "a full save", mdl.switch(mdl.store_path(unchecked=True), lay.all_groups, lay.all_groups)["total_ns"],
        "every run of dirty groups is a burst of its own: fewer bytes, more setups")
    st = mdl.switch(mdl.store_path(unchecked=True), typical, lay.all_groups)
    row("idle memory bus, uncached register stores", st, "this model's prior art",
        mdl.switch(mdl.memory_path(0.0), typical, lay.all_groups)["total_ns"],
        "every register store pays DRAM latency: the patent's premise")
    xsave_ns = sum(c * 1000.0 / mdl.cpu_mhz for c in XSAVE_XRSTOR_CYCLES) / 2
    row("prior art with caches", st, "XSAVE+XRSTOR as measured (300-380 cycles) + exit/entry",
        mdl.exit_entry_ns + xsave_ns,
        "a core with write-back caches saves state near cache speed: the mover then saves tens of ns")
    return rows


# --- the whole run -----------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"machine": pyplatform.machine(), "cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0],
            "system": f"{pyplatform.system()} {pyplatform.release()}",
            "crc32c_hw": bool(lib.vsw_crc32c_hw())}


def run(platform: str | None = None, quick: bool = False, model_only: bool = False) -> dict[str, Any]:
    plat = Platform.load(platform)
    if not plat.of_kind("pcpu"):
        raise VswError(errno.EINVAL, "the platform has no PCPU")
    if plat.of_kind("mover"):       # refused as the mover's probe refuses it (E2BIG), same words
        Model(plat, plat.layout.name).store_path().close()
    prog = Progress((0 if model_only else 10) + 3)
    t0 = time.perf_counter()
    doc: dict[str, Any] = {
        "pyvswitch_bench": 1, "quick": quick, "machine": machine_info(),
        "platform": {"name": plat.name, "source": plat.source,
                     "devices": [{"name": s.name, "kind": s.kind, "params": s.params} for s in plat.devices]},
    }
    try:
        doc["model"] = model(plat, quick, prog)
        doc["emulator"] = None if model_only else emulator(quick, prog)
    finally:
        prog.close()
    doc["seconds"] = time.perf_counter() - t0
    return doc


def format_text(doc: dict[str, Any]) -> str:
    m = doc["model"]
    L = [f"pyvswitch bench - platform {doc['platform']['name']}, {doc['machine']['cpu'] or doc['machine']['machine']}",
         "", "THE MODEL: one switch, patented path (store) vs prior art (memory), modelled ns",
         f"  {'scenario':16} {'state B':>7} {'saves':7} {'store data':>10} {'N':>3} {'M':>3} {'memory data':>11} "
         f"{'exit/entry':>10} {'store total':>11} {'memory total':>12} {'data x':>7} {'switch x':>8}"]
    for r in m["paths"]:
        st, mm = r["store"], r["memory"]
        L.append(f"  {r['scenario']:16} {r['state_bytes']:7} {'dirty' if r['dirty_only'] else 'full':7} "
                 f"{st['data_ns']:10.1f} {st['N']:3} {st['M']:3} {mm['data_ns']:11.1f} {st['exit_entry_ns']:10.1f} "
                 f"{st['total_ns']:11.1f} {mm['total_ns']:12.1f} {r['data_speedup']:7.1f} {r['switch_speedup']:8.2f}")
    L += ["", "  Bursts against max_burst (x86_64, AVX-512 state): N must stay below the write threshold, M below "
          "the read one", f"  {'max_burst':>9} {'N full':>6} {'N worst':>7} {'N dirty':>7} {'M':>4} {'data ns':>8} "
          f"  admissible thresholds (of 4..128)"]
    for r in m["bursts"]:
        L.append(f"  {r['max_burst']:9} {r['N_full']:6} {r['N_worst']:7} {r['N_typical']:7} {r['M']:4} "
                 f"{r['data_ns']:8.1f}   {', '.join(map(str, r['admissible_thresholds'])) or 'none'}")
    L += ["", "  Switch latency under memory-bus background load (dirty saves; seeded)",
          f"  {'scenario':16} {'load':>5} {'memory p50':>10} {'p99':>9} {'p99.9':>9} {'store':>8}"]
    for r in m["load"]:
        L.append(f"  {r['scenario']:16} {r['utilisation']:5.0%} {r['memory_p50']:10.1f} {r['memory_p99']:9.1f} "
                 f"{r['memory_p999']:9.1f} {r['store']:8.1f}")
    L += ["", "  Where the patented path stops paying"]
    for r in m["stops_paying"]:
        L.append(f"  - {r['case']}: {r['patented_ns']:.1f} ns vs {r['against']} {r['against_ns']:.1f} ns: "
                 f"x{r['gain']:.2f} ({r['why']})")
    e = doc.get("emulator")
    if e:
        L += ["", "THE EMULATOR: what a prototype pays per switch (this machine, same-run floors)",
              f"  {'platform':11} {'bytes':>6} {'switch_context p50':>18} {'p99':>7} {'floor p50':>9} "
              f"{'ratio p50':>9} {'p99':>6}"]
        for r in e["api"]:
            L.append(f"  {r['platform']:11} {r['bytes_per_switch']:6} {r['switch_ns']:18.0f} {r['switch_ns_p99']:7.0f} "
                     f"{r['floor_ns']:9.0f} {r['switch_ratio']:9.2f} {r['switch_ratio_p99']:6.2f}")
        for r in e["c"]:
            L.append(f"  C loop {r['layout']:8} {r['bytes_per_switch']:6.0f} B: {r['switch_ns']:.1f} ns vs memcpy "
                     f"{r['memcpy_ns']:.1f} ns = {r['memcpy_speed_fraction']:.2f} of memcpy speed")
        for r in e["pure_python"]:
            L.append(f"  plain Python (slice copies + zlib.crc32) {r['layout']:8}: {r['switch_ns'] / 1000:.2f} us per switch "
                     f"(min {r['switch_ns_min'] / 1000:.2f}, max {r['switch_ns_max'] / 1000:.2f}) = "
                     f"{r['times_switch_context']:.1f}x switch_context")
        for r in e["flat"]:
            c = r["c_round_robin"]
            L.append(f"  {r['vms']:6} VMs: switch_context {r['switch_ns']:.0f} ns ({r['switch_ratio']:.2f}x floor); "
                     f"C round robin over all {c['switch_ns']:.0f} ns vs a same-footprint copy {c['memcpy_ns']:.0f} ns")
    L += ["", f"({doc['seconds']:.1f} s)"]
    return "\n".join(L)


def plot(doc: dict[str, Any], path: str) -> None:
    """Latency against memory-bus load, and bursts against max_burst, in one PNG."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VswError(errno.ENOPKG if hasattr(errno, "ENOPKG") else errno.ENOENT,
                       "--plot needs matplotlib: pip install 'pyvswitch[plot]'") from None
    m = doc["model"]
    fig, (a, z, b) = plt.subplots(1, 3, figsize=(16, 5.6), gridspec_kw={"width_ratios": [1.25, 1, 1]})
    colours = dict(zip(sorted({r["scenario"] for r in m["load"]}), ("tab:blue", "tab:orange", "tab:green")))
    for label, colour in colours.items():
        rows = [r for r in m["load"] if r["scenario"] == label]
        u = [r["utilisation"] * 100 for r in rows]
        a.plot(u, [r["memory_p50"] for r in rows], marker="o", color=colour, label=f"{label}: prior art p50")
        a.plot(u, [r["memory_p99"] for r in rows], linestyle="--", color=colour, label=f"{label}: prior art p99")
        a.plot(u, [r["store"] for r in rows], marker="s", color=colour, alpha=0.5, label=f"{label}: mover")
        # the fast path, zoomed: its lines sit within a few tens of ns of each other
        z.plot(u, [r["store"] for r in rows], marker="s", color=colour, label=f"{label}: mover")
    cached = next((r["against_ns"] for r in m.get("stops_paying", []) if r["case"] == "prior art with caches"), None)
    if cached:
        for ax in (a, z):
            ax.axhline(cached, color="black", linestyle=":", label="x86_64: cached XSAVE+XRSTOR (measured) "
                       "+ exit/entry" if ax is z else None)
    a.set(xlabel="memory-bus background load (%)", ylabel="modelled switch latency (ns, log)", yscale="log",
          title="Switch latency against memory-bus load")
    z.set(xlabel="memory-bus background load (%)", ylabel="modelled switch latency (ns)",
          title="The fast path, zoomed (exit/entry included)")
    lo = min(r["store"] for r in m["load"])
    z.set_ylim(lo * 0.95, max([r["store"] for r in m["load"]] + [cached or 0]) * 1.05)
    mb = [r["max_burst"] for r in m["bursts"]]
    b.plot(mb, [r["N_full"] for r in m["bursts"]], marker="o", label="N, full save")
    b.plot(mb, [r["N_worst"] for r in m["bursts"]], marker="^", label="N, worst dirty set")
    b.plot(mb, [r["N_typical"] for r in m["bursts"]], marker="s", label="N, typical dirty set")
    b.axhline(16, color="grey", linestyle=":", label="threshold 16")
    b.set(xlabel="max burst (bytes)", ylabel="bursts per transfer", xscale="log", yscale="log",
          title="Burst count against max burst (x86_64)")
    for ax in (a, z, b):       # legends below the axes, never over the curves
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1 if ax is not a else 2,
                  frameon=False)
    mach = doc.get("machine", {})
    fig.suptitle(f"pyvswitch bench - platform {doc['platform']['name']} - {mach.get('cpu') or mach.get('machine', '')}"
                 f" (modelled; exit/entry {m['paths'][0]['store']['exit_entry_ns'] if m.get('paths') else ''} ns "
                 "on both paths)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["Model", "format_text", "machine_info", "plot", "run"]
