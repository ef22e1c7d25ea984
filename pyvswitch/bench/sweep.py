"""``pyvswitch sweep GRID``: a design sweep over the model's parameters.

GRID is a TOML file of axes, each a list of values (a single value is fixed):

    pcpus = [1, 2, 4]              # PCPUs switching at once on one storage bus
    max_burst = [512, 8192]        # the mover
    utilisation = [0.0, 0.5]       # memory-bus load, for the prior art's price
    switches = 2000                # per PCPU, per point
    vms = 64                       # machines ...
    capacity = [8, 16, 32, 64]     # ... through a store of this many contexts (a cache over MEM)
    policy = ["lru", "clock"]
    schedule = "zipf"              # round-robin, uniform, zipf or bursts

Every combination is a point; each runs the emulator (``contention.switch_costs``)
and records p50/p99/max and the mean of the modelled switch (the mean weighs hits
and misses as a run pays them), the prior art's p50, the hit rate and
write-backs per switch.  Points
run on every local core by default, or on a Dask cluster (``--scheduler
ADDRESS``, the ``cluster`` extra); each row is appended to the table (CSV) as its
point finishes, keyed by its parameters, so an interrupted sweep started again
computes only what is missing.
"""
from __future__ import annotations

import csv
import errno
import hashlib
import itertools
import json
import os
import statistics
import sys
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from ..errors import VswError
from ..hw.cache import POLICIES
from ..schema import KINDS
from .contention import SCHEDULES, switch_costs
from .report import pyplot
from .timing import percentile

#: Every axis: its type, default and what it sets.
AXES: dict[str, tuple[type, Any, str]] = {
    "pcpus": (int, 1, "PCPUs switching at once on one storage bus (its masters)"),
    "layout": (str, "x86_64", "register layout"),
    "switches": (int, 1000, "switches per PCPU"),
    "mean_steps": (int, 600, "workload steps between a PCPU's switches, on average"),
    "utilisation": (float, 0.0, "memory-bus load, for the prior art's price"),
    **{n: (int, KINDS["storage-bus"].param(n).default, f"storage bus {n}")
       for n in ("width_bytes", "clock_mhz", "setup_cycles")},
    **{n: (int, KINDS["mover"].param(n).default, f"mover {n}")
       for n in ("max_burst", "write_threshold", "read_threshold", "reaches_dram")},
    "vms": (int, 0, "machines, shared out among the PCPUs (0: two per PCPU)"),
    "capacity": (int, 0, "contexts the store holds (0: every machine); fewer make it a cache over MEM"),
    "policy": (str, "lru", "which context the store gives up: " + ", ".join(POLICIES)),
    "schedule": (str, "round-robin", "which machine a PCPU switches to next: " + ", ".join(SCHEDULES)),
}
CHOICES = {"policy": tuple(POLICIES), "schedule": SCHEDULES}
RESULTS = ("p50_ns", "p99_ns", "max_ns", "mean_ns", "prior_art_p50_ns", "speedup_p50", "hit_rate",
           "writebacks_per_switch", "error")


