"""The bench document as text, and as one PNG (matplotlib, the ``plot`` extra)."""
from __future__ import annotations

import errno
from typing import Any

from ..hw import VswError


def _contention_lines(rows: list[dict[str, Any]] | None) -> list[str]:
    if not rows:
        return []
    return (["", f"  PCPUs switching at once on one storage bus shared by {rows[0]['masters']} (all groups dirty; "
             "modelled ns)", f"  {'PCPUs':>5} {'p50':>8} {'p99':>8} {'max':>8}"] +
            [f"  {r['pcpus']:5} {r['p50_ns']:8.1f} {r['p99_ns']:8.1f} {r['max_ns']:8.1f}" for r in rows])


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
    L += _contention_lines(doc.get("contention"))
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
                     f"{r['memcpy_ns']:.1f} ns = {r['memcpy_speed_fraction']:.2f} of memcpy speed (checked copies "
                     f"{r['data_ns']:.1f} ns, bookkeeping {r['bookkeeping_ns']:.1f} ns, of which atomics "
                     f"{r['atomics_ns']:.1f} ns)")
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


def pyplot() -> Any:
    """matplotlib's pyplot on the file backend, or a clear error without the ``plot`` extra."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise VswError(errno.ENOPKG if hasattr(errno, "ENOPKG") else errno.ENOENT,
                       "--plot needs matplotlib: pip install 'pyvswitch[plot]'") from None
    return plt


def plot(doc: dict[str, Any], path: str) -> None:
    """Latency against memory-bus load, and bursts against max_burst, in one PNG."""
    plt = pyplot()
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

