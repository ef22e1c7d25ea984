"""Grids that cannot hurt: bounded axes refused before anything runs, failing
points as error rows, a torn last row computed again, a header-only table resumed,
one sweep per table, --json numbers as numbers, provenance checked on resume.
(Ctrl-C, SIGTERM and SIGKILL to a running sweep: tests/stress/test_cli_signals.py.)"""
import csv
import errno
import json
import os

import pytest

from pyvswitch.bench import points
from pyvswitch.bench import sweep as sw
from pyvswitch.cli import main

SMALL = "vms = 6\ncapacity = [3, 6]\nswitches = 30\n"


@pytest.mark.parametrize("text, says", [
    ("switches = 0", "'switches' takes 1..1000000"),
    ("mean_steps = -1", "'mean_steps' takes 0..1000000"),
    ("switches = 10000000000", "'switches' takes 1..1000000"),
    ("pcpus = 65", "'pcpus' takes 1..64"),
    ("vms = 5000", "'vms' takes 0..4096"),
    ("utilisation = 1.5", "'utilisation' takes a number from 0.0, below 1.0"),
    ("zipf_s = nan", "finite"),
    ("max_burst = 100", "multiple of 8"),
    ("capacity = [4, 4]", "repeats a value"),
    ("capacity = []", "empty list"),
    (f"seed = {list(range(1001))}", "at most 1000"),
    (f"seed = {list(range(400))}\ncapacity = {list(range(1, 400))}", "points; a grid has at most 100000"),
    (f"switches = 1000000\nseed = {list(range(1000))}\nrepeats = 100", "modelled switches in all"),
    ("switches = 1000000\nwarmup = 1000000\npcpus = 4", "((switches + warmup) x pcpus)"),
    ('start = "hot"', "takes warm, cold"),
    ('trace = ["no-such-file.csv"]', "no-such-file.csv"),
])
def test_a_grid_over_a_bound_is_refused_before_any_point_runs(tmp_path, capsys, text, says):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(text)
    with pytest.raises(OSError) as e:
        sw.load_grid(grid)
    assert says in str(e.value) and e.value.errno in (errno.EINVAL, errno.ENOENT)
    assert main(["sweep", str(grid), "--out", str(out), "--workers", "1"]) == 2
    assert says in capsys.readouterr().err and not out.exists()