def load_grid(path: "str | os.PathLike[str]") -> list[dict[str, Any]]:
    """The points of a grid file: every combination of its axes (the rest at their defaults)."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise VswError(errno.EINVAL, f"{path}: not valid TOML: {exc}") from None
    axes: dict[str, list[Any]] = {}
    for name, value in doc.items():
        if name not in AXES:
            raise VswError(errno.EINVAL, f"{path}: unknown axis {name!r}; axes are {', '.join(AXES)}")
        values = value if isinstance(value, list) else [value]
        want = AXES[name][0]
        if not values or not all(isinstance(v, want) or (want is float and isinstance(v, int)) for v in values) \
                or any(isinstance(v, bool) for v in values):
            raise VswError(errno.EINVAL, f"{path}: axis {name!r} takes {want.__name__} values, got {value!r}")
        bad = [v for v in values if name in CHOICES and v not in CHOICES[name]]
        if bad:
            raise VswError(errno.EINVAL, f"{path}: axis {name!r} takes {', '.join(CHOICES[name])}; got {bad[0]!r}")
        axes[name] = values
    names = list(AXES)
    lists = [axes.get(n, [AXES[n][1]]) for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]


def point_key(point: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(point, sort_keys=True).encode()).hexdigest()[:12]


def run_point(point: dict[str, Any]) -> dict[str, Any]:
    """One point: the emulator run and its figures - or, for a configuration the
    hardware refuses (a mover whose bursts break the thresholds: E2BIG), why."""
    n = point["pcpus"]
    try:
        c = switch_costs(n, n, point["switches"] * n, point["layout"],
                         storage={k: point[k] for k in ("width_bytes", "clock_mhz", "setup_cycles")},
                         mover={k: point[k] for k in ("max_burst", "write_threshold", "read_threshold")},
                         utilisation=point["utilisation"], mean_steps=point["mean_steps"], vms=point["vms"],
                         capacity=point["capacity"], policy=point["policy"], schedule=point["schedule"],
                         reaches_dram=bool(point["reaches_dram"]))
    except VswError as exc:
        return {"key": point_key(point), **point, **{k: "" for k in RESULTS}, "error": str(exc)}
    xs = sorted(c.modeled_ns)
    p50, prior50 = statistics.median(xs), statistics.median(c.prior_art_ns)
    return {"key": point_key(point), **point, "p50_ns": p50, "p99_ns": percentile(xs, 0.99),
            "max_ns": xs[-1], "mean_ns": statistics.fmean(xs), "prior_art_p50_ns": prior50, "speedup_p50": prior50 / p50,
            "hit_rate": c.hits / len(xs), "writebacks_per_switch": c.writebacks / len(xs), "error": ""}


def _done(out: str) -> dict[str, dict[str, str]]:
    """The rows already in the table, by key (a table of another grid's columns is refused)."""
    if not os.path.exists(out) or os.path.getsize(out) == 0:
        return {}
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ["key", *AXES, *RESULTS]:
            raise VswError(errno.EINVAL, f"{out}: not a table of this sweep's columns; choose another --out")
        return {row["key"]: row for row in reader}


def _local(todo: list[dict[str, Any]], workers: int | None) -> Iterable[dict[str, Any]]:
    with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for fut in as_completed([pool.submit(run_point, p) for p in todo]):
            yield fut.result()


def _dask(todo: list[dict[str, Any]], scheduler: str) -> Iterable[dict[str, Any]]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise VswError(errno.ENOENT, "--scheduler needs dask.distributed: pip install 'pyvswitch[cluster]'") from None
    with Client(scheduler) as client:
        for fut in dask_completed(client.map(run_point, todo, pure=False)):
            yield fut.result()


def sweep(grid: "str | os.PathLike[str]", out: str, workers: int | None = None, scheduler: str | None = None,
          progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Runs the points of ``grid`` not yet in the table ``out`` and appends each
    row as it finishes; returns every row of the grid, in grid order."""
    points = load_grid(grid)
    done = _done(out)
    todo = [p for p in points if point_key(p) not in done]
    new = not done
    with open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["key", *AXES, *RESULTS])
        if new:
            writer.writeheader()
        results = _dask(todo, scheduler) if scheduler else _local(todo, workers)
        for i, row in enumerate(results, 1):
            writer.writerow(row)
            f.flush()
            done[row["key"]] = {k: str(v) for k, v in row.items()}
            if progress:
                progress(i, len(todo))
    return [done[point_key(p)] for p in points]


#: The axes a frontier is drawn against, in order of preference: the first that varies.
FRONTIER_X = ("capacity", "vms", "pcpus", "max_burst", "utilisation", "width_bytes", "mean_steps")


def plot(rows: list[dict[str, Any]], path: str) -> str:
    """The frontier in one PNG: hit rate, and p99 and mean (beside the prior art's p50)
    against the first axis of FRONTIER_X the grid varies, a line for each
    combination of the other axes it varies.  Returns the x axis."""
    plt = pyplot()
    ok = [r for r in rows if not r["error"]]
    if not ok:
        raise VswError(errno.EINVAL, "nothing to plot: every point of the sweep was refused")
    varied = [a for a in AXES if len({r[a] for r in ok}) > 1]
    x = next((a for a in FRONTIER_X if a in varied), varied[0] if varied else "capacity")
    series: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        label = ", ".join(f"{a}={r[a]}" for a in varied if a != x) or "all points"
        series.setdefault(label, []).append(r)
    fig, (hit, p99) = plt.subplots(1, 2, figsize=(13, 5))
    for label, rs in series.items():
        rs.sort(key=lambda r: float(r[x]))
        xs = [float(r[x]) for r in rs]
        hit.plot(xs, [float(r["hit_rate"]) * 100 for r in rs], marker="o", label=label)
        line, = p99.plot(xs, [float(r["p99_ns"]) for r in rs], marker="o", label=f"{label}: p99")
        p99.plot(xs, [float(r["mean_ns"]) for r in rs], marker="s", linestyle="--", color=line.get_color(),
                 label=f"{label}: mean (hits and misses)")
        p99.plot(xs, [float(r["prior_art_p50_ns"]) for r in rs], linestyle=":", color=line.get_color(),
                 label=f"{label}: prior art p50")
    hit.set(xlabel=AXES[x][2], ylabel="loads that found their context in the store (%)", ylim=(0, 105),
            title=f"Hit rate against {x}")
    p99.set(xlabel=AXES[x][2], ylabel="modelled switch latency (ns)", title=f"Switch cost against {x}")
    for ax in (hit, p99):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return x


def tty_progress(i: int, n: int) -> None:
    if sys.stderr.isatty():
        print(f"\r[{i}/{n}] points", end="\n" if i == n else "", file=sys.stderr, flush=True)
