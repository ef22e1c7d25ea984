"""``pyvswitch sweep GRID``: the verb over pyvswitch.bench.sweep - its options,
its output as text or JSON (numbers as numbers), its exit status."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

#: The sweep verb's exit status (pyvswitch.cli.EXIT_STATUS).
EXIT = {0: "every point done (a point that failed is a row with its error)", 2: "an error (nothing run)",
        128 + signal.SIGINT: "interrupted by SIGINT, the finished rows kept",
        128 + signal.SIGTERM: "stopped by SIGTERM, the finished rows kept"}


def _line(r: dict[str, Any], shown: list[str]) -> str:
    axes = ", ".join(f"{k}={r[k]}" for k in shown) or "the point"
    if r["error"]:
        return f"  {axes}: refused: {r['error']}"

    def ci(m: str) -> str:
        w = r.get(f"{m}_ci95")
        return f" +-{w:.1f}" if w else ""
    return (f"  {axes}: p50 {r['p50_ns']:.1f}{ci('p50_ns')} ns, p99 {r['p99_ns']:.1f}{ci('p99_ns')} ns, "
            f"mean {r['mean_ns']:.1f}{ci('mean_ns')} ns, hit rate {r['hit_rate']:.3f}; p50 {r['speedup_p50']:.2f}x "
            f"the patent's prior art, mean {r['speedup_cached_mean']:.2f}x a cached XSAVE prior art")


def _check_plot(path: str) -> None:
    """EINVAL (ENOPKG without matplotlib) now for a --plot that could not be written after the sweep:
    a file made (and removed) beside it says so whoever runs it (permissions alone do not, for root)."""
    import errno
    import os
    import tempfile
    from ..bench.report import pyplot
    from ..errors import VswError
    pyplot()
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "a directory")
        if os.path.exists(path):
            with open(path, "ab"):
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=os.path.dirname(os.path.abspath(path)), prefix=".plot-probe-"):
                pass
    except OSError as exc:
        raise VswError(errno.EINVAL, f"--plot {path}: cannot write it ({exc.strerror or exc}); "
                                     "a new or writable file in a writable directory is expected") from None


def run(args: argparse.Namespace) -> int:
    from ..bench.frontier import Target, answer, answer_text, varied
    from ..bench.sweep import Interrupted, plot, sweep, tty_progress
    target = Target.parse(args.target) if args.target is not None else None
    if args.plot:                   # before any point runs, not after the last: a plot it cannot write
        _check_plot(args.plot)
    try:
        rows = sweep(args.grid, args.out, workers=args.workers, scheduler=args.scheduler, progress=tty_progress,
                     resume_any=args.resume_any, platform=args.platform,
                     notice=lambda text: print(f"pyvswitch sweep: {text}", file=sys.stderr))
    except Interrupted as exc:
        print(f"pyvswitch sweep: {exc}", file=sys.stderr)
        return 128 + exc.signum
    if args.plot:
        x = plot(rows, args.plot, target)
        print(f"wrote {args.plot}: hit rate and switch cost against {x}", file=sys.stderr if args.json else sys.stdout)
    answers = answer(rows, target) if target else None
    if args.json:
        print(json.dumps({"rows": rows, "target": answers} if target else rows, indent=2))
    else:
        print(f"{len(rows)} points in {args.out}")
        shown = varied(rows)
        for r in rows:
            print(_line(r, shown))
        if target and answers is not None:
            print("\n".join(answer_text(answers, target)))
    return 0


def add(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
        verb: Callable[..., argparse.ArgumentParser]) -> None:
    """Registers the verb (``verb`` makes a sub-parser with the shared options)."""
    w = verb(sub, "sweep", "a design sweep over a TOML grid of model parameters, on local cores or Dask",
             "every row as JSON (numbers as numbers, null where a failed point has none)",
             platform_help="a platform file from `pyvswitch calibrate`: its cached-save prior art priced too "
                           "(default: the XSAVE reference point of docs/guides/architects.md)")
    w.add_argument("grid", metavar="GRID.toml", help="axes, each a list of values (pyvswitch/bench/sweep.py)")
    w.add_argument("--out", default="sweep.csv", help="the table, appended to as points finish (default %(default)s)")
    w.add_argument("--workers", type=int, help="local processes (default: every core)")
    w.add_argument("--scheduler", metavar="ADDRESS", help="a dask.distributed scheduler (the 'cluster' extra)")
    w.add_argument("--resume-any", action="store_true", help="resume into a table made by another version of the "
                   "model (its rows keep their provenance)")
    w.add_argument("--plot", metavar="PNG", help="draw the frontier: hit rate and switch cost against capacity (or "
                   "the first axis that varies), a panel per combination of the others; needs matplotlib")
    w.add_argument("--target", metavar="'FIGURE OP NUMBER'", help="e.g. 'hit_rate >= 0.9' or 'mean_ns <= 2000': "
                   "print (and mark) the smallest configuration meeting it per combination of the other axes "
                   "(with --json: {rows, target})")
    w.set_defaults(run=run)
