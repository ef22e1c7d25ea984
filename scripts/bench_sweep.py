#!/usr/bin/env python3
"""Sweep throughput: points per second of one grid on the local pool with 1 and 2
worker processes (and on a dask.distributed LocalCluster with 1 and 2 workers,
when the 'cluster' extra is installed), alternating, medians with min and max.
The grid is --points values of max_burst, or a grid file (--grid, e.g.
scripts/grids/thousand.toml: 1,000 points of 10^5 switches)."""
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



def main():
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
