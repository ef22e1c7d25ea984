#!/usr/bin/env python3
"""Sweep throughput: points per second of one grid on the local pool with 1 and 2
worker processes (and on a dask.distributed LocalCluster with 1 and 2 workers,
when the 'cluster' extra is installed), alternating, medians with min and max.
The grid is --points values of max_burst, or a grid file (--grid, e.g.
scripts/grids/thousand.toml: 1,000 points of 10^5 switches).

--mrc: the one-pass miss-ratio curve (pyvswitch mrc) against the sweep of the
same capacities on one worker (LRU, one PCPU, cold start), as a ratio per
round, and the time of the curve over the time of one point of the sweep.
--repeats N: a point of N seeds against a point of one, per seed."""
import argparse
import os
import tempfile
import time
import tomllib

from pyvswitch.bench.sweep import load_grid, sweep
from pyvswitch.bench.timing import spread

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--points", type=int, default=16)
parser.add_argument("--switches", type=int, default=2000)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--grid", metavar="FILE", help="a grid file instead of --points and --switches")
parser.add_argument("--mrc", action="store_true", help="the MRC pass against the sweep of the same capacities")
parser.add_argument("--repeats", type=int, default=0, help="a point of N seeds against one seed, per seed")
args = parser.parse_args()
if args.grid:
    with open(args.grid) as f:
        grid_text = f.read()
    args.points = len(load_grid(args.grid))
    with open(args.grid, "rb") as f:
        args.switches = tomllib.load(f).get("switches", "the default")
else:
    grid_text = f"max_burst = {[1024 + 512 * i for i in range(args.points)]}\nswitches = {args.switches}\n"


def once(**kw):
    with tempfile.TemporaryDirectory() as d:
        grid = os.path.join(d, "grid.toml")
        with open(grid, "w") as f:
            f.write(grid_text)
        t = time.perf_counter()
        sweep(grid, os.path.join(d, "out.csv"), **kw)
        return args.points / (time.perf_counter() - t)



def mrc_vs_sweep():
    from pyvswitch.bench.mrc import of_grid
    text = (f"vms = 64\ncapacity = {list(range(2, 65, 2))}\nschedule = \"zipf\"\nstart = \"cold\"\n"
            f"switches = {args.switches}\n")
    ratios, per_point = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as d:
            grid = os.path.join(d, "grid.toml")
            with open(grid, "w") as f:
                f.write(text)
            t = time.perf_counter()
            rows = sweep(grid, os.path.join(d, "out.csv"), workers=1)
            t_sweep = time.perf_counter() - t
            t = time.perf_counter()
            (curve,) = of_grid(grid)
            t_mrc = time.perf_counter() - t
        assert all(abs(curve.hit_rate[r["capacity"]] - r["hit_rate"]) < 1e-12 for r in rows)
        ratios.append(t_sweep / t_mrc)
        per_point.append(t_mrc / (t_sweep / len(rows)))
    print(f"MRC pass vs a sweep of the same {len(rows)} capacities (64 VMs, zipf, {args.switches} switches, "
          f"one worker; every capacity's hit rate equal):")
    print(f"  sweep time / MRC time: {spread(ratios)}x")
    print(f"  MRC time / one point's time: {spread(per_point)}")


def repeats_overhead():
    def point(repeats):
        with tempfile.TemporaryDirectory() as d:
            grid = os.path.join(d, "grid.toml")
            with open(grid, "w") as f:
                f.write(f"vms = 64\ncapacity = 32\nschedule = \"zipf\"\nswitches = {args.switches}\n"
                        f"repeats = {repeats}\n")
            t = time.perf_counter()
            sweep(grid, os.path.join(d, "out.csv"), workers=1)
            return time.perf_counter() - t
    per_seed = []
    for _ in range(args.rounds):
        one, many = point(1), point(args.repeats)
        per_seed.append(many / args.repeats / one)
    print(f"a point of {args.repeats} seeds, per seed, against a point of one ({args.switches} switches): "
          f"{spread(per_seed)}x")


def main():
    if args.mrc or args.repeats:
        if args.mrc:
            mrc_vs_sweep()
        if args.repeats:
            repeats_overhead()
        return
    rows = {"local 1": [], "local 2": []}
    try:
        from distributed import LocalCluster
        clusters = {n: LocalCluster(n_workers=n, processes=True, threads_per_worker=1) for n in (1, 2)}
        rows.update({"dask 1": [], "dask 2": []})
    except ImportError:
        clusters = {}
    for _ in range(args.rounds):
        rows["local 1"].append(once(workers=1))
        rows["local 2"].append(once(workers=2))
        for n, c in clusters.items():
            rows[f"dask {n}"].append(once(scheduler=c.scheduler_address))
    for c in clusters.values():
        c.close()
    print(f"{args.points} points of {args.switches} switches each, points per second:")
    for k, v in rows.items():
        print(f"  {k} worker(s): {spread(v)}")
    print(f"  local 2 vs 1: {spread([b / a for a, b in zip(rows['local 1'], rows['local 2'])])}x")
    if clusters:
        print(f"  dask 2 vs 1: {spread([b / a for a, b in zip(rows['dask 1'], rows['dask 2'])])}x")


if __name__ == "__main__":     # dask starts worker processes that import this file
    main()
