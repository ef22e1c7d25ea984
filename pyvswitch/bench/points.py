"""One point of a design sweep: its axes, their bounds, the run across seeds and
its statistics, and the provenance every row carries.

Kept apart from ``sweep`` (tables, workers, plots) so that the model's hash -
part of every row's provenance - changes when what computes a row changes, and
not when the table or the plot does.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import pathlib
import statistics
from typing import Any

from ..errors import VswError
from ..hw.cache import POLICIES
from ..schema import KINDS
from .contention import SCHEDULES, switch_costs
from .timing import percentile

#: Every axis: its type, default and what it sets.
AXES: dict[str, tuple[type, Any, str]] = {
    "pcpus": (int, 1, "PCPUs switching at once on one storage bus (its masters)"),
    "layout": (str, "x86_64", "register layout"),
    "switches": (int, 1000, "switches per PCPU, counted"),
    "warmup": (int, 0, "switches per PCPU run first and not counted"),
    "start": (str, "warm", "warm: the first `capacity` machines placed in the store; cold: the store empty"),
    "repeats": (int, 1, "seeds per point (seed, seed + 1, ...): mean and 95% CI across them"),
    "seed": (int, 1, "the first seed"),
    "mean_steps": (int, 600, "workload steps between a PCPU's switches, on average"),
    "utilisation": (float, 0.0, "memory-bus load, for the prior art's price"),
    **{n: (int, KINDS["storage-bus"].param(n).default, f"storage bus {n}")
       for n in ("width_bytes", "clock_mhz", "setup_cycles")},
    **{n: (int, KINDS["mover"].param(n).default, f"mover {n}")
       for n in ("max_burst", "write_threshold", "read_threshold", "reaches_dram")},
    "vms": (int, 0, "machines, shared out among the PCPUs (0: two per PCPU; a trace: its machines)"),
    "capacity": (int, 0, "contexts the store holds (0: every machine); fewer make it a cache over MEM"),
    "policy": (str, "lru", "which context the store gives up: " + ", ".join(POLICIES)),
    "schedule": (str, "round-robin", "which machine a PCPU switches to next: " + ", ".join(SCHEDULES)),
    "zipf_s": (float, 1.0, "the zipf schedule's exponent: the k-th machine wanted as 1 / k**s"),
    "burst_len": (int, 8, "the bursts schedule's switches per pair"),
    "trace": (str, "", "a schedule file (pcpu,machine lines: workloads.read_schedule) instead of `schedule`"),
}
CHOICES = {"policy": tuple(POLICIES), "schedule": SCHEDULES, "start": ("warm", "cold"), "layout": ("x86_64", "aarch64")}


#: The axes that are platform parameters: bounded as the schema bounds them.
SCHEMA_AXES = {"utilisation": KINDS["memory-bus"].param("utilisation"),
               **{n: KINDS["storage-bus"].param(n) for n in ("width_bytes", "clock_mhz", "setup_cycles")},
               **{n: KINDS["mover"].param(n) for n in ("max_burst", "write_threshold", "read_threshold",
                                                       "reaches_dram")}}
#: The bounds of every other numeric axis, inclusive: a grid beyond them is refused before any point runs.
BOUNDS: dict[str, tuple[float, float]] = {
    "pcpus": (1, 64), "switches": (1, 10**6), "warmup": (0, 10**6), "repeats": (1, 100), "seed": (0, 2**32),
    "mean_steps": (0, 10**6), "vms": (0, 4096), "capacity": (0, 4096), "zipf_s": (0.0, 10.0),
    "burst_len": (1, 10**6),
}
#: One point's switches (warm-up included, all PCPUs): what its lists of costs may hold.
MAX_POINT_SWITCHES = 4 * 10**6

#: Figures per seed; each row has their mean across seeds and, for two seeds or more, a 95% CI.
METRICS = ("p50_ns", "p99_ns", "max_ns", "mean_ns", "prior_art_p50_ns", "speedup_p50", "hit_rate",
           "writebacks_per_switch", "cached_prior_art_ns", "speedup_cached_mean")
CI = tuple(f"{m}_ci95" for m in METRICS if m != "max_ns")
PROVENANCE = ("pyvswitch", "core_sha", "model_sha", "platform")
RESULTS = (*METRICS, *CI, "seeds", *PROVENANCE, "error")

#: The Python a row's figures come from: its hash is part of every row's provenance.
MODEL_SOURCES = ("bench/points.py", "bench/contention.py", "bench/timing.py", "workloads.py", "schema.py",
                 "errors.py", "hw/*.py")
_PKG = pathlib.Path(__file__).resolve().parent.parent


def _sha(chunks: list[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(hashlib.sha256(c).digest())
    return h.hexdigest()[:16]


def provenance() -> dict[str, str]:
    """pyvswitch's version, a hash of the built C core and one of the model's Python."""
    core = pathlib.Path(_core_file())
    files = sorted(f for pattern in MODEL_SOURCES for f in _PKG.glob(pattern))
    return {"pyvswitch": _version(), "core_sha": _sha([core.read_bytes()]),
            "model_sha": _sha([str(f.relative_to(_PKG)).encode() + b"\0" + f.read_bytes() for f in files])}


def _version() -> str:
    """pyvswitch's version as installed (the package's metadata: no import of the layer above)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("pyvswitch")
    except PackageNotFoundError:
        return "unknown"


