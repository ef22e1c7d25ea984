"""``pyvswitch mrc TRACE-or-GRID``: LRU's hit rate at every store capacity in one pass.

Mattson's stack algorithm: LRU has the inclusion property (a store of C + 1
contexts holds whatever one of C holds), so one pass over the loads, keeping
the machines in order of their last load, gives each load its stack distance
(how many distinct machines were loaded since its machine last was, plus one);
the load hits every store of at least that many contexts.  The hit rate at
capacity C is the share of counted loads with a distance of at most C.

Exact for what a sweep point with ``policy = "lru"``, ``start = "cold"`` and
one PCPU counts (LRU here goes by the order of loads): the same loads, the
first (and ``warmup`` more) not counted, each capacity from 2 up (a store of
one context cannot hold the machine running and the next).  With several PCPUs
(a trace) the contexts running on the others cannot be evicted, which the
stack does not know: the curve is then an approximation, and says so.

Beyond ``exact_limit`` loads it samples (SHARDS, Waldspurger et al., FAST'15):
only the loads of machines whose hash falls under a threshold, distances
scaled by the rate; the error is measured, not assumed - the sampled curve
against the exact one over the first ``exact_limit`` loads - and stated.
"""
from __future__ import annotations

import errno
import hashlib
import itertools
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import VswError
from .contention import _loads

#: Loads an exact pass takes by default; beyond it SHARDS samples.
EXACT_LIMIT = 10**6
#: SHARDS's sampling rate beyond EXACT_LIMIT loads.
SHARDS_RATE = 0.1


@dataclass
class Curve:
    """A miss-ratio curve: the hit rate at each capacity, and how it was made."""

    source: str
    loads: int                  # counted
    machines: int
    method: str                 # "mattson" or "shards"
    exact: bool                 # false: sampled, or several PCPUs (running contexts pinned)
    hit_rate: dict[int, float]  # capacity -> hit rate
    rate: float = 1.0           # SHARDS sampling rate
    error: float | None = None  # SHARDS: max |sampled - exact| over the first exact_limit loads
    note: str = ""
    group: dict[str, Any] = field(default_factory=dict)   # a grid's axes this curve is for

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["hit_rate"] = [{"capacity": c, "hit_rate": h} for c, h in sorted(self.hit_rate.items())]
        return d


def distances(loads: list[int], skip: int = 0, stays: bool = True) -> tuple[dict[int, int], int, int]:
    """Stack distances of ``loads`` (first ``skip`` not counted): a histogram
    distance -> counted loads (0: a machine's first load, a miss at any
    capacity), the counted loads, the distinct machines.

    In O(n log n) (Bennett and Kruskal's tree of last uses, a Fenwick tree):
    a load's distance is one plus the machines whose last load came after its
    machine's, counted over the loads' positions - a list of the stack searched
    per load was O(n x machines), hours for a trace of 10^6 distinct names.
    ``stays``: a load of the machine loaded just before is a stay, not a load
    (False: ``loads`` are loads already - a SHARDS sample, whose consecutive
    repeats are reuses across machines left out of it)."""
    tree = [0] * (len(loads) + 1)               # 1 at each machine's last load (positions 1..)
    last: dict[int, int] = {}
    hist: dict[int, int] = {}
    prev = None
    t = counted = 0
    size = len(loads)
    for n, m in enumerate(loads):
        if m == prev and stays:
            continue                            # a stay, not a load
        prev = m
        t += 1
        was = last.get(m)
        if was is None:
            d = 0
        else:
            d = 1                               # ones in (was, t): sum(t - 1) - sum(was)
            i = t - 1
            while i > 0:
                d += tree[i]
                i &= i - 1
            i = was
            while i > 0:
                d -= tree[i]
                i &= i - 1
            i = was
            while i <= size:
                tree[i] -= 1
                i += i & -i
        i = t
        while i <= size:
            tree[i] += 1
            i += i & -i
        last[m] = t
        if n >= skip:
            hist[d] = hist.get(d, 0) + 1
            counted += 1
    return hist, counted, len(last)


def curve_of(hist: dict[int, int], counted: int, capacities: list[int], scale: float = 1.0) -> dict[int, float]:
    """Hit rate at each capacity from a histogram of distances (scaled by ``scale``: SHARDS):
    one cumulative pass over the distances, a binary search per capacity."""
    import bisect
    ds = sorted((d * scale, k) for d, k in hist.items() if d)
    keys = [d for d, _ in ds]
    cum = list(itertools.accumulate(k for _, k in ds))
    out = {}
    for c in capacities:
        j = bisect.bisect_right(keys, c)
        out[c] = (cum[j - 1] if j else 0) / counted if counted else 0.0
    return out


def _counted(loads: list[int], skip: int) -> int:
    """Loads counted (stays dropped, the first ``skip`` not counted)."""
    return sum(1 for n, m in enumerate(loads) if n >= skip and (n == 0 or loads[n - 1] != m))


def _sampled(loads: list[int], skip: int, rate: float) -> tuple[dict[int, int], int]:
    """SHARDS-adj: the loads of machines whose hash falls under ``rate``, distances
    among them; the sample's shortfall (or excess) against rate x the loads, which
    hot machines in or out of the sample make, added to its shortest distance."""
    keep = {m for m in set(loads) if int.from_bytes(hashlib.blake2b(str(m).encode(), digest_size=8).digest(),
                                                    "little") < rate * 2**64}
    sub, sub_skip, prev = [], 0, None
    for n, m in enumerate(loads):
        if m == prev:
            continue                            # stays are no loads, sampled or not
        prev = m
        if m in keep:
            sub.append(m)
            sub_skip += n < skip
    hist, counted, _ = distances(sub, sub_skip, stays=False)
    expected = _counted(loads, skip) * rate
    short = min((d for d in hist if d), default=None)
    if short is not None:
        hist[short] = max(0.0, hist[short] + expected - counted)
    return hist, max(expected, 1e-12)


