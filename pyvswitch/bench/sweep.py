"""``pyvswitch sweep GRID``: a design sweep over the model's parameters.

GRID is a TOML file of axes, each a list of values (a single value is fixed):

    pcpus = [1, 2, 4]              # PCPUs switching at once on one storage bus
    max_burst = [512, 8192]        # the mover
    utilisation = [0.0, 0.5]       # memory-bus load, for the prior art's price
    switches = 2000                # per PCPU, per point (counted)
    warmup = 500                   # per PCPU, run first, not counted
    start = "warm"                 # or "cold": the store empty at the start
    repeats = 5                    # seeds per point: mean and 95% CI across them
    vms = 64                       # machines ...
    capacity = [8, 16, 32, 64]     # ... through a store of this many contexts (a cache over MEM)
    policy = ["lru", "clock"]
    schedule = "zipf"              # round-robin, uniform, zipf or bursts
    zipf_s = [0.8, 1.2]            # the zipf exponent; burst_len the bursts' length
    trace = ["a.csv"]              # or schedule files (workloads.read_schedule) instead

Every combination is a point (``points.AXES``; each axis bounded by
``points.BOUNDS`` or the schema, the grid by ``MAX_POINTS`` and
``MAX_SWITCHES``: beyond them EINVAL before any point runs).  Each runs the
emulator (``contention.switch_costs``) once per seed and records the mean of
p50/p99/max and of the modelled switch's mean, the prior art's p50, the hit
rate and write-backs per switch, with 95% confidence intervals across seeds,
and its provenance: pyvswitch's version, the C core's and the model's hashes,
the platform's canonical parameters.  A point that fails is a row with its
error.  Points run on every local core by default, or on a Dask cluster
(``--scheduler ADDRESS``, the ``cluster`` extra); each row is appended to the
table (CSV) as its point finishes, keyed by its parameters, so an interrupted
sweep started again computes only what is missing (a torn last row is computed
again); a table from another version of the model is refused unless
``resume_any``.  One sweep at a time writes a table (a lock beside it).
SIGINT/SIGTERM stop the workers and raise ``Interrupted``: finished rows stay.
"""
from __future__ import annotations

import csv
import errno
import fcntl
import itertools
import json
import math
import os
import signal
import sys
import threading
import tomllib
from collections.abc import Callable, Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import VswError, read_regular_file
from .points import (AXES, BOUNDS, CHOICES, CI, MAX_POINT_SWITCHES, METRICS, RESULTS, SCHEMA_AXES,
                     point_key, provenance, run_point, trace_digest, trace_lines, worker_init)
from .frontier import plot

__all__ = ["AXES", "COLUMNS", "Interrupted", "MAX_POINTS", "MAX_SWITCHES", "RESULTS", "load_grid", "plot",
           "point_key", "read_table", "run_point", "sweep"]

#: A grid's limits: its file, each axis's values, its points, its modelled switches (warm-up and seeds included).
MAX_GRID_BYTES = 1 << 20
MAX_VALUES = 1000
MAX_POINTS = 100_000
MAX_SWITCHES = 2 * 10**9
MAX_WORKERS = 1024
COLUMNS = ["key", *AXES, *RESULTS]
#: The error of a point whose worker died (it, or another point on the same pool): computed again on resume.
DIED = "the worker running it died (killed, or out of memory); a resumed sweep computes it again"


class Interrupted(Exception):
    """A sweep stopped by SIGINT or SIGTERM: the rows finished before are in the table."""

    def __init__(self, signum: int, done: int, total: int, out: str) -> None:
        super().__init__(f"interrupted ({signal.Signals(signum).name}): {done} of {total} points in {out}; "
                         "run the same command again to compute the rest")
        self.signum, self.done, self.total, self.out = signum, done, total, out


def _bad(path: object, what: str) -> VswError:
    return VswError(errno.EINVAL, f"{path}: {what}")


def _short(v: object) -> str:
    """A value for a message: its repr, cut short (a grid of one huge string gave a message as long)."""
    r = repr(v)
    return r if len(r) <= 80 else f"{r[:60]}... ({len(r)} characters)"


