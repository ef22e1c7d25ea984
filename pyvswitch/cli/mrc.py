"""``pyvswitch mrc TRACE-or-GRID``: LRU's hit rate at every capacity in one pass (bench/mrc.py)."""
from __future__ import annotations

import argparse
import errno
import json
from collections.abc import Callable

from ..errors import VswError


def _caps(text: str) -> list[int]:
    try:
        caps = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise VswError(errno.EINVAL, f"--capacities takes integers separated by commas, got {text!r}") from None
    if not caps or caps[0] < 2 or caps[-1] > 1 << 20:
        raise VswError(errno.EINVAL, f"--capacities are 2..{1 << 20} (a store of one context cannot hold the "
                                     f"machine running and the next: the sweep refuses it), got {text!r}")
    return caps


def run(args: argparse.Namespace) -> int:
    from ..bench import mrc
    if args.exact_limit < 1:
        raise VswError(errno.EINVAL, f"--exact-limit is a positive number of loads, got {args.exact_limit}")
    kw = {"exact_limit": args.exact_limit, "rate": args.rate}
    if args.source.endswith(".toml"):
        if args.capacities or args.warmup:
            raise VswError(errno.EINVAL, "a grid says its capacities and warmup itself")
        curves = mrc.of_grid(args.source, **kw)
    else:
        curves = [mrc.of_trace(args.source, args.warmup, capacities=_caps(args.capacities) if args.capacities
                               else None, **kw)]
    if args.json:
        print(json.dumps([c.as_json() for c in curves], indent=2))
        return 0
    for c in curves:
        group = ", ".join(f"{k}={v}" for k, v in c.group.items() if v not in ("", None))
        print(f"{c.source}{': ' + group if group else ''} - {c.loads} loads counted of {c.machines} machines, "
              f"{c.method}{'' if c.exact else ' (approximate)'}{': ' + c.note if c.note else ''}")
        print(f"  {'capacity':>8} {'LRU hit rate':>12}")
        for cap, h in sorted(c.hit_rate.items()):
            print(f"  {cap:8} {h:12.4f}")
    return 0


def add(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
        verb: Callable[..., argparse.ArgumentParser]) -> None:
    from ..bench.mrc import EXACT_LIMIT, SHARDS_RATE
    m = verb(sub, "mrc", "LRU's hit rate at every store capacity in one pass (Mattson; SHARDS beyond a size)",
             "the curves as JSON", platform_help=None)
    m.add_argument("source", metavar="TRACE-or-GRID", help="a schedule file (pcpu,machine lines) or a sweep grid "
                   "(.toml: a curve per combination of its load-shaping axes, at its capacities)")
    m.add_argument("--capacities", metavar="C1,C2,...", help="a trace's capacities (default 2..its machines)")
    m.add_argument("--warmup", type=int, default=0, help="a trace's first switches not counted (default %(default)s)")
    m.add_argument("--exact-limit", type=int, default=EXACT_LIMIT, help="loads an exact pass takes; beyond, SHARDS "
                   "samples and states its measured error (default %(default)s)")
    m.add_argument("--rate", type=float, default=SHARDS_RATE, help="SHARDS sampling rate (default %(default)s)")
    m.set_defaults(run=run)
