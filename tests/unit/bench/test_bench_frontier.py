"""The answer of a sweep: --target's smallest configuration per combination of the
other axes, and the frontier drawn as small multiples."""
import errno
import json
import struct

import pytest

from pyvswitch.bench import frontier
from pyvswitch.bench import sweep as sw
from pyvswitch.cli import main

GRID = 'vms = 12\ncapacity = [3, 6, 9, 12]\npolicy = ["lru", "clock"]\nschedule = "zipf"\nmax_burst = [512, 8192]\n' \
       "switches = 150\n"


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    d = tmp_path_factory.mktemp("frontier")
    (d / "g.toml").write_text(GRID)
    return sw.sweep(d / "g.toml", str(d / "t.csv"), workers=2)


@pytest.mark.parametrize("text", ["hit_rate >= x", "foo >= 1", "hit_rate == 1", "", "mean_ns <= inf",
                                  "hit_rate >= 0.9; rm -rf /"])
def test_a_bad_target_is_refused(text, tmp_path, capsys):
    with pytest.raises(OSError) as e:
        frontier.Target.parse(text)
    assert e.value.errno == errno.EINVAL
    (tmp_path / "g.toml").write_text("switches = 5\n")
    assert main(["sweep", str(tmp_path / "g.toml"), "--out", str(tmp_path / "t.csv"), "--target", text]) == 2
    assert "target" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("text", ["hit_rate >= 0.6", "mean_ns <= 4000", "p99_ns < 1000", "hit_rate > 2"])
def test_the_smallest_configuration_meeting_the_target_per_combination(rows, text):
    t = frontier.Target.parse(text)
    answers = frontier.answer(rows, t)
    assert len(answers) == 4 and {a["x"] for a in answers} == {"capacity"}
    for a in answers:
        mine = sorted((r for r in rows if all(r[k] == v for k, v in a["axes"].items())), key=lambda r: r["capacity"])
        assert len(mine) == 4
        meeting = [r["capacity"] for r in mine if frontier.OPS[t.op](r[t.metric], t.value)]
        assert a["smallest"] == (meeting[0] if meeting else None)
        if meeting:
            assert all(not frontier.OPS[t.op](r[t.metric], t.value) for r in mine if r["capacity"] < meeting[0])
    if text == "hit_rate > 2":
        assert "not met by any capacity up to 12" in "\n".join(frontier.answer_text(answers, t))


def test_the_verb_prints_and_gives_the_answer_as_json(tmp_path, capsys):
    (tmp_path / "g.toml").write_text(GRID)
    out = str(tmp_path / "t.csv")
    assert main(["sweep", str(tmp_path / "g.toml"), "--out", out, "--workers", "2", "--target", "hit_rate >= 0.6"]) == 0
    text = capsys.readouterr().out
    assert "target hit_rate >= 0.6: the smallest configuration meeting it" in text
    assert "max_burst=512, policy=lru: capacity = " in text
    assert main(["sweep", str(tmp_path / "g.toml"), "--out", out, "--json", "--target", "hit_rate >= 0.6"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["rows"]) == 16 and len(doc["target"]) == 4 and type(doc["target"][0]["smallest"]) is int


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_plot_is_small_multiples_with_the_target_marked(rows, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the 'plot' extra) is not installed")
    one = [r for r in rows if r["max_burst"] == 512]
    a, b = tmp_path / "one.png", tmp_path / "two.png"
    assert frontier.plot(one, str(a), frontier.Target.parse("hit_rate >= 0.6")) == "capacity"
    assert frontier.plot(rows, str(b), frontier.Target.parse("mean_ns <= 4000")) == "capacity"
    (w1, h1), (w2, h2) = _png_size(a), _png_size(b)
    assert w2 > w1 and h2 == h1                          # a panel per max_burst, side by side; policies are lines
    with pytest.raises(OSError) as e:
        frontier.plot([{**r, "error": "E2BIG"} for r in rows], str(tmp_path / "none.png"))
    assert e.value.errno == errno.EINVAL and not (tmp_path / "none.png").exists()