def _check_value(path: object, name: str, v: Any) -> None:
    want = AXES[name][0]
    if isinstance(v, bool) or not (isinstance(v, want) or (want is float and isinstance(v, int))):
        raise _bad(path, f"axis {name!r} takes {want.__name__} values, got {_short(v)}")
    if name in CHOICES and v not in CHOICES[name]:
        raise _bad(path, f"axis {name!r} takes {', '.join(CHOICES[name])}; got {_short(v)}")
    if want is float and not math.isfinite(v):
        raise _bad(path, f"axis {name!r} takes finite numbers, got {_short(v)}")
    if name in SCHEMA_AXES and not SCHEMA_AXES[name].accepts(v):
        raise _bad(path, f"axis {name!r} takes {SCHEMA_AXES[name].expected()}, got {_short(v)}")
    if name in BOUNDS and not BOUNDS[name][0] <= v <= BOUNDS[name][1]:
        lo, hi = BOUNDS[name]
        raise _bad(path, f"axis {name!r} takes {lo}..{hi}, got {_short(v)}")
    if name == "trace" and v:
        if len(v) > 4096 or "\0" in v:
            raise _bad(path, f"axis 'trace' takes file names, got {v[:80]!r}")
        trace_digest(_trace_path(path, v))          # there and readable


def _trace_path(grid: object, name: str) -> str:
    """A trace named in a grid: relative to the grid's directory, made absolute (a
    row names the same file whatever directory the sweep is run from)."""
    return os.path.abspath(name if os.path.isabs(name) else os.path.join(os.path.dirname(os.fspath(grid)), name))


def load_grid(path: "str | os.PathLike[str]") -> list[dict[str, Any]]:
    """The points of a grid file: every combination of its axes (the rest at their
    defaults) - or EINVAL, before anything runs, for a grid that is not one or
    asks for more than the limits (``MAX_POINTS``, ``MAX_SWITCHES``, each axis's bounds)."""
    try:                            # a regular file only: never /dev/zero, a FIFO or a descriptor
        raw = read_regular_file(path, "grid", MAX_GRID_BYTES)
    except VswError as exc:
        if exc.errno != errno.EFBIG:
            raise
        raise _bad(path, f"a grid file is at most {MAX_GRID_BYTES} bytes") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _bad(path, f"not UTF-8 text (byte {exc.start}): a grid is a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise _bad(path, f"not valid TOML: {exc}") from None
    axes: dict[str, list[Any]] = {}
    for name, value in doc.items():
        if name not in AXES:
            raise _bad(path, f"unknown axis {_short(name)}; axes are {', '.join(AXES)}")
        values = value if isinstance(value, list) else [value]
        if not values:
            raise _bad(path, f"axis {name!r} takes {AXES[name][0].__name__} values, got an empty list")
        if len(values) > MAX_VALUES:
            raise _bad(path, f"axis {name!r} has {len(values)} values; at most {MAX_VALUES}")
        for v in values:
            _check_value(path, name, v)
        if AXES[name][0] is float:      # 0 and 0.0 (and -0.0) one point: keyed, and read back, as the float 0.0
            values = [float(v) + 0.0 for v in values]
        if len(set(values)) != len(values):
            raise _bad(path, f"axis {name!r} repeats a value: {_short(values)}")
        axes[name] = values
    lists = {n: axes.get(n, [AXES[n][1]]) for n in AXES}
    count = math.prod(len(v) for v in lists.values())
    if count > MAX_POINTS:
        raise _bad(path, f"{count} points; a grid has at most {MAX_POINTS}")
    biggest = (max(lists["switches"]) + max(lists["warmup"])) * max(lists["pcpus"])
    if biggest > MAX_POINT_SWITCHES:
        raise _bad(path, f"a point of {biggest} switches ((switches + warmup) x pcpus); at most {MAX_POINT_SWITCHES}")
    per = (sum(lists["switches"]) * len(lists["warmup"]) + sum(lists["warmup"]) * len(lists["switches"])) \
        * sum(lists["pcpus"]) * sum(lists["repeats"])
    total = per * count // (len(lists["switches"]) * len(lists["warmup"]) * len(lists["pcpus"]) * len(lists["repeats"]))
    traces = lists["trace"]
    if traces != [""]:              # a trace point runs the trace's switches (its lines, at most), not `switches`
        total = total // len(traces) * ("" in traces)
        per_value = count // len(traces) // len(lists["repeats"]) * sum(lists["repeats"])
        for t in traces:
            if t:
                n = trace_lines(_trace_path(path, t))
                if n > MAX_POINT_SWITCHES:
                    raise _bad(path, f"trace {t[:80]!r} has {n} lines; a point holds at most "
                                     f"{MAX_POINT_SWITCHES} switches")
                total += n * per_value
    if total > MAX_SWITCHES:
        raise _bad(path, f"{total:.3g} modelled switches in all (seeds and warm-up included); at most {MAX_SWITCHES:.0e}")
    names = list(AXES)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(lists[n] for n in names))]
    for p in points:
        if p["trace"]:
            p["trace"] = _trace_path(path, p["trace"])
    return points


