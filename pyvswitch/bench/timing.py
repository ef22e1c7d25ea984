"""Emulator speed: what a hypervisor prototype pays per switch, against floors
measured side by side in the same run (ratios, so they hold on a noisy machine).

- Python: ``Pcpu.switch`` (and the bare cffi call) against one ``ffi.memmove``
  of the same bytes - one cffi call plus the copy, the least any switch from
  Python can cost.
- C: the switch loop against ``memcpy`` of the same bytes in the same chunks.
- Flatness: the same with 2 and with many machines.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

from ..hw import Bus, BusParams, Layout, MoverParams, Path, Pcpu, Store, SwitchStats, ffi, lib


class Rig:
    """A PCPU and the store path holding ``machines`` machines; switches go
    round-robin over the first ``active`` of them (all by default)."""

    def __init__(self, layout: str, machines: int, active: int | None = None) -> None:
        self.layout = Layout.get(layout)
        slot_bytes = Store(layout, 1 << 20).slot_bytes
        self.store = Store(layout, slot_bytes * (machines + 1))
        self.path = Path.mover(self.store, Bus(BusParams.of("storage")), MoverParams())
        self.path.set_baseline(Bus(BusParams.of("memory")))
        self.pcpu = Pcpu(layout)
        self.all_slots = [self.store.alloc(i + 1) for i in range(machines)]
        self.slots = self.all_slots[:active or machines]
        self.pcpu.switch(self.path, 0, self.slots[0])

    def close(self) -> None:
        self.pcpu.switch(self.path, self.pcpu.owner, None)


def _per_call_ns(fn: Callable[[int], None], n: int) -> float:
    t = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t) / n


def fastest_copy_pair(size: int) -> tuple[object, object, object]:
    """Two ``char[]`` regions of ``size`` bytes in one cffi buffer (returned
    first: it owns them), placed so a copy runs at its best - copies between
    addresses 4 KiB apart alias in the store buffer and run slower, and the
    floor must be the least a copy can cost, not an unlucky one."""
    buf = ffi.new("char[]", 2 * size + 8192)
    best = None
    for gap in (64, 1024, 2048, 3072, 4096 + 512):
        src, dst = buf + 0, buf + size + gap

        def copies(n: int, src: object = src, dst: object = dst) -> None:
            for _ in range(n):
                ffi.memmove(dst, src, size)

        t = min(_per_call_ns(copies, 2000) for _ in range(3))
        if best is None or t < best[0]:
            best = (t, src, dst)
    assert best is not None
    return buf, best[1], best[2]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile: the smallest value with at least a fraction
    ``q`` of ``values`` at or below it - the ceil(q * n)-th smallest (the first
    for q = 0), so the p99 of 100 values is the 99th, not the maximum."""
    s = sorted(values)
    rank = math.ceil(q * len(s) - 1e-9)          # q * n a whole number up to float rounding: that rank
    return s[min(len(s) - 1, max(0, rank - 1))]


def spread(xs: list[float], digits: int = 2) -> str:
    """A median with its min and max, as every benchmark here prints them."""
    return f"{statistics.median(xs):.{digits}f} (min {min(xs):.{digits}f}, max {max(xs):.{digits}f})"


def against_floor(switches: Callable[[int], None], marks: Callable[[int], None], moved: int, calls: int,
                  rounds: int, **others: Callable[[int], None]) -> dict[str, float]:
    """Per-call ns of ``switches`` (minus the dirty ``marks`` it does besides) and of
    one ffi.memmove of ``moved`` bytes, in interleaved rounds so drift hits all
    alike: medians, p99 over rounds, and the ratios.  ``others`` are timed the
    same way (e.g. the bare cffi call)."""
    buf, src, dst = fastest_copy_pair(moved)
    memmove = ffi.memmove

    def floor(n: int, buf: object = buf) -> None:
        for _ in range(n):
            memmove(dst, src, moved)

    rows: dict[str, list[float]] = {"floor": [], "switch": [], **{k: [] for k in others}}
    for _ in range(rounds):
        rows["floor"].append(_per_call_ns(floor, calls))
        m = _per_call_ns(marks, calls)
        rows["switch"].append(_per_call_ns(switches, calls) - m)
        for k, fn in others.items():
            rows[k].append(_per_call_ns(fn, calls) - m)
    out = {"bytes_per_switch": moved, "floor_ns": statistics.median(rows["floor"]),
           "floor_ns_p99": percentile(rows["floor"], 0.99)}
    for k in ["switch", *others]:
        ratios = [x / f for x, f in zip(rows[k], rows["floor"])]
        out.update({f"{k}_ns": statistics.median(rows[k]), f"{k}_ns_p99": percentile(rows[k], 0.99),
                    f"{k}_ratio": statistics.median(ratios), f"{k}_ratio_p99": percentile(ratios, 0.99),
                    f"{k}_ratio_min": min(ratios), f"{k}_ratio_max": max(ratios)})
    for k in others:            # each other way of calling against the switch itself, round by round
        vs = [x / s for x, s in zip(rows[k], rows["switch"])]
        out.update({f"{k}_vs_switch": statistics.median(vs), f"{k}_vs_switch_min": min(vs),
                    f"{k}_vs_switch_max": max(vs)})
    return out


