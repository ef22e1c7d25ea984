"""The model half of the bench: what the hardware would buy - the patented path
against the prior art across state sizes, burst sizes and thresholds, under
memory-bus load, with dirty-only saves on and off, and where it stops paying."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..hw import Bus, BusParams, Layout, MoverParams, Path, Store
from ..platform import Platform
from .progress import Progress
from .timing import percentile

#: x86_64 with AVX2 only: what XCR0 = x87|SSE|AVX saves (no MPX, AVX-512 or PKRU components).
AVX2_GROUPS = ("regs", "sregs", "fpu_sse", "xsave_header", "avx", "xcrs", "debugregs", "events", "msrs")
#: What the deterministic workload dirties between two switches (general, flags, vector, some system registers).
TYPICAL_DIRTY = ("regs", "sregs", "fpu_sse", "avx", "msrs")
#: Reference point measured on an x86 host of ours: XSAVE + XRSTOR of 2,688 bytes of AVX-512 state.
XSAVE_XRSTOR_CYCLES = (300, 380)



class Model:
    """Prices transfers with the switch's own cost model, from a platform's parameters."""

    def __init__(self, plat: Platform, layout: str) -> None:
        self.lay = Layout.get(layout)
        p = {s.kind: s.params for s in plat.devices if s.kind}
        sb, mb, mv, cpu = p.get("storage-bus", {}), p["memory-bus"], p.get("mover", {}), p["pcpu"]
        self.sbus = BusParams.of("storage", sb)         # a platform without them: the reference's
        self.mbus = BusParams.of("memory", mb)
        self.mover = MoverParams.of(mv)
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
                                    "memory_p50": percentile(lat, 0.5), "memory_p99": percentile(lat, 0.99),
                                    "memory_p999": percentile(lat, 0.999), "store": st["total_ns"]})
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
    from .calibrate import cached_save_ns, calibration_of
    xsave_ns, source = cached_save_ns(calibration_of(plat.source), mdl.cpu_mhz)
    row("prior art with caches", st, f"{source} ({xsave_ns:.0f} ns) + exit/entry",
        mdl.exit_entry_ns + xsave_ns,
        "a core with write-back caches saves state near cache speed: the mover then saves tens of ns")
    return rows
