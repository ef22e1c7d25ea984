"""Schedules for the model: which machine each PCPU switches to next.

A schedule is a sequence of ``(pcpu, machine name)`` switches.  Generators
make the usual shapes - round robin, uniform random, Zipf-skewed popularity,
bursts between a hot pair - each PCPU drawing from its own share of the
machines, seeded and so reproducible; ``read_schedule`` reads a hypervisor's
own trace (one ``pcpu,machine`` per line, or JSON lines ``{"pcpu": 0,
"machine": "vm1"}``); ``play`` runs one on a hypervisor and says what the
switches cost.
"""
from __future__ import annotations

import bisect
import errno
import itertools
import json
import os
import random
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .api import Hypervisor
from .bench.timing import percentile
from .errors import MAX_SCHEDULE_BYTES, MAX_SCHEDULE_SWITCHES, VswError, check_uint, decode_text, read_regular_file

Switch = tuple[int, str]


def _shares(names: Sequence[str], pcpus: int) -> list[list[str]]:
    """Each PCPU's machines: every pcpus-th name, so no machine is wanted on two at once."""
    check_uint(pcpus, "pcpus", 16, minimum=1)
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise VswError(errno.EINVAL, f"a schedule takes a sequence of machine names, not {type(names).__name__}")
    names = list(names)
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        raise VswError(errno.EINVAL, "a schedule takes distinct machine names")
    shares = [names[i::pcpus] for i in range(pcpus)]
    if any(len(s) < 2 for s in shares):
        raise VswError(errno.EINVAL, f"{len(names)} machines cannot give each of {pcpus} PCPUs two to switch between")
    return shares


def _interleave(per_pcpu: list[Iterator[str]], count: int) -> Iterator[Switch]:
    check_uint(count, "count", 63)         # now, not at the first draw

    def gen() -> Iterator[Switch]:
        for i in range(count):
            p = i % len(per_pcpu)
            yield p, next(per_pcpu[p])
    return gen()


def _rng(seed: int) -> random.Random:
    """The generators' one source of randomness: an integer seed, nothing else."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise VswError(errno.EINVAL, f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    return random.Random(seed)


def round_robin(names: Sequence[str], count: int, pcpus: int = 1) -> Iterator[Switch]:
    """Each PCPU cycles through its machines."""
    def cycle(share: list[str]) -> Iterator[str]:
        while True:
            yield from share
    return _interleave([cycle(s) for s in _shares(names, pcpus)], count)


def _drawn(names: Sequence[str], count: int, pcpus: int, seed: int, weights_of) -> Iterator[Switch]:
    rng = _rng(seed)

    def draws(share: list[str]) -> Iterator[str]:
        # rng.choices(share, weights)[0], with the running sums taken once: the same draws
        cum = list(itertools.accumulate(weights_of(len(share))))
        total, hi, draw = cum[-1] + 0.0, len(share) - 1, rng.random
        last = None
        while True:
            pick = share[bisect.bisect(cum, draw() * total, 0, hi)]
            if pick != last:        # a switch goes somewhere else
                last = pick
                yield pick
    return _interleave([draws(s) for s in _shares(names, pcpus)], count)


def uniform(names: Sequence[str], count: int, pcpus: int = 1, seed: int = 0) -> Iterator[Switch]:
    """Each switch goes to any other machine of the PCPU's share, equally likely."""
    return _drawn(names, count, pcpus, seed, lambda n: [1.0] * n)


def zipf(names: Sequence[str], count: int, pcpus: int = 1, s: float = 1.0, seed: int = 0) -> Iterator[Switch]:
    """Popularity by rank: the k-th machine of a share is wanted in proportion to 1 / k**s."""
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not 0 <= s <= 10:
        raise VswError(errno.EINVAL, f"zipf exponent s is a number from 0 to 10, got {s!r}")
    return _drawn(names, count, pcpus, seed, lambda n: [1.0 / (k + 1) ** s for k in range(n)])


def bursts(names: Sequence[str], count: int, pcpus: int = 1, burst: int = 8, seed: int = 0) -> Iterator[Switch]:
    """Ping-pong between a random pair of the share for ``burst`` switches, then another pair."""
    check_uint(burst, "burst", 32, minimum=1)
    rng = _rng(seed)

    def pairs(share: list[str]) -> Iterator[str]:
        last = None
        while True:
            a, b = rng.sample(share, 2)
            if a == last:           # the next burst starts somewhere else
                a, b = b, a
            for i in range(burst):
                last = (a, b)[i % 2]
                yield last
    return _interleave([pairs(s) for s in _shares(names, pcpus)], count)


