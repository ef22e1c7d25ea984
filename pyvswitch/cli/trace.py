"""pyvswitch trace: the bus transactions of a run of switches as Chrome
trace-event JSON (opens in Perfetto and chrome://tracing).

One process, the PCPU; one track for its switches (each a parent slice with the
VM exit and entry inside) and one per bus, where each burst (or, on the memory
path, each group's run of register stores) is a slice inside a copy of its
switch's slice, carrying bytes, direction and the machines involved.
"""
from __future__ import annotations

import errno
import json
import os
from typing import Any

from .. import api
from ..errors import MAX_DEMO_VMS, MAX_TRACE_SWITCHES, check_int_in, check_uint
from ..hw import SwitchStats, Trace, TraceRecord, VswError

TRACKS = {"pcpu": 1, "storage": 2, "memory": 3}


def chrome_trace(records: list[TraceRecord], names: dict[int, str], layout_groups: list[str],
                 meta: dict[str, Any]) -> dict[str, Any]:
    """Chrome trace-event JSON for a list of trace records (times in model ns)."""
    def name(owner: int) -> str:
        return names.get(owner, "idle" if owner == 0 else f"machine {owner}")

    ev: list[dict[str, Any]] = [
        {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "pcpu0 (modelled time)"}},
        {"ph": "M", "pid": 1, "tid": TRACKS["pcpu"], "name": "thread_name", "args": {"name": "switches"}},
        {"ph": "M", "pid": 1, "tid": TRACKS["storage"], "name": "thread_name", "args": {"name": "storage bus"}},
        {"ph": "M", "pid": 1, "tid": TRACKS["memory"], "name": "thread_name", "args": {"name": "memory bus"}},
    ]
    switches = {r.seq: r for r in records if r.kind == "switch"}
    buses_of: dict[int, set[str]] = {}
    for r in records:
        if r.kind == "burst":
            buses_of.setdefault(r.seq, set()).add(r.bus)
    for seq, sw in sorted(switches.items()):
        label = f"switch {name(sw.from_owner)} -> {name(sw.to_owner)}"
        args = {"seq": seq, "from": name(sw.from_owner), "to": name(sw.to_owner), "bytes": sw.bytes}
        for track in ["pcpu"] + sorted(buses_of.get(seq, ())):
            ev.append({"ph": "X", "pid": 1, "tid": TRACKS[track], "name": label, "cat": "switch",
                       "ts": sw.start_ns / 1000.0, "dur": (sw.end_ns - sw.start_ns) / 1000.0, "args": args})
    for r in records:
        if r.seq not in switches or r.kind == "switch":
            continue
        common = {"ph": "X", "pid": 1, "ts": r.start_ns / 1000.0, "dur": (r.end_ns - r.start_ns) / 1000.0}
        if r.kind == "exit_entry":
            ev.append({**common, "tid": TRACKS["pcpu"], "cat": "exit_entry",
                       "name": "VM exit" if r.dir == "save" else "VM entry", "args": {"seq": r.seq}})
        else:
            group = layout_groups[r.group] if r.group < len(layout_groups) else str(r.group)
            unit = "burst" if r.bus == "storage" else f"{r.count} stores" if r.dir == "save" else f"{r.count} loads"
            ev.append({**common, "tid": TRACKS[r.bus], "cat": r.dir,
                       "name": f"{r.dir} {r.bytes} B ({unit})",
                       "args": {"seq": r.seq, "bytes": r.bytes, "dir": r.dir, "transactions": r.count,
                                "first_group": group, "from": name(r.from_owner), "to": name(r.to_owner)}})
    return {"traceEvents": ev, "displayTimeUnit": "ns", "otherData": meta}


def run_trace(switches: int, out: str | None, platform: str | None = None, fallback: bool = False,
              vms: int = 2, steps: int = 64) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Switches round-robin, traced; writes the JSON to ``out`` (if given);
    returns it with the stats of each switch."""
    check_int_in(switches, "switches", 1, MAX_TRACE_SWITCHES)
    if out is not None and not isinstance(out, str):
        raise VswError(errno.EINVAL, f"out is a file name (or None: not written), got {type(out).__name__}")
    if out:                         # checked before the run, not after it
        if os.path.isdir(out):
            raise VswError(errno.EISDIR, f"--out {out}: is a directory; expected a file to write")
        if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
            raise VswError(errno.ENOENT, f"--out {out}: No such file or directory (its directory does not exist)")
    check_int_in(vms, "vms", 1, MAX_DEMO_VMS)
    check_uint(steps, "steps", 32)
    with api.open(platform) as hv:
        if fallback:
            hv.unbind("mover")
        machines = [hv.host] + [hv.create_vm(f"vm{i + 1}") for i in range(vms)]
        trace = Trace(capacity=max(1024, switches * 48))
        pcpu = hv.pcpu(0)
        pcpu.set_trace(trace)
        stats: list[SwitchStats] = []
        try:
            for i in range(switches):
                hv.run(steps)
                stats.append(hv.switch_context(machines[i % len(machines)], machines[(i + 1) % len(machines)]))
            records = trace.records()
        finally:
            pcpu.set_trace(None)
        first_seq = min((r.seq for r in records if r.kind == "switch"), default=0)
        records = [r for r in records if r.seq >= first_seq]
        names = {m.id: m.name for m in machines}
        doc = chrome_trace(records, names, [g.name for g in hv.layout.groups],
                           {"platform": hv.platform.name, "path": stats[-1].path, "switches": switches,
                            "layout": hv.layout.name, "dropped_records": trace.dropped})
        per_switch = [dict(s.as_dict(), seq=first_seq + i) for i, s in enumerate(stats)]
    if out:
        with open(out, "w") as f:
            json.dump(doc, f)
    return doc, per_switch
