"""Design sweeps: a grid's points, appended as they finish, resumed without recomputing."""
import csv
import errno

import pytest

from pyvswitch.bench import sweep as sw
from pyvswitch.cli import main

GRID = "pcpus = [1, 2]\nmax_burst = [512, 8192]\nswitches = 40\n"


def test_a_grid_runs_every_point_and_the_table_has_a_row_each(tmp_path):
    grid, out = tmp_path / "grid.toml", tmp_path / "out.csv"
    grid.write_text(GRID)
    rows = sw.sweep(grid, str(out), workers=2)
    assert len(rows) == 4 and {(r["pcpus"], r["max_burst"]) for r in rows} == {
        (1, 512), (1, 8192), (2, 512), (2, 8192)}
    by = {(r["pcpus"], r["max_burst"]): r for r in rows}
    assert by[(1, 512)]["p50_ns"] > by[(1, 8192)]["p50_ns"]      # more bursts cost more
    assert by[(2, 8192)]["p99_ns"] >= by[(1, 8192)]["p99_ns"]    # sharing only adds
    with open(out) as f:
        assert len(list(csv.DictReader(f))) == 4


def test_an_interrupted_sweep_resumes_without_recomputing(tmp_path):
    grid, out = tmp_path / "grid.toml", tmp_path / "out.csv"
    grid.write_text(GRID)
    sw.sweep(grid, str(out), workers=1)
    lines = out.read_text().splitlines()
    kept = lines[:3]                                    # header + 2 finished points, as if stopped there
    fields = kept[1].split(",")
    fields[lines[0].split(",").index("speedup_p50")] = "123.0"     # a mark: a recomputed row would lose it
    kept[1] = ",".join(fields)
    out.write_text("\n".join(kept) + "\n")
    computed = []
    rows = sw.sweep(grid, str(out), workers=1, progress=lambda i, n: computed.append(n))
    assert computed and set(computed) == {2} and len(rows) == 4
    assert any(r["speedup_p50"] == 123.0 for r in rows)


def test_a_point_the_hardware_refuses_is_recorded_with_why_and_the_sweep_goes_on(tmp_path):
    grid, out = tmp_path / "grid.toml", tmp_path / "out.csv"
    grid.write_text("max_burst = [64, 8192]\nswitches = 20\n")
    rows = sw.sweep(grid, str(out), workers=1)
    bad, good = rows
    assert "E2BIG" in bad["error"] and bad["p50_ns"] is None and good["error"] == "" and good["p50_ns"] > 0


def test_a_store_smaller_than_the_machines_misses_more_as_it_shrinks(tmp_path):
    grid, out = tmp_path / "grid.toml", tmp_path / "out.csv"
    grid.write_text('vms = 16\ncapacity = [4, 8, 16]\npolicy = ["lru", "clock"]\nschedule = "zipf"\n'
                    "switches = 300\n")
    rows = sw.sweep(grid, str(out), workers=2)
    for policy in ("lru", "clock"):
        rate = [r["hit_rate"] for r in rows if r["policy"] == policy]
        p50 = [r["p50_ns"] for r in rows if r["policy"] == policy]
        assert rate[0] < rate[1] < rate[2] == 1.0 and p50[0] >= p50[2]        # by capacity 4, 8, 16
    assert all(r["writebacks_per_switch"] <= 1 - r["hit_rate"] + 1e-9 for r in rows)   # only misses write back


def test_bad_grids_say_what_was_wrong(tmp_path):
    grid = tmp_path / "g.toml"
    for text, says in (("pcpu = [1]", "unknown axis 'pcpu'"), ("pcpus = [1.5]", "takes int"),
                       ('policy = "fifo"', "takes lru, clock, belady"), ('schedule = ["zig"]', "takes round-robin"),
                       ("pcpus = []", "takes int"), ("pcpus = [", "not valid TOML")):
        grid.write_text(text)
        with pytest.raises(OSError) as e:
            sw.load_grid(grid)
        assert e.value.errno == errno.EINVAL and says in str(e.value)


def test_the_sweep_verb(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text("pcpus = [1, 2]\nswitches = 20\n")
    assert main(["sweep", str(grid), "--out", str(tmp_path / "t.csv"), "--workers", "1"]) == 0
    assert "2 points in" in capsys.readouterr().out


def test_the_sweep_verb_plots_the_frontier(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib (the 'plot' extra) is not installed")
    grid, png = tmp_path / "grid.toml", tmp_path / "frontier.png"
    grid.write_text('vms = 8\ncapacity = [3, 8]\npolicy = ["lru", "clock"]\nswitches = 30\n')
    assert main(["sweep", str(grid), "--out", str(tmp_path / "t.csv"), "--workers", "1", "--plot", str(png)]) == 0
    assert "against capacity" in capsys.readouterr().out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_local_dask_cluster_gives_the_table_the_local_pool_does(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed (the 'cluster' extra) is not installed")
    grid = tmp_path / "grid.toml"
    grid.write_text("pcpus = [1, 2]\nswitches = 30\n")
    local = sw.sweep(grid, str(tmp_path / "local.csv"), workers=1)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1) as cluster:
        remote = sw.sweep(grid, str(tmp_path / "dask.csv"), scheduler=cluster.scheduler_address)
    assert local == remote


def test_repeats_give_the_mean_and_a_95_percent_ci_across_seeds(tmp_path):
    import math
    import statistics

    from pyvswitch.bench import points
    base = {n: v[1] for n, v in points.AXES.items()}
    base.update(vms=12, capacity=5, schedule="zipf", switches=200, seed=4)
    one = [points.run_point({**base, "seed": s}) for s in (4, 5, 6)]
    three = points.run_point({**base, "repeats": 3})
    for m in ("hit_rate", "mean_ns", "p99_ns"):
        xs = [r[m] for r in one]
        assert three[m] == pytest.approx(statistics.fmean(xs))
        assert three[f"{m}_ci95"] == pytest.approx(4.303 * statistics.stdev(xs) / math.sqrt(3))
        assert one[0][f"{m}_ci95"] is None
    assert len({r["hit_rate"] for r in one}) > 1 and three["seeds"] == 3       # the seeds differ
    assert points.ci95([1.0] * 40) == 0.0 and points.ci95([0.0, 2.0]) == pytest.approx(12.706)