def read_schedule(path: "str | os.PathLike[str]") -> list[Switch]:
    """A schedule file: one switch per line, ``pcpu,machine`` or a JSON object
    ``{"pcpu": N, "machine": "name"}``; blank lines and ``#`` comments skipped.
    EINVAL naming the line for anything else; the file must be a regular file of
    UTF-8 text, at most ``MAX_SCHEDULE_BYTES`` listing at most ``MAX_SCHEDULE_SWITCHES``
    switches (EFBIG beyond; a path, never a file descriptor)."""
    data = read_regular_file(path, "schedule file", MAX_SCHEDULE_BYTES)
    where = os.fsdecode(path)       # read_regular_file took it: a str, bytes or PathLike
    out: list[Switch] = []
    names: dict[str, str] = {}      # one string per machine, however many lines name it
    content = decode_text(data, where, "schedule file")
    for n, line in enumerate(content.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):   # as open() reads
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            if text.startswith("{"):
                obj = json.loads(text)
                pcpu, name = obj["pcpu"], obj["machine"]
            else:
                first, name = (x.strip() for x in text.split(",", 1))
                pcpu = int(first)
            if isinstance(pcpu, bool) or not isinstance(pcpu, int) or pcpu < 0 or not isinstance(name, str) \
                    or not name:
                raise ValueError
        except (ValueError, KeyError, TypeError, IndexError, RecursionError):   # RecursionError: JSON nested deep
            raise VswError(errno.EINVAL, f"{where}, line {n}: expected 'pcpu,machine' or "
                                         f'{{"pcpu": N, "machine": "name"}}, got {text[:80]!r}') from None
        if len(out) == MAX_SCHEDULE_SWITCHES:
            raise VswError(errno.EFBIG, f"{where}, line {n}: a schedule file lists at most "
                                        f"{MAX_SCHEDULE_SWITCHES:,} switches")
        out.append((pcpu, names.setdefault(name, name)))
    return out


@dataclass
class PlayStats:
    """What a schedule did: switches made, steps already where it wanted (stays),
    and the modelled ns of the switches (median, p99, min, max)."""

    switches: int = 0
    stays: int = 0
    paths: dict[str, int] = field(default_factory=dict)
    modeled_ns: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, float]:
        xs = sorted(self.modeled_ns)
        if not xs:
            return {"switches": 0, "stays": self.stays}
        return {"switches": self.switches, "stays": self.stays, "median_ns": statistics.median(xs),
                "p99_ns": percentile(xs, 0.99), "min_ns": xs[0], "max_ns": xs[-1]}


def play(hv: Hypervisor, schedule: Iterable[Switch], steps: int = 0) -> PlayStats:
    """Runs ``schedule`` on ``hv``: before each switch the workload runs ``steps``
    steps on that PCPU's machine; a PCPU that is idle starts the machine.  A step
    that names a machine of no one, or one running on another PCPU, stops with
    the error (and its position) before its own steps run - everything before it
    happened; a switch refused after its steps ran (an injected fault, a full
    store) says so in the error."""
    if not isinstance(hv, Hypervisor):
        raise VswError(errno.EINVAL, f"play runs on a Hypervisor (pyvswitch.open()), not {type(hv).__name__}")
    check_uint(steps, "steps", 64)
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Iterable):
        raise VswError(errno.EINVAL, f"a schedule is an iterable of (pcpu, machine name), not {type(schedule).__name__}")
    out = PlayStats()
    for i, item in enumerate(schedule):
        try:
            pcpu, name = item
        except (TypeError, ValueError):
            raise VswError(errno.EINVAL, f"schedule step {i}: expected (pcpu, machine name), got {item!r:.80}") \
                from None
        ran = None
        try:
            to = hv.machine(name)
            frm = hv.running(pcpu)
            if frm is to:
                out.stays += 1
                continue
            elsewhere = to.pcpu
            if elsewhere is not None:       # refused before its steps run, not after
                raise VswError(errno.EBUSY, f"{name} is running on pcpu{elsewhere}")
            if steps and frm is not None:
                hv.run(steps, pcpu=pcpu)
                ran = frm
            s = hv.switch_context(frm, to, pcpu)
        except VswError as exc:
            why = f"schedule step {i} (pcpu {pcpu}, {name}): {exc.strerror}"
            if ran is not None:
                why += f"; its {steps} workload steps before the switch ran on {ran.name}"
            raise VswError(exc.errno or errno.EINVAL, why) from None
        out.switches += 1
        out.paths[s.path] = out.paths.get(s.path, 0) + 1
        out.modeled_ns.append(s.modeled_ns)
    return out
