"""The one-pass curve on traces of 10^6 loads: distinct names by the million
(a stack searched per load took hours on them) and a cyclic trace whose answer
is known at every capacity."""
import pytest

from pyvswitch.bench import mrc
from pyvswitch.cli import main

pytestmark = pytest.mark.slow


def test_a_million_distinct_names(tmp_path, capsys):
    t = tmp_path / "big.csv"
    with open(t, "w") as f:
        for i in range(10**6):
            f.write(f"0,m{i}\n")
    assert main(["mrc", str(t), "--capacities", "2,1000,1000000"]) == 0
    out = capsys.readouterr().out
    assert "1000000 loads counted of 1000000 machines, mattson" in out
    assert out.count(" 0.0000") == 3            # every load a first load: no hit at any capacity


def test_a_cycle_of_200000_machines_twice():
    n = 200_000
    c = mrc.mrc(list(range(n)) * 2 + [0], capacities=[2, n - 1, n, n + 1], exact_limit=10**7)
    # the second round: each machine n distinct loads back; the last 0: n loads back too
    assert c.hit_rate[2] == c.hit_rate[n - 1] == 0.0
    assert c.hit_rate[n] == c.hit_rate[n + 1] == pytest.approx((n + 1) / (2 * n + 1))