def python_switch(layout: str = "x86_64", machines: int = 2, calls: int = 20000, rounds: int = 7,
                  dirty: str = "all", active: int | None = None) -> dict:
    """Pcpu.switch, and the bare cffi call, against one ffi.memmove of the bytes each switch moves."""
    rig = Rig(layout, machines, active)
    pcpu, path, slots = rig.pcpu, rig.path, rig.slots
    mask = rig.layout.all_groups if dirty == "all" else 0
    h, mark = pcpu.handle, lib.vsw_pcpu_mark_dirty
    mark(h, mask)
    s = pcpu.switch(path, 1, slots[1])
    moved = s.bytes_saved + s.bytes_loaded
    pcpu.switch(path, 2, slots[0])
    # (from owner, to slot) for each step of the round robin, ending where it began
    steps = [(slots[i].owner, slots[(i + 1) % len(slots)]) for i in range(len(slots))]
    # the switcher's call alone, on the context handles Pcpu.switch keeps
    handle = {s.owner: pcpu._handle_of(path, s.index, s.owner) for s in slots}
    bare_steps = [(handle[a], handle[b.owner]) for a, b in steps]
    bare_switch, out = pcpu._switcher.switch, SwitchStats()

    def wrapped(n: int) -> None:
        sw = pcpu.switch
        for _ in range(n // len(steps)):
            for frm, to in steps:
                mark(h, mask)
                sw(path, frm, to)

    def bare(n: int) -> None:
        for _ in range(n // len(steps)):
            for fh, th in bare_steps:
                mark(h, mask)
                bare_switch(fh, th, None, out)

    def marks(n: int) -> None:
        for _ in range(n):
            mark(h, mask)

    calls -= calls % len(steps)
    out = against_floor(wrapped, marks, moved, calls, rounds, raw_call=bare)
    rig.close()
    return {"layout": layout, "machines": machines, "active": len(slots), "dirty": dirty, **out}


def _switch_loop(sw: Callable, a: object, b: object, use: str,
                 dirty: tuple[Callable, object, int] | None) -> Callable[[int], None]:
    """n switches a <-> b through ``sw``, one tight loop per way of calling (a
    branch per switch would be timed too): dropping the stats (after marking
    the registers dirty, when ``dirty`` = (mark, pcpu, mask)), keeping them (``use`` "keep"), or
    reading one field of each ("read")."""
    def drop(n: int) -> None:
        for _ in range(n // 2):
            sw(a, b)
            sw(b, a)

    mark, h, mask = dirty or (None, None, 0)

    def drop_dirty(n: int) -> None:
        for _ in range(n // 2):
            mark(h, mask)       # type: ignore[misc]
            sw(a, b)
            mark(h, mask)       # type: ignore[misc]
            sw(b, a)

    def keep(n: int) -> None:
        for _ in range(n // 2):
            st = sw(a, b)
            st = sw(b, a)
        del st

    def read(n: int) -> None:
        x = 0.0
        for _ in range(n // 2):
            x += sw(a, b).modeled_ns
            x += sw(b, a).modeled_ns

    return {"": drop_dirty if dirty else drop, "keep": keep, "read": read}[use]


def api_switch(platform: str | None = None, calls: int = 20000, rounds: int = 7, dirty: str = "none",
               vms: int = 2) -> dict:
    """Hypervisor.switch_context between two of ``vms`` VMs against one
    ffi.memmove of the bytes each switch moves (between ``char[]`` buffers);
    beside it the bare cffi call the method makes (what the Python around it
    costs), the module-level ``switch_context``, the method when the caller
    keeps each SwitchStats in a variable, and when it reads one field of each."""
    from .. import api
    with api.open(platform) as hv:
        machines = [hv.create_vm(f"vm{i}") for i in range(max(vms, 2))]
        a, b = machines[-2], machines[-1]
        hv.switch_context(hv.host, a)
        h, mark = hv.pcpu(0).handle, lib.vsw_pcpu_mark_dirty
        mask = hv.layout.all_groups if dirty == "all" else 0
        mark(h, mask)
        s = hv.switch_context(a, b)
        moved, path = s.bytes_saved + s.bytes_loaded, s.path
        hv.switch_context(b, a)
        del s

        def timed(sw: Callable, use: str = "") -> Callable[[int], None]:
            return _switch_loop(sw, a, b, use, (mark, h, mask) if mask else None)

        def marks(n: int) -> None:
            for _ in range(n if mask else 0):
                mark(h, mask)

        # the switcher's C call alone, filling one SwitchStats: no Python frame, no allocation
        bare_switch, st = hv._switcher.switch, SwitchStats()

        def bare(n: int) -> None:
            for _ in range(n // 2):
                bare_switch(a, b, None, st)
                bare_switch(b, a, None, st)

        def bare_dirty(n: int) -> None:
            for _ in range(n // 2):
                mark(h, mask)
                bare_switch(a, b, None, st)
                mark(h, mask)
                bare_switch(b, a, None, st)

        method = hv.switch_context
        others = {"module": timed(api.switch_context), "bare": bare_dirty if mask else bare}
        if not mask:                    # keeping and reading, on the clean switch
            others.update(keep=timed(method, "keep"), read=timed(method, "read"))
        out = against_floor(timed(method), marks, moved, calls - calls % 2, rounds, **others)
    return {"platform": platform or "reference", "path": path, "layout": hv.layout.name, "dirty": dirty,
            "vms": vms, **out}


def c_switch(layout: str = "x86_64", machines: int = 2, switches: int = 200000, rounds: int = 5,
             dirty: str = "all", active: int | None = None) -> dict:
    """The switch loop in C against memcpy of the same bytes; speed = memcpy time / switch time."""
    rig = Rig(layout, machines, active)
    mask = rig.layout.all_groups if dirty == "all" else 0
    slots = ffi.new("uint32_t[]", [s.index for s in rig.slots])
    owners = ffi.new("uint64_t[]", [s.owner for s in rig.slots])
    res = ffi.new("struct vsw_bench_result *")
    rows = []
    for _ in range(rounds):
        r = lib.vsw_bench_switch_loop(rig.pcpu.handle, rig.path.handle, slots, owners, len(rig.slots), switches,
                                      mask, res)
        if r < 0:
            raise OSError(-r, "bench loop failed")
        rows.append((res.switch_ns / switches, res.memcpy_ns / switches, res.bytes / switches,
                     res.data_ns / switches, res.atomics_ns / switches))
    rig.close()
    return {
        "layout": layout, "machines": machines, "active": len(rig.slots), "dirty": dirty,
        "bytes_per_switch": rows[0][2],
        "switch_ns": statistics.median(r[0] for r in rows),
        "memcpy_ns": statistics.median(r[1] for r in rows),
        "memcpy_speed_fraction": statistics.median(r[1] / r[0] for r in rows),
        # the breakdown: the checked copies alone, the rest of the switch (gate,
        # claim, commit, cost model, stats), and the atomics within that rest
        "data_ns": statistics.median(r[3] for r in rows),
        "bookkeeping_ns": statistics.median(r[0] - r[3] for r in rows),
        "atomics_ns": statistics.median(r[4] for r in rows),
        "data_speed_fraction": statistics.median(r[1] / r[3] for r in rows),
    }


def report(quick: bool = False) -> dict:
    """Every emulator-speed figure of the foundation, as one document."""
    scale = 0.2 if quick else 1.0
    py_calls, c_calls = int(20000 * scale), int(200000 * scale)
    return {
        "api": [api_switch(None, py_calls, dirty=d) for d in ("none", "all")] +
               [api_switch("aarch64", py_calls, dirty=d) for d in ("none", "all")],
        "python": [python_switch(lay, 2, py_calls, dirty=d) for lay in ("x86_64", "aarch64") for d in ("all", "none")],
        "c": [c_switch(lay, 2, c_calls, dirty=d) for lay in ("x86_64", "aarch64") for d in ("all", "none")],
        # 2 busy machines among 2 or 10,000 (lookups must not grow), then a cold
        # round robin over all 10,000 against a floor with the same footprint
        "flat": {
            "python": [python_switch("x86_64", m, py_calls, active=2) for m in (2, 10000)],
            "c": [c_switch("x86_64", m, c_calls, active=a) for m, a in ((2, 2), (10000, 2), (10000, 10000))],
        },
    }


def _ratio(row: dict, key: str) -> str:
    return f"{row[key]:.2f}" if key in row else "-"


def format_report(rep: dict) -> str:
    lines = ["API: Hypervisor.switch_context VM<->VM vs one ffi.memmove of the same bytes between char[] buffers",
             "(medians of interleaved rounds; ratios to the floor - 'bare': the switcher's C call alone, filling one"
             " SwitchStats - and module-level to the method)",
             f"  {'platform':10} {'path':6} {'dirty':5} {'bytes':>6} {'floor ns':>9} {'switch ns':>10} "
             f"{'ratio (min-max)':>18} {'bare':>5} "
             f"{'kept':>6} {'read':>6} {'module':>7}"]
    for r in rep["api"]:
        lines.append(f"  {r['platform']:10} {r['path']:6} {r['dirty']:5} {r['bytes_per_switch']:6} {r['floor_ns']:9.0f} "
                     f"{r['switch_ns']:10.0f} {r['switch_ratio']:6.2f} ({r['switch_ratio_min']:.2f}-"
                     f"{r['switch_ratio_max']:.2f}) {r['bare_ratio']:5.2f} {_ratio(r, 'keep_ratio'):>6} "
                     f"{_ratio(r, 'read_ratio'):>6} {r['module_vs_switch']:7.2f}")
    lines += ["Python: Pcpu.switch vs one ffi.memmove of the same bytes (medians of interleaved rounds)",
             f"  {'layout':8} {'dirty':5} {'bytes':>6} {'floor ns':>9} {'switch ns':>10} {'ratio':>6} "
             f"{'bare call':>9} {'ratio':>6}"]
    for r in rep["python"]:
        lines.append(f"  {r['layout']:8} {r['dirty']:5} {r['bytes_per_switch']:6} {r['floor_ns']:9.0f} "
                     f"{r['switch_ns']:10.0f} {r['switch_ratio']:6.2f} {r['raw_call_ns']:9.0f} {r['raw_call_ratio']:6.2f}")
    lines += ["C: switch loop vs memcpy of the same bytes (speed = memcpy time / switch time), and where the",
              "switch's time goes: its checked copies alone (data), the rest (bookkeeping: gate, claim, commit,",
              "cost model, stats), and the atomic operations within that rest, alone",
              f"  {'layout':8} {'dirty':5} {'bytes':>6} {'switch ns':>10} {'memcpy ns':>10} {'speed':>6} "
              f"{'data ns':>8} {'speed':>6} {'bookkeeping':>11} {'atomics':>8}"]
    for r in rep["c"]:
        lines.append(f"  {r['layout']:8} {r['dirty']:5} {r['bytes_per_switch']:6.0f} {r['switch_ns']:10.1f} "
                     f"{r['memcpy_ns']:10.1f} {r['memcpy_speed_fraction']:6.2f} {r['data_ns']:8.1f} "
                     f"{r['data_speed_fraction']:6.2f} {r['bookkeeping_ns']:11.1f} {r['atomics_ns']:8.1f}")
    lines.append("Flat in the machine count (x86_64, all dirty; 'active' machines switched round-robin):")
    for r in rep["flat"]["python"]:
        lines.append(f"  python {r['machines']:6} machines, {r['active']:5} active: {r['switch_ns']:7.0f} ns "
                     f"({r['switch_ratio']:.2f}x floor)")
    for r in rep["flat"]["c"]:
        lines.append(f"  C      {r['machines']:6} machines, {r['active']:5} active: {r['switch_ns']:7.1f} ns "
                     f"({r['memcpy_speed_fraction']:.2f} of memcpy speed, floor with the same footprint)")
    return "\n".join(lines)