# --- the table ----------------------------------------------------------------
def _typed(row: dict[str, str]) -> dict[str, Any] | None:
    """A row read back, with numbers as numbers (None where empty); None if it is not a whole row."""
    if None in row or any(v is None for v in row.values()):
        return None                             # too many fields, or too few: not a row we wrote
    out: dict[str, Any] = {}
    try:
        for k, v in row.items():
            if k in AXES:
                out[k] = AXES[k][0](v)
            elif k in METRICS or k in CI:
                out[k] = float(v) if v != "" else None
            elif k == "seeds":
                out[k] = int(v) if v != "" else None
            else:
                out[k] = v
    except ValueError:
        return None
    return out


def read_table(out: str) -> tuple[dict[str, dict[str, Any]], int]:
    """The rows of the table ``out`` by key, typed, and the length of its whole
    rows in bytes (a torn last row - no newline - after it is to be cut off).
    A table of other columns is refused."""
    try:
        with open(out, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}, 0
    whole = data.rfind(b"\n") + 1
    text = data[:whole].decode("utf-8", errors="replace")
    if not text:
        return {}, 0
    reader = csv.DictReader(text.splitlines(keepends=True))
    if reader.fieldnames != COLUMNS:
        raise VswError(errno.EINVAL, f"{out}: not a table of this sweep's columns (another version of pyvswitch, "
                                     "or another file); choose another --out")
    done = {}
    digests: dict[str, str] = {}
    for row in reader:
        typed = _typed(row)
        if typed is None or typed["error"] == DIED:
            continue
        try:
            key = point_key({k: typed[k] for k in AXES}, digests)
        except VswError:            # a row of a trace since moved or deleted: no point of a grid is it now
            continue
        if typed["key"] == key:
            done[key] = typed
    return done, whole


def _check_provenance(out: str, done: dict[str, dict[str, Any]], points: list[dict[str, Any]],
                      prov: dict[str, str], resume_any: bool = False,
                      notice: Callable[[str], None] | None = None) -> None:
    """EINVAL if the table holds rows of another model (version, hashes, or - for
    this grid's points - platform); with ``resume_any``, ``notice`` is told what
    is mixed: how many of this grid's points come from which other model."""
    from .points import platform_of
    mine = {point_key(p): p for p in points}
    mixed: dict[str, int] = {}
    for row in done.values():
        diff = [f"{k} {row[k]} (this one: {prov[k]})" for k in ("pyvswitch", "core_sha", "model_sha")
                if row[k] != prov[k]]
        p = mine.get(row["key"])
        if p is not None and row["platform"] != json.dumps(platform_of(p), sort_keys=True, separators=(",", ":")):
            diff.append("the platform's canonical parameters")
        if diff and not resume_any:
            raise VswError(errno.EINVAL, f"{out} holds rows of another model: {'; '.join(diff)}; "
                                         "choose another --out, or --resume-any to mix them")
        if diff and p is not None:
            what = "; ".join(diff)
            mixed[what] = mixed.get(what, 0) + 1
    if mixed and notice:
        notice(f"{out}: --resume-any kept rows of another model: "
               + "; and ".join(f"{n} of {len(points)} points with {what}" for what, n in mixed.items())
               + " (each row keeps its provenance columns)")


