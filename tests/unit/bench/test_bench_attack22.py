"""Defects found attacking issue 22's sweep work, each pinned by a test: the
numbers (Belady on a trace with stays, p99, the 95% CI past 30 degrees of
freedom, the one-pass curve's cost), resuming (a float axis written as an
integer, --resume-any saying what it mixed) and hostile traces (/dev/zero)."""
import errno
import functools
import math
import random

import pytest

from pyvswitch import VswError
from pyvswitch.bench import mrc
from pyvswitch.bench import sweep as sw
from pyvswitch.bench.contention import switch_costs
from pyvswitch.bench.points import ci95
from pyvswitch.bench.timing import percentile
from pyvswitch.cli import main


# --- Belady on a trace: a stay (a switch to the machine already running) is no load -------------
def _loads_of(trace: list[tuple[int, int]]) -> list[int]:
    """One PCPU's loads: the trace without its stays."""
    out: list[int] = []
    for _, m in trace:
        if not out or out[-1] != m:
            out.append(m)
    return out


def _optimum(seq: list[int], cap: int) -> int:
    """The most hits any choice of victims gives (the running machine cannot be one), by brute force."""
    @functools.lru_cache(None)
    def go(i: int, res: frozenset) -> int:
        if i == len(seq):
            return 0
        m = seq[i]
        if m in res:
            return 1 + go(i + 1, res)
        if len(res) < cap:
            return go(i + 1, res | {m})
        return max(go(i + 1, (res - {v}) | {m}) for v in res if i == 0 or v != seq[i - 1])
    return go(0, frozenset())


def test_belady_on_a_trace_with_stays_is_the_optimum():
    trace = [(0, 1), (0, 2), (0, 2), (0, 0), (0, 3), (0, 1), (0, 4), (0, 0), (0, 5), (0, 0), (0, 3), (0, 3)]
    c = switch_costs(1, 1, 1, vms=6, capacity=3, policy="belady", start="cold", trace=trace)
    assert c.hits == _optimum(_loads_of(trace), 3) == 3


def test_belady_on_random_traces_with_stays_is_the_optimum():
    for trial in range(40):
        r = random.Random(trial)
        vms, n = r.randint(2, 7), r.randint(1, 13)
        cap = r.randint(2, vms)
        trace = [(0, r.randrange(vms)) for _ in range(n)]
        c = switch_costs(1, 1, 1, vms=vms, capacity=cap, policy="belady", start="cold", trace=trace, seed=trial)
        assert c.hits == _optimum(_loads_of(trace), cap), (trace, cap)


# --- statistics ------------------------------------------------------------------------------------
def test_p99_of_a_hundred_values_is_the_99th_not_the_maximum():
    xs = list(range(1, 101))
    assert percentile(xs, 0.99) == 99          # nearest rank: the ceil(0.99 * 100)-th smallest
    assert percentile(xs, 0.5) == 50
    assert percentile(xs, 1.0) == 100
    assert percentile(list(range(1, 1001)), 0.99) == 990
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([1, 2, 3], 0.0) == 1


def test_ci95_uses_students_t_beyond_30_degrees_of_freedom():
    # t(0.975) for 31, 40, 60 and 99 degrees of freedom (tables), not the normal 1.96
    for df, t in ((31, 2.0395), (40, 2.0211), (60, 2.0003), (99, 1.9842)):
        xs = [0.0] * df + [1.0]
        n = df + 1
        sd = math.sqrt((1 - 1 / n) / (n - 1))
        assert ci95(xs) == pytest.approx(t * sd / math.sqrt(n), rel=2e-4), df
    assert ci95([1.0, 3.0]) == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2), rel=1e-4)
    assert ci95([5.0]) is None


