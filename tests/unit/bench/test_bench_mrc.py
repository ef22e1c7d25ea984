"""The one-pass miss-ratio curve equals the sweep's LRU hit rate point by point;
SHARDS states its error; workload axes (trace, zipf_s, burst_len) reach the points."""
import errno
import json

import pytest

from pyvswitch.bench import mrc
from pyvswitch.bench import sweep as sw
from pyvswitch.cli import main


def _sweep_rates(tmp_path, grid_text):
    grid = tmp_path / "g.toml"
    grid.write_text(grid_text)
    rows = sw.sweep(grid, str(tmp_path / "t.csv"), workers=2)
    return grid, rows


@pytest.mark.parametrize("shape", ['schedule = "zipf"\nzipf_s = [0.6, 1.4]', 'schedule = "bursts"\nburst_len = [2, 9]',
                                   'schedule = "uniform"', 'schedule = "round-robin"'])
def test_the_curve_is_the_sweep_point_by_point(tmp_path, shape):
    grid, rows = _sweep_rates(tmp_path, f'vms = 10\ncapacity = [2, 3, 5, 7, 10]\nstart = "cold"\nswitches = 250\n'
                                        f'warmup = 15\nrepeats = 2\n{shape}\n')
    curves = mrc.of_grid(str(grid))
    assert len(curves) == len({(r["zipf_s"], r["burst_len"]) for r in rows})
    for c in curves:
        assert c.exact and c.method == "mattson"
        mine = [r for r in rows if all(r[a] == v for a, v in c.group.items())]
        assert len(mine) == 5
        for r in mine:
            assert c.hit_rate[r["capacity"]] == pytest.approx(r["hit_rate"], abs=1e-12), r["capacity"]
    rates = [c.hit_rate[5] for c in curves]
    assert len(set(rates)) == len(rates)                 # the shaping axis changed the loads


def test_a_trace_is_an_axis_and_its_curve_is_the_sweep(tmp_path):
    import random
    rng = random.Random(5)
    names = [f"vm{i}" for i in range(9)]
    lines, last = [], None
    for _ in range(400):
        m = rng.choice(names[:3] if rng.random() < 0.6 else names)
        lines.append(f"0,{m}")
    (tmp_path / "a.csv").write_text("# pcpu,machine\n" + "\n".join(lines) + "\n")
    grid, rows = _sweep_rates(tmp_path, 'trace = ["a.csv"]\ncapacity = [2, 4, 6, 9]\nstart = "cold"\nwarmup = 10\n')
    c = mrc.of_trace(str(tmp_path / "a.csv"), 10, capacities=[2, 4, 6, 9])
    for r in rows:
        assert r["error"] == "" and c.hit_rate[r["capacity"]] == pytest.approx(r["hit_rate"], abs=1e-12)
    assert rows[-1]["hit_rate"] == pytest.approx(1 - len(set(lines[10:]) - set(lines[:10])) / c.loads, abs=1e-12)
    # the trace's content is part of the key: an edited trace is computed again
    (tmp_path / "a.csv").write_text("0,vm1\n0,vm2\n0,vm1\n")
    again = sw.sweep(grid, str(tmp_path / "t.csv"), workers=1)
    assert [r["hit_rate"] for r in again] != [r["hit_rate"] for r in rows]


def test_a_trace_that_runs_one_machine_on_two_pcpus_is_an_error_row(tmp_path):
    (tmp_path / "b.csv").write_text("0,a\n1,b\n1,a\n")
    _, rows = _sweep_rates(tmp_path, 'trace = "b.csv"\npcpus = 2\nswitches = 5\n')
    assert "EBUSY" in rows[0]["error"] or "running on pcpu0" in rows[0]["error"]
    curve = mrc.of_trace(str(tmp_path / "b.csv"))
    assert not curve.exact and "approximate" in curve.note


def test_several_pcpus_without_a_trace_have_no_one_pass_curve(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text("pcpus = 2\nvms = 8\n")
    with pytest.raises(OSError) as e:
        mrc.of_grid(str(grid))
    assert e.value.errno == errno.EINVAL and "pcpus = 1" in str(e.value)


def test_stack_distances_by_hand():
    hist, counted, machines = mrc.distances([0, 1, 2, 0, 0, 1, 3, 0], skip=1)
    # loads (stays dropped): 0 1 2 0 1 3 0 -> distances inf inf inf 3 3 inf 3; the first uncounted
    assert (hist, counted, machines) == ({0: 3, 3: 3}, 6, 4)
    assert mrc.curve_of(hist, counted, [2, 3, 4]) == {2: 0.0, 3: 0.5, 4: 0.5}


def test_shards_samples_beyond_the_limit_and_states_a_measured_error():
    from pyvswitch.bench.contention import _loads
    loads = _loads("zipf", 400, 1, 60000, 3, 0.9, 8)[0]
    exact = mrc.mrc(loads, 1, [10, 50, 100, 200, 400])
    sampled = mrc.mrc(loads, 1, [10, 50, 100, 200, 400], exact_limit=20000, rate=0.25)
    assert sampled.method == "shards" and not sampled.exact and sampled.error is not None
    assert f"{sampled.error:.4f}" in sampled.note and "rate 0.25" in sampled.note
    worst = max(abs(exact.hit_rate[c] - sampled.hit_rate[c]) for c in exact.hit_rate)
    assert 0 < worst < 0.2 and abs(worst - sampled.error) < 0.03    # the stated error is what it is, measured
    with pytest.raises(OSError):
        mrc.mrc(loads, 1, rate=0.0)


def test_the_mrc_verb(tmp_path, capsys):
    (tmp_path / "a.csv").write_text("0,x\n0,y\n0,x\n0,z\n0,x\n0,y\n")
    assert main(["mrc", str(tmp_path / "a.csv"), "--json"]) == 0
    (c,) = json.loads(capsys.readouterr().out)
    assert c["method"] == "mattson" and c["hit_rate"] == [{"capacity": 2, "hit_rate": 2 / 6},
                                                          {"capacity": 3, "hit_rate": 3 / 6}]
    assert main(["mrc", str(tmp_path / "a.csv"), "--capacities", "2,x"]) == 2
    assert "--capacities" in capsys.readouterr().err
    grid = tmp_path / "g.toml"
    grid.write_text("vms = 6\ncapacity = [2, 6]\nswitches = 50\n")
    assert main(["mrc", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "LRU hit rate" in out and "taken as start = cold" in out