class _Lock:
    """``OUT.lock``, held while a sweep writes ``OUT``: a second sweep on it is refused (EBUSY)."""

    def __init__(self, out: str) -> None:
        self.path = out + ".lock"
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise VswError(errno.EBUSY, f"{out}: another sweep is writing it ({self.path} is locked); "
                                            "wait for it, or choose another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:                    # not a lock file its last holder removed meanwhile
                self.fd = fd
                os.write(fd, f"{os.getpid()}\n".encode())
                return
            os.close(fd)

    def release(self) -> None:
        os.unlink(self.path)
        os.close(self.fd)


# --- where points run ---------------------------------------------------------
class _Stop:
    """SIGINT and SIGTERM noted (in the main thread), for the loops to stop at."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_Stop":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, frame: object) -> None:
        self.signum = self.signum or signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _error_row(point: dict[str, Any], prov: dict[str, str], why: str) -> dict[str, Any]:
    public = {k: v for k, v in point.items() if not k.startswith("_")}
    return {"key": point_key(point), **public, **{k: None for k in RESULTS}, **prov, "platform": "", "error": why}


Rows = Generator[dict[str, Any], None, None]


def _local(todo: list[dict[str, Any]], workers: int, prov: dict[str, str], stop: _Stop) -> Rows:
    """Rows as points finish on a pool of ``workers`` processes; on a stop, the workers are
    killed (none outlives the sweep) and the generator ends."""
    pending = iter(todo)
    pool = ProcessPoolExecutor(workers, initializer=worker_init)
    running: dict[Future[dict[str, Any]], dict[str, Any]] = {}
    try:
        while not stop.signum:
            for p in itertools.islice(pending, max(0, 2 * workers - len(running))):
                running[pool.submit(run_point, p, prov)] = p
            if not running:
                return
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                p = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    yield _error_row(p, prov, DIED)
            if broken:
                _kill(pool)
                for fut, p in running.items():
                    yield _error_row(p, prov, DIED)
                running.clear()
                pool = ProcessPoolExecutor(workers, initializer=worker_init)
    finally:
        _kill(pool)


def _kill(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for pr in procs:
        if pr.is_alive():
            pr.kill()
    pool.shutdown(wait=True, cancel_futures=True)
    for pr in procs:
        pr.join(5)


def _dask(todo: list[dict[str, Any]], scheduler: str, prov: dict[str, str], stop: _Stop) -> Rows:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise VswError(errno.ENOENT, "--scheduler needs dask.distributed: pip install 'pyvswitch[cluster]'") from None
    with Client(scheduler) as client:
        futs = client.map(run_point, todo, prov=prov, pure=False)
        try:
            for fut in dask_completed(futs):
                if stop.signum:
                    return
                yield fut.result()
        finally:
            client.cancel(futs)


def sweep(grid: "str | os.PathLike[str]", out: str, workers: int | None = None, scheduler: str | None = None,
          progress: Callable[[int, int], None] | None = None, resume_any: bool = False,
          platform: "str | os.PathLike[str] | None" = None,
          notice: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Runs the points of ``grid`` not yet in the table ``out`` and appends each
    row as it finishes; returns every row of the grid, in grid order, typed
    (numbers as numbers, None where a failed point has none).  Raises
    ``Interrupted`` on SIGINT/SIGTERM, the finished rows kept.  ``platform``: a
    file from ``pyvswitch calibrate`` whose cached-save prior art the rows price
    the fast path against too (without one: the reference point of docs/guides/architects.md).
    ``notice``: told, with ``resume_any``, which rows it kept from another model."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 1 <= workers <= MAX_WORKERS):
        raise VswError(errno.EINVAL, f"workers is 1..{MAX_WORKERS}, got {workers!r}")
    points = load_grid(grid)
    if platform is not None:
        from .calibrate import calibration_of
        cal = calibration_of(platform)
        if cal is None:
            raise VswError(errno.EINVAL, f"{platform}: no [calibration] in it (write one with pyvswitch calibrate)")
        for p in points:
            p["_calibration"] = cal
    prov = provenance()
    lock = _Lock(out)
    try:
        done, whole = read_table(out)
        _check_provenance(out, done, points, prov, resume_any, notice)
        todo = [p for p in points if point_key(p) not in done]
        with open(out, "a+b") as fb:        # a torn last row (no newline) is cut off: computed again
            if fb.seek(0, os.SEEK_END) != whole:
                fb.truncate(whole)
        with open(out, "a", newline="") as f, _Stop() as stop:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if whole == 0:
                writer.writeheader()
                f.flush()
            pool = max(1, min(workers or os.cpu_count() or 1, len(todo)))     # no more workers than points
            results: Rows = (_dask(todo, scheduler, prov, stop) if scheduler else _local(todo, pool, prov, stop))
            n = 0
            try:
                for row in results:
                    writer.writerow({k: "" if v is None else v for k, v in row.items()})
                    f.flush()
                    done[row["key"]] = row
                    n += 1
                    if progress:
                        progress(n, len(todo))
            finally:
                results.close()             # the workers stopped, whatever happened here
            if stop.signum:
                raise Interrupted(stop.signum, len(points) - len(todo) + n, len(points), out)
    finally:
        lock.release()
    return [done[point_key(p)] for p in points]


def tty_progress(i: int, n: int) -> None:
    if sys.stderr.isatty():
        print(f"\r[{i}/{n}] points", end="\n" if i == n else "", file=sys.stderr, flush=True)