def _core_file() -> str:
    """The built C core (hw._ffi loaded it)."""
    import sys
    from ..hw import _ffi  # noqa: F401  (loads it)
    return sys.modules["pyvswitch._vsw"].__file__ or ""


def platform_of(point: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The canonical parameters the point's emulator runs with: the schema's
    defaults of the kinds it uses, overridden by the point's axes."""
    kinds = ("pcpu", "memory-bus", "storage-bus", "mover")
    out = {k: {p.name: p.default for p in KINDS[k].params} for k in kinds}
    out["memory-bus"]["utilisation"] = point["utilisation"]
    out["storage-bus"].update({n: point[n] for n in ("width_bytes", "clock_mhz", "setup_cycles")},
                              masters=point["pcpus"])
    out["mover"].update({n: point[n] for n in ("max_burst", "write_threshold", "read_threshold", "reaches_dram")})
    ns, source = _cached(point)
    out["cached prior art"] = {"save_restore_ns": ns, "source": source}
    return out


def _cached(point: dict[str, Any]) -> tuple[float, str]:
    """The cached prior art's save + restore for a point (its ``_calibration``, else the reference point)."""
    from .calibrate import cached_save_ns
    return cached_save_ns(point.get("_calibration"), KINDS["pcpu"].param("cpu_mhz").default)


#: A trace's largest file: 256 MiB (some 20 million switches; a point holds at most MAX_POINT_SWITCHES).
MAX_TRACE_BYTES = 1 << 28


def check_trace(path: "str | os.PathLike[str]", f: Any = None) -> None:
    """EINVAL unless ``path`` (or the open file ``f``) is a regular file of at most
    ``MAX_TRACE_BYTES``: /dev/zero, a FIFO or a terminal would be read for ever."""
    import stat
    try:
        st = os.fstat(f.fileno()) if f is not None else os.stat(path)
    except OSError as exc:
        raise VswError(exc.errno or errno.ENOENT, f"trace {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise VswError(errno.EINVAL, f"trace {path}: not a regular file (a schedule file: pcpu,machine lines)")
    if st.st_size > MAX_TRACE_BYTES:
        raise VswError(errno.EINVAL, f"trace {path}: {st.st_size} bytes; a trace is at most {MAX_TRACE_BYTES}")


def trace_digest(path: str) -> str:
    """A schedule file's content hash (a point keyed by a trace's name alone would survive edits to it)."""
    check_trace(path)
    try:
        with open(path, "rb") as f:
            check_trace(path, f)
            return hashlib.sha256(f.read(MAX_TRACE_BYTES + 1)).hexdigest()[:16]
    except OSError as exc:
        if isinstance(exc, VswError):
            raise
        raise VswError(exc.errno or errno.ENOENT, f"trace {path}: {exc.strerror}") from None


def trace_lines(path: str) -> int:
    """A schedule file's lines (at most its switches): a grid's bound on a trace point's work."""
    check_trace(path)
    try:
        with open(path, "rb") as f:
            check_trace(path, f)
            data = f.read(MAX_TRACE_BYTES + 1)
    except OSError as exc:
        if isinstance(exc, VswError):
            raise
        raise VswError(exc.errno or errno.ENOENT, f"trace {path}: {exc.strerror}") from None
    return data.count(b"\n") + (not data.endswith(b"\n") and bool(data))


def point_key(point: dict[str, Any], digests: dict[str, str] | None = None) -> str:
    """A point's key: its parameters (and a trace's content), not the model's version.
    ``digests``: the traces' hashes known already (read once per table, not per row)."""
    keyed = {k: v for k, v in point.items() if not k.startswith("_")}
    if point.get("trace"):
        t = point["trace"]
        digest = digests.get(t) if digests is not None else None
        if digest is None:
            digest = trace_digest(t)
            if digests is not None:
                digests[t] = digest
        keyed["trace"] = [t, digest]
    return hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


#: Student's t at 97.5% for 1..30 degrees of freedom (beyond, ``_t975``'s expansion): 95% two-sided.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def _t975(df: int) -> float:
    """Student's t at 97.5% for ``df`` degrees of freedom: the table to 30, then the
    Cornish-Fisher expansion about the normal's 1.959964 (Abramowitz & Stegun
    26.7.5; within 1e-5 from 30 on) - not the normal itself, which is 4% narrow at 31."""
    if df <= len(_T975):
        return _T975[df - 1]
    z, v = 1.959963984540054, float(df)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


def ci95(xs: list[float]) -> float | None:
    """Half the width of the 95% confidence interval of the mean of ``xs`` (Student's t
    with n - 1 degrees of freedom); None for one value."""
    n = len(xs)
    if n < 2:
        return None
    return _t975(n - 1) * statistics.stdev(xs) / math.sqrt(n)


def _trace(path: str) -> tuple[list[tuple[int, int]], int, int]:
    from ..workloads import read_schedule
    check_trace(path)
    sched = read_schedule(path)
    if not sched:
        raise VswError(errno.EINVAL, f"trace {path}: no switches in it")
    names: dict[str, int] = {}
    out = [(p, names.setdefault(m, len(names))) for p, m in sched]
    return out, len(names), max(p for p, _ in sched) + 1


def _one(point: dict[str, Any], seed: int) -> dict[str, float]:
    n = point["pcpus"]
    trace, vms = None, point["vms"]
    if point["trace"]:
        trace, machines, used = _trace(point["trace"])
        if used > n:
            raise VswError(errno.EINVAL, f"trace {point['trace']} switches on {used} PCPUs; the point has pcpus = {n}")
        vms = max(vms, machines)
        if len(trace) > MAX_POINT_SWITCHES:
            raise VswError(errno.EINVAL, f"trace {point['trace']}: {len(trace)} switches, over the "
                                         f"{MAX_POINT_SWITCHES} a point may hold")
    c = switch_costs(n, n, point["switches"] * n, point["layout"],
                     storage={k: point[k] for k in ("width_bytes", "clock_mhz", "setup_cycles")},
                     mover={k: point[k] for k in ("max_burst", "write_threshold", "read_threshold")},
                     utilisation=point["utilisation"], mean_steps=point["mean_steps"], vms=vms,
                     capacity=point["capacity"], policy=point["policy"], schedule=point["schedule"],
                     reaches_dram=bool(point["reaches_dram"]), seed=seed, warmup=point["warmup"],
                     start=point["start"], zipf_s=point["zipf_s"], burst_len=point["burst_len"], trace=trace)
    xs = sorted(c.modeled_ns)
    if not xs:
        raise VswError(errno.EINVAL, "no switch was counted (a trace all warm-up?)")
    p50, prior50 = statistics.median(xs), statistics.median(c.prior_art_ns)
    loads = c.hits + c.misses
    pcpu = KINDS["pcpu"]        # the emulator's PCPU: the schema's defaults, exit + entry the same on both paths
    cached = pcpu.param("exit_entry_cycles").default * 1000.0 / pcpu.param("cpu_mhz").default + _cached(point)[0]
    mean = statistics.fmean(xs)
    return {"p50_ns": p50, "p99_ns": percentile(xs, 0.99), "max_ns": xs[-1], "mean_ns": mean,
            "prior_art_p50_ns": prior50, "speedup_p50": prior50 / p50, "hit_rate": c.hits / loads if loads else 0.0,
            "writebacks_per_switch": c.writebacks / len(xs), "cached_prior_art_ns": cached,
            "speedup_cached_mean": cached / mean}


def run_point(point: dict[str, Any], prov: dict[str, str] | None = None) -> dict[str, Any]:
    """One point, ``repeats`` seeds: the mean of each figure across them and its 95%
    CI - or, for a point that fails (a mover whose bursts break the thresholds:
    E2BIG; anything else), why, in its error column: never an exception."""
    prov = prov or provenance()
    public = {k: v for k, v in point.items() if not k.startswith("_")}
    row: dict[str, Any] = {"key": point_key(point), **public, **{k: None for k in RESULTS}, **prov,
                           "platform": json.dumps(platform_of(point), sort_keys=True, separators=(",", ":")),
                           "error": ""}
    seeds = [point["seed"] + r for r in range(point["repeats"])]
    row["seeds"] = len(seeds)
    try:
        runs = [_one(point, s) for s in seeds]
    except VswError as exc:
        row["error"] = " ".join(str(exc).split())       # one line: a row is one line of the table
        return row
    except (MemoryError, ValueError, OverflowError, OSError, RuntimeError, TypeError) as exc:
        row["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())
        return row
    for m in METRICS:
        xs = [r[m] for r in runs]
        row[m] = statistics.fmean(xs)
        if m != "max_ns":
            row[f"{m}_ci95"] = ci95(xs)
    if len(runs) == 1:
        row.update({m: runs[0][m] for m in METRICS})
    return row


def worker_init() -> None:
    """In a pool's worker: Ctrl-C is the parent's to handle (it stops the workers);
    and a worker dies with its parent, even one killed with SIGKILL (Linux)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)          # PR_SET_PDEATHSIG
        if os.getppid() == 1:                           # the parent died before the prctl
            os._exit(1)
    except (OSError, AttributeError):
        pass
