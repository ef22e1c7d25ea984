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
        ("1", "512"), ("1", "8192"), ("2", "512"), ("2", "8192")}
    by = {(r["pcpus"], r["max_burst"]): r for r in rows}
    assert float(by[("1", "512")]["p50_ns"]) > float(by[("1", "8192")]["p50_ns"])      # more bursts cost more
    assert float(by[("2", "8192")]["p99_ns"]) >= float(by[("1", "8192")]["p99_ns"])    # sharing only adds
    with open(out) as f:
        assert len(list(csv.DictReader(f))) == 4


def test_an_interrupted_sweep_resumes_without_recomputing(tmp_path):
    grid, out = tmp_path / "grid.toml", tmp_path / "out.csv"
    grid.write_text(GRID)
    sw.sweep(grid, str(out), workers=1)
    lines = out.read_text().splitlines()
    kept = lines[:3]                                    # header + 2 finished points, as if stopped there
    fields = kept[1].split(",")
    fields[-2] = "123.0"                                # a mark on speedup_p50: a recomputed row would lose it
    kept[1] = ",".join(fields)
    out.write_text("\n".join(kept) + "\n")
    computed = []
    rows = sw.sweep(grid, str(out), workers=1, progress=lambda i, n: computed.append(n))
    assert computed and set(computed) == {2} and len(rows) == 4
    assert any(r["speedup_p50"] == "123.0" for r in rows)


def test_a_point_the_hardware_refuses_is_recorded_with_why_and_the_sweep_goes_on(tmp_path):
    grid, out = tmp_path / "grid.toml", tmp_path / "out.csv"
    grid.write_text("max_burst = [64, 8192]\nswitches = 20\n")
    rows = sw.sweep(grid, str(out), workers=1)
    bad, good = rows
    assert "E2BIG" in bad["error"] and bad["p50_ns"] == "" and good["error"] == "" and float(good["p50_ns"]) > 0


def test_bad_grids_say_what_was_wrong(tmp_path):
    grid = tmp_path / "g.toml"
    for text, says in (("pcpu = [1]", "unknown axis 'pcpu'"), ("pcpus = [1.5]", "takes int"),
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


def test_a_local_dask_cluster_gives_the_table_the_local_pool_does(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed (the 'cluster' extra) is not installed")
    grid = tmp_path / "grid.toml"
    grid.write_text("pcpus = [1, 2]\nswitches = 30\n")
    local = sw.sweep(grid, str(tmp_path / "local.csv"), workers=1)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1) as cluster:
        remote = sw.sweep(grid, str(tmp_path / "dask.csv"), scheduler=cluster.scheduler_address)
    assert local == remote