def test_a_grid_that_is_not_text_or_too_big_is_refused(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_bytes(b"pcpus = [1]\n# \xff\xfe\n")
    with pytest.raises(OSError) as e:
        sw.load_grid(grid)
    assert e.value.errno == errno.EINVAL and "not UTF-8" in str(e.value)
    grid.write_text("# " + "x" * sw.MAX_GRID_BYTES + "\npcpus = 1\n")
    with pytest.raises(OSError) as e:
        sw.load_grid(grid)
    assert e.value.errno == errno.EINVAL and "at most" in str(e.value)


@pytest.mark.parametrize("workers", ["-3", "0", "100000"])
def test_bad_workers_are_refused_and_no_table_is_started(tmp_path, capsys, workers):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(SMALL)
    assert main(["sweep", str(grid), "--out", str(out), "--workers", workers]) == 2
    assert "workers is 1.." in capsys.readouterr().err and not out.exists()


def test_a_failing_point_is_an_error_row_and_the_others_run(tmp_path, monkeypatch):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text('pcpus = [1, 2]\npolicy = "belady"\nswitches = 20\n')
    rows = sw.sweep(grid, str(out), workers=1)
    ok, bad = rows
    assert ok["error"] == "" and ok["hit_rate"] == 1.0
    assert "belady" in bad["error"] and bad["p50_ns"] is None and bad["pyvswitch"]
    # anything else a point raises (here, in the parent: workers=1 still forks) is a row too
    monkeypatch.setattr(points, "_one", lambda point, seed: (_ for _ in ()).throw(MemoryError("no room")))
    row = points.run_point({n: v[1] for n, v in points.AXES.items()})
    assert row["error"] == "MemoryError: no room" and row["mean_ns"] is None


def test_a_torn_last_row_is_computed_again(tmp_path):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(SMALL)
    sw.sweep(grid, str(out), workers=1)
    data = out.read_bytes()
    out.write_bytes(data[:-40])                         # the last row cut mid-way, as a kill -9 leaves it
    computed = []
    rows = sw.sweep(grid, str(out), workers=1, progress=lambda i, n: computed.append(n))
    assert computed == [1] and len(rows) == 2 and all(r["hit_rate"] is not None for r in rows)
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 and out.read_bytes() == data     # the same table, whole again


def test_a_header_only_table_is_resumed_without_a_second_header(tmp_path):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(SMALL)
    out.write_text(",".join(sw.COLUMNS) + "\n")
    sw.sweep(grid, str(out), workers=1)
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and lines.count(lines[0]) == 1


def test_a_table_of_other_columns_is_refused(tmp_path):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(SMALL)
    out.write_text("key,pcpus\nabc,1\n")
    with pytest.raises(OSError) as e:
        sw.sweep(grid, str(out), workers=1)
    assert e.value.errno == errno.EINVAL and "columns" in str(e.value)
    assert out.read_text() == "key,pcpus\nabc,1\n"


def test_two_sweeps_on_one_table_the_second_is_refused(tmp_path):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(SMALL)
    held = sw._Lock(str(out))
    try:
        with pytest.raises(OSError) as e:
            sw.sweep(grid, str(out), workers=1)
        assert e.value.errno == errno.EBUSY and "another sweep" in str(e.value)
    finally:
        held.release()
    assert len(sw.sweep(grid, str(out), workers=1)) == 2 and not os.path.exists(str(out) + ".lock")


def test_json_numbers_are_numbers(tmp_path, capsys):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text('pcpus = [1, 2]\npolicy = "belady"\nswitches = 20\nrepeats = 2\n')
    for _ in range(2):                                  # computed, then read back from the table
        assert main(["sweep", str(grid), "--out", str(out), "--workers", "1", "--json"]) == 0
        ok, bad = json.loads(capsys.readouterr().out)
        assert type(ok["pcpus"]) is int and type(ok["p50_ns"]) is float and type(ok["utilisation"]) is float
        assert type(ok["hit_rate_ci95"]) is float and ok["seeds"] == 2
        assert bad["p50_ns"] is None and bad["error"]


def test_a_table_from_another_model_is_refused_unless_resume_any(tmp_path):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(SMALL)
    sw.sweep(grid, str(out), workers=1)
    text = out.read_text()
    sha = points.provenance()["model_sha"]
    out.write_text(text.replace(sha, "0123456789abcdef", 1))
    with pytest.raises(OSError) as e:
        sw.sweep(grid, str(out), workers=1)
    assert e.value.errno == errno.EINVAL and "model_sha 0123456789abcdef" in str(e.value) and sha in str(e.value)
    rows = sw.sweep(grid, str(out), workers=1, resume_any=True)
    assert sorted(r["model_sha"] for r in rows) == sorted(["0123456789abcdef", sha])   # nothing recomputed
    version = points.provenance()["pyvswitch"]
    out.write_text(text.replace(f",{version},", ",0.0.1,", 1))
    with pytest.raises(OSError) as e:
        sw.sweep(grid, str(out), workers=1)
    assert f"pyvswitch 0.0.1 (this one: {version})" in str(e.value)


def test_every_row_carries_its_provenance(tmp_path):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text('max_burst = [512, 8192]\nswitches = 20\nseed = 9\n')
    rows = sw.sweep(grid, str(out), workers=1)
    prov = points.provenance()
    for r in rows:
        assert {k: r[k] for k in ("pyvswitch", "core_sha", "model_sha")} == prov and r["seed"] == 9
        plat = json.loads(r["platform"])
        assert plat["mover"]["max_burst"] == r["max_burst"] and plat["pcpu"]["exit_entry_cycles"] > 0


def test_a_point_that_kills_its_worker_is_an_error_row_computed_again_on_resume(tmp_path, monkeypatch):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text("vms = 6\ncapacity = [2, 3, 4, 5, 6]\nswitches = 30\n")
    real = points._one

    def dies_at_three(point, seed):                    # forked into the workers with the pool
        if point["capacity"] == 3:
            os._exit(9)
        return real(point, seed)
    monkeypatch.setattr(points, "_one", dies_at_three)
    rows = sw.sweep(grid, str(out), workers=1)
    died = [r for r in rows if r["error"] == sw.DIED]
    # it, and whatever was in flight with it on the pool (which cannot tell them apart), are error rows
    assert 3 in [r["capacity"] for r in died] and len(died) <= 2
    assert all(r["hit_rate"] is not None for r in rows if r not in died) and len(rows) == 5
    monkeypatch.setattr(points, "_one", real)
    computed = []
    rows = sw.sweep(grid, str(out), workers=1, progress=lambda i, n: computed.append(n))
    assert set(computed) == {len(died)} and all(r["error"] == "" for r in rows) and len(rows) == 5