# --- resuming -----------------------------------------------------------------------------------
def test_a_float_axis_written_as_an_integer_resumes_without_recomputing(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text("utilisation = [0, 0.5]\nzipf_s = 1\nswitches = 20\nvms = 4\n")
    out = str(tmp_path / "t.csv")
    first = sw.sweep(grid, out, workers=1)
    lines = open(out).read().splitlines()
    again = sw.sweep(grid, out, workers=1)
    assert open(out).read().splitlines() == lines       # nothing computed twice, no row appended
    assert [r["key"] for r in again] == [r["key"] for r in first]
    assert all(isinstance(r["utilisation"], float) for r in again)


def test_negative_zero_is_the_same_point_as_zero(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text("utilisation = -0.0\nswitches = 20\nvms = 4\n")
    b.write_text("utilisation = 0.0\nswitches = 20\nvms = 4\n")
    assert sw.point_key(sw.load_grid(a)[0]) == sw.point_key(sw.load_grid(b)[0])


def test_resume_any_says_what_it_mixed(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text("switches = 20\nvms = 4\ncapacity = [2, 4]\n")
    out = str(tmp_path / "t.csv")
    sw.sweep(grid, out, workers=1)
    notes: list[str] = []
    # another model version in the table: rows edited as an older pyvswitch would have written them
    text = open(out).read().splitlines()
    head = text[0].split(",")
    col = head.index("model_sha")
    rows = [line.split(",") for line in text[1:]]
    rows[0][col] = "0123456789abcdef"
    open(out, "w").write("\n".join([text[0], *(",".join(r) for r in rows)]) + "\n")
    with pytest.raises(VswError) as e:
        sw.sweep(grid, out, workers=1)
    assert e.value.errno == errno.EINVAL and "0123456789abcdef" in str(e.value)
    sw.sweep(grid, out, workers=1, resume_any=True, notice=notes.append)
    assert len(notes) == 1 and "1 of 2" in notes[0] and "0123456789abcdef" in notes[0], notes
    # the CLI prints it
    assert main(["sweep", str(grid), "--out", out, "--resume-any"]) == 0
    assert "0123456789abcdef" in capsys.readouterr().err


# --- hostile traces -------------------------------------------------------------------------------
@pytest.mark.parametrize("dev", ["/dev/zero", "/dev/urandom"])
def test_a_trace_that_is_no_regular_file_is_refused(tmp_path, dev, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(f'trace = "{dev}"\n')
    with pytest.raises(VswError) as e:
        sw.load_grid(grid)
    assert e.value.errno == errno.EINVAL and dev in str(e.value)
    with pytest.raises(VswError) as e:
        mrc.of_trace(dev)
    assert e.value.errno == errno.EINVAL
    assert main(["mrc", dev]) == 2
    assert "regular file" in capsys.readouterr().err


def test_mrc_refuses_a_capacity_no_switch_fits(tmp_path, capsys):
    t = tmp_path / "t.csv"
    t.write_text("0,a\n0,b\n0,a\n")
    assert main(["mrc", str(t), "--capacities", "1,2"]) == 2
    assert "2.." in capsys.readouterr().err
    assert main(["mrc", str(t), "--capacities", "2"]) == 0


# --- the one-pass curve: the same distances as the textbook stack, in n log n -----------------------
def _naive(loads: list[int], skip: int) -> dict[int, int]:
    stack: list[int] = []
    hist: dict[int, int] = {}
    last = None
    for n, m in enumerate(loads):
        if m == last:
            continue
        last = m
        d = len(stack) - stack.index(m) if m in stack else 0
        if m in stack:
            stack.remove(m)
        stack.append(m)
        if n >= skip:
            hist[d] = hist.get(d, 0) + 1
    return hist


def test_distances_equal_the_textbook_stack():
    for trial in range(60):
        r = random.Random(trial)
        loads = [r.randrange(r.randint(1, 12)) for _ in range(r.randint(0, 200))]
        skip = r.randint(0, 20)
        hist, counted, machines = mrc.distances(loads, skip)
        assert hist == _naive(loads, skip)
        assert counted == sum(hist.values()) and machines == len(set(loads))


def test_curve_of_at_every_capacity_equals_a_sum_per_capacity():
    r = random.Random(5)
    hist = {d: r.randint(0, 9) for d in range(0, 40)}
    counted = sum(hist.values())
    caps = list(range(1, 45))
    got = mrc.curve_of(hist, counted, caps)
    for c in caps:
        assert got[c] == pytest.approx(sum(k for d, k in hist.items() if d and d <= c) / counted)
    assert mrc.curve_of(hist, counted, caps, 0.5)[10] == pytest.approx(
        sum(k for d, k in hist.items() if d and d * 0.5 <= 10) / counted)


# --- a table that outlives its traces -----------------------------------------------------------------
def test_a_table_with_a_row_of_a_deleted_trace_still_takes_other_grids(tmp_path, monkeypatch):
    trace = tmp_path / "t.csv"
    trace.write_text("0,a\n0,b\n0,c\n0,a\n")
    with_trace, plain = tmp_path / "a.toml", tmp_path / "b.toml"
    with_trace.write_text('trace = "t.csv"\ncapacity = [2, 3]\n')
    plain.write_text("switches = 20\nvms = 4\n")
    out = str(tmp_path / "t.csv.out")
    assert all(not r["error"] for r in sw.sweep(with_trace, out, workers=1))
    trace.unlink()
    rows = sw.sweep(plain, out, workers=1)
    assert len(rows) == 1 and not rows[0]["error"]


def test_a_trace_is_the_same_point_from_any_working_directory(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "t.csv").write_text("0,a\n0,b\n0,a\n")
    (sub / "g.toml").write_text('trace = "t.csv"\n')
    monkeypatch.chdir(tmp_path)
    here = sw.load_grid("sub/g.toml")
    monkeypatch.chdir(sub)
    there = sw.load_grid("g.toml")
    assert sw.point_key(here[0]) == sw.point_key(there[0])
    assert here[0]["trace"] == str(sub / "t.csv")


# --- the answer: capacity 0 is every machine, the largest store, not the smallest ---------------------
def test_capacity_zero_is_the_largest_store_in_the_answer(tmp_path):
    from pyvswitch.bench import frontier
    grid = tmp_path / "g.toml"
    grid.write_text('vms = 6\ncapacity = [0, 2, 4]\nschedule = "uniform"\nstart = "cold"\nswitches = 200\n')
    rows = sw.sweep(grid, str(tmp_path / "t.csv"), workers=1)
    by = {r["capacity"]: r["hit_rate"] for r in rows}
    assert by[2] < by[4] < by[0]                # 0: a store of all six
    a = frontier.answer(rows, frontier.Target.parse(f"hit_rate >= {by[0] - 1e-9}"))
    assert [x["smallest"] for x in a] == [0] and a[0]["largest_tried"] == 0
    a = frontier.answer(rows, frontier.Target.parse(f"hit_rate >= {by[4] - 1e-9}"))
    assert [x["smallest"] for x in a] == [4]
    text = "\n".join(frontier.answer_text(a, frontier.Target.parse("hit_rate >= 0.1")))
    assert "capacity = 4" in text
    a = frontier.answer(rows, frontier.Target.parse("hit_rate >= 1.01"))
    assert "every machine" in "\n".join(frontier.answer_text(a, frontier.Target.parse("hit_rate >= 1.01")))


# --- CLOCK after a cold start: the hand (from slot 0) meets the oldest first ---------------------------
def _clock(trace: list[tuple[int, int]], cap: int) -> tuple[int, int]:
    """Textbook CLOCK over ``cap`` frames filled in order 0, 1, ...; a load sets the reference
    bit; the hand skips the machines running (or being switched from), clears set bits, and
    evicts the first clear one, stopping just past it."""
    slots: list[int | None] = [None] * cap
    ref: dict[int, int] = {}
    hand = hits = misses = 0
    running: dict[int, int] = {}
    for p, m in trace:
        if running.get(p) == m:
            continue
        busy = set(running.values())
        running[p] = m
        if m in slots:
            hits += 1
            ref[m] = 1
            continue
        misses += 1
        if None in slots:
            i = slots.index(None)
        else:
            while True:
                x, i = slots[hand], hand
                hand = (hand + 1) % cap
                if x in busy:
                    continue
                if not ref.get(x):
                    break
                ref[x] = 0
        slots[i] = m
        ref[m] = 1
    return hits, misses


def test_clock_from_a_cold_start_is_the_textbook_one():
    for trial in range(60):
        r = random.Random(trial)
        pcpus = r.choice([1, 2, 3])
        vms = r.randint(2 * pcpus, 9)
        cap = r.randint(pcpus + 1, vms)
        running: list[int | None] = [None] * pcpus
        trace = []
        for _ in range(r.randint(1, 25)):
            p = r.randrange(pcpus)
            m = r.choice([m for m in range(vms) if m not in running or running[p] == m])
            trace.append((p, m))
            running[p] = m
        c = switch_costs(pcpus, pcpus, 1, vms=vms, capacity=cap, policy="clock", start="cold", trace=trace,
                         seed=trial)
        assert (c.hits, c.misses) == _clock(trace, cap), (pcpus, vms, cap, trace)


@pytest.mark.parametrize("warmup", ["-1", "-5"])
def test_mrc_refuses_a_negative_warmup(tmp_path, warmup, capsys):
    t = tmp_path / "t.csv"
    t.write_text("0,a\n0,b\n0,a\n")
    assert main(["mrc", str(t), f"--warmup={warmup}"]) == 2
    assert "warm-up" in capsys.readouterr().err
    with pytest.raises(VswError):
        mrc.mrc([0, 1, 0], int(warmup))


@pytest.mark.parametrize("text", ['layout = "' + "x" * 100_000 + '"\n', '"' + "y" * 100_000 + '" = 1\n',
                                  "capacity = [{ a = 1 }]\n", 'policy = ["' + "z" * 5000 + '"]\n'])
def test_a_huge_or_nested_value_is_refused_in_a_short_message(tmp_path, text, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(text)
    with pytest.raises(VswError) as e:
        sw.load_grid(grid)
    assert e.value.errno == errno.EINVAL and len(str(e.value)) < 400 + len(str(grid))
    assert main(["sweep", str(grid), "--out", str(tmp_path / "t.csv")]) == 2
    assert len(capsys.readouterr().err) < 500 + len(str(grid))


@pytest.mark.parametrize("where", ["/nonexistent-dir/x.png", "/proc/x.png", "DIR"])
def test_a_plot_that_cannot_be_written_is_refused_before_any_point_runs(tmp_path, where, capsys):
    pytest.importorskip("matplotlib")
    grid = tmp_path / "g.toml"
    grid.write_text("switches = 20\nvms = 4\n")
    out = tmp_path / "t.csv"
    where = str(tmp_path) if where == "DIR" else where
    assert main(["sweep", str(grid), "--out", str(out), "--plot", where]) == 2
    assert "--plot" in capsys.readouterr().err and not out.exists()
    assert main(["sweep", str(grid), "--out", str(out), "--plot", str(tmp_path / "ok.png")]) == 0
    assert (tmp_path / "ok.png").stat().st_size > 0


# --- a grid of traces: bounded by the traces' switches, not by `switches` ------------------------------
def test_a_grid_of_traces_is_bounded_by_their_lines_before_any_point_runs(tmp_path, monkeypatch):
    t = tmp_path / "t.csv"
    t.write_text("".join(f"0,m{i % 5}\n" for i in range(60)))
    grid = tmp_path / "g.toml"
    grid.write_text('trace = "t.csv"\nswitches = 1\nrepeats = 2\n')
    assert len(sw.load_grid(grid)) == 1
    monkeypatch.setattr(sw, "MAX_SWITCHES", 100)            # 60 lines x 2 seeds
    with pytest.raises(VswError) as e:
        sw.load_grid(grid)
    assert e.value.errno == errno.EINVAL and "modelled switches in all" in str(e.value)
    monkeypatch.setattr(sw, "MAX_SWITCHES", 10**9)
    monkeypatch.setattr(sw, "MAX_POINT_SWITCHES", 50)       # one seed's 60 lines
    with pytest.raises(VswError) as e:
        sw.load_grid(grid)
    assert e.value.errno == errno.EINVAL and "60 lines" in str(e.value)
    grid.write_text('trace = ["t.csv", ""]\nswitches = 20\nvms = 4\n')   # a trace beside the schedule
    monkeypatch.setattr(sw, "MAX_POINT_SWITCHES", 1000)
    monkeypatch.setattr(sw, "MAX_SWITCHES", 80)             # 60 + 20
    assert len(sw.load_grid(grid)) == 2
    monkeypatch.setattr(sw, "MAX_SWITCHES", 79)
    with pytest.raises(VswError):
        sw.load_grid(grid)


def test_workers_beyond_the_points_are_not_started(tmp_path, monkeypatch):
    made: list[int] = []
    real = sw.ProcessPoolExecutor

    def pool(n, **kw):
        made.append(n)
        return real(min(n, 2), **kw)          # safe whatever n: the test looks at what was asked
    monkeypatch.setattr(sw, "ProcessPoolExecutor", pool)
    grid = tmp_path / "g.toml"
    grid.write_text("switches = 10\nvms = 4\ncapacity = [2, 3]\n")
    rows = sw.sweep(grid, str(tmp_path / "t.csv"), workers=512)      # 512 forks for 2 points
    assert made == [2] and all(not r["error"] for r in rows)


def test_mrc_of_a_trace_grid_keeps_capacity_zero_as_every_machine(tmp_path):
    t = tmp_path / "m.csv"
    t.write_text("0,a\n0,b\n0,c\n0,d\n0,a\n0,b\n0,e\n0,a\n")
    grid = tmp_path / "g.toml"
    grid.write_text('trace = "m.csv"\ncapacity = [0, 2, 3]\nstart = "cold"\n')
    rows = {r["capacity"]: r["hit_rate"] for r in sw.sweep(grid, str(tmp_path / "t.csv"), workers=1)}
    [c] = mrc.of_grid(str(grid))
    assert sorted(c.hit_rate) == [2, 3, 5] and "capacity 0 (every machine) is 5" in c.note
    assert c.hit_rate[5] == pytest.approx(rows[0]) and c.hit_rate[3] == pytest.approx(rows[3])
    assert c.hit_rate[2] == pytest.approx(rows[2])


# --- SHARDS: a sample's consecutive repeats are reuses, not stays ------------------------------------
def test_distances_of_a_sample_keep_its_consecutive_repeats():
    hist, counted, _ = mrc.distances([1, 1, 2, 1], stays=False)
    assert hist == {0: 2, 1: 1, 2: 1} and counted == 4
    assert mrc.distances([1, 1, 2, 1])[0] == {0: 2, 2: 1}


def test_shards_on_bursts_is_near_the_exact_curve():
    from pyvswitch.bench.contention import _loads
    loads = _loads("bursts", 1000, 1, 100_000, 3, 1.0, 8)[0]
    caps = [10, 12, 20, 50, 100, 500]          # 10 = 1 / rate: a sampled reuse with nothing sampled between
    exact = mrc.mrc(loads, capacities=caps, exact_limit=10**7)
    sampled = mrc.mrc(loads, capacities=caps, exact_limit=50_000, rate=0.1)
    assert sampled.method == "shards" and exact.method == "mattson"
    worst = max(abs(exact.hit_rate[c] - sampled.hit_rate[c]) for c in caps)
    assert worst < 0.1, (worst, exact.hit_rate, sampled.hit_rate)      # it was 0.75: bursts' reuses dropped
    assert sampled.error is not None and abs(sampled.error - worst) < 0.1


def test_a_sampled_curve_counts_the_trace_s_loads_as_a_whole_number():
    c = mrc.mrc([0, 1, 2, 0, 1, 2, 0, 1, 3, 3], skip=2, exact_limit=2, rate=0.5)
    assert c.method == "shards" and c.loads == 7 and isinstance(c.loads, int)     # 9 loads (a stay), 2 skipped