def mrc(loads: list[int], skip: int = 0, capacities: list[int] | None = None, exact_limit: int = EXACT_LIMIT,
        rate: float = SHARDS_RATE, source: str = "", exact_pcpus: bool = True) -> Curve:
    """The LRU miss-ratio curve of ``loads`` (machine numbers in load order), the
    first ``skip`` uncounted: exact up to ``exact_limit`` loads, SHARDS beyond."""
    if not 0 < rate <= 1:
        raise VswError(errno.EINVAL, f"the SHARDS rate is in (0, 1], got {rate!r}")
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise VswError(errno.EINVAL, f"the warm-up is a number of switches, 0 or more, got {skip!r}")
    if capacities and min(capacities) < 2:
        raise VswError(errno.EINVAL, f"capacities are 2 or more (a store of one context cannot hold the machine "
                                     f"running and the next), got {min(capacities)}")
    machines = len(set(loads))
    caps = capacities or list(range(2, machines + 1))
    if len(loads) <= exact_limit or rate == 1:
        hist, counted, machines = distances(loads, skip)
        return Curve(source, counted, machines, "mattson", exact_pcpus, curve_of(hist, counted, caps),
                     note="" if exact_pcpus else "several PCPUs: their running contexts cannot be evicted, "
                                                 "which a stack does not model - approximate")
    hist, counted = _sampled(loads, skip, rate)
    # the error, measured: sampled against exact over a prefix both can afford
    head = loads[:exact_limit]
    eh, ec, _ = distances(head, min(skip, len(head)))
    sh, sc = _sampled(head, min(skip, len(head)), rate)
    exact, approx = curve_of(eh, ec, caps), curve_of(sh, sc, caps, 1 / rate)
    err = max(abs(exact[c] - approx[c]) for c in caps) if caps else 0.0
    return Curve(source, _counted(loads, skip), machines, "shards", False, curve_of(hist, counted, caps, 1 / rate),
                 rate=rate,
                 error=err, note=f"SHARDS at rate {rate}: max |error| {err:.4f} against the exact pass over the "
                                 f"first {len(head)} loads")


def of_trace(path: str, warmup: int = 0, **kw: Any) -> Curve:
    """The curve of a schedule file (workloads.read_schedule), its switches in order."""
    from ..workloads import read_schedule
    from .points import check_trace
    check_trace(path)
    sched = read_schedule(path)
    if not sched:
        raise VswError(errno.EINVAL, f"{path}: no switches in it")
    names: dict[str, int] = {}
    loads = [names.setdefault(m, len(names)) for _, m in sched]
    pcpus = len({p for p, _ in sched})
    return mrc(loads, warmup, source=os.fspath(path), exact_pcpus=pcpus == 1, **kw)


#: The axes that shape a point's loads, which one curve is per combination of.
LOAD_AXES = ("schedule", "vms", "seed", "repeats", "warmup", "switches", "zipf_s", "burst_len", "trace")


def of_grid(path: str, **kw: Any) -> list[Curve]:
    """A curve for each combination of a grid's load-shaping axes, at the grid's
    capacities (its LRU, one-PCPU points; taken as a cold start), averaged over
    its seeds as the sweep averages them."""
    from .sweep import load_grid
    points = load_grid(path)
    if any(p["pcpus"] != 1 and not p["trace"] for p in points):
        raise VswError(errno.EINVAL, f"{path}: one pass needs the order of loads before the run - pcpus = 1 "
                                     "(several PCPUs interleave by model time, which the costs decide), or a trace")
    out = []
    key = lambda p: tuple(p[a] for a in LOAD_AXES)      # noqa: E731
    for k, group in itertools.groupby(sorted(points, key=lambda p: repr(key(p))), key=lambda p: repr(key(p))):
        ps = list(group)
        p = ps[0]
        every = p["vms"] or 2                   # capacity 0: every machine
        if p["trace"]:                          # ... of the trace's, at least
            from ..workloads import read_schedule
            from .points import check_trace
            check_trace(p["trace"])
            every = max(p["vms"], len({m for _, m in read_schedule(p["trace"])}))
        caps = sorted({q["capacity"] or every for q in ps})
        if p["trace"]:
            c = of_trace(p["trace"], p["warmup"], capacities=caps, **kw)
        else:
            vms = p["vms"] or 2
            curves = []
            for r in range(p["repeats"]):
                loads = _loads(p["schedule"], vms, 1, p["warmup"] + p["switches"] + 1, p["seed"] + r, p["zipf_s"],
                               p["burst_len"])[0]
                curves.append(mrc(loads[:p["warmup"] + p["switches"] + 1], 1 + p["warmup"], caps, source=path, **kw))
            c = curves[0]
            c.hit_rate = {cap: sum(x.hit_rate[cap] for x in curves) / len(curves) for cap in caps}
        c.group = {a: p[a] for a in LOAD_AXES}
        if any(q["capacity"] == 0 for q in ps):
            c.note = (c.note + "; " if c.note else "") + f"capacity 0 (every machine) is {every}"
        if any(q["start"] == "warm" for q in ps):
            c.note = (c.note + "; " if c.note else "") + "taken as start = cold (a warm store differs per capacity)"
        out.append(c)
    return out
