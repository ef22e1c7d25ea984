"""The architect's tools: bench's JSON and the facts its model must obey; the trace."""
import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvswitch import bench
from pyvswitch.cli import main
from pyvswitch.cli.trace import run_trace
from pyvswitch.platform import Platform


@pytest.fixture(scope="module")
def quick():
    # the model only: the emulator's timed loops take seconds (their part of the
    # document is checked in tests/stress/test_bench_quick_emulator.py)
    return bench.run(quick=True, model_only=True)


def test_quick_json_schema(quick, capsys):
    doc = quick
    assert doc["pyvswitch_bench"] == 1 and doc["quick"] is True and doc["seconds"] > 0    # how long: not judged here
    assert {"machine", "cpu", "cores", "python"} <= set(doc["machine"])
    assert doc["platform"]["name"] == "reference" and any(d["kind"] == "mover" for d in doc["platform"]["devices"])
    m = doc["model"]
    assert {r["scenario"] for r in m["paths"]} == {"x86_64 AVX-512", "x86_64 AVX2", "aarch64"}
    for r in m["paths"]:
        for side in ("store", "memory"):
            assert set(r[side]) == {"N", "M", "data_ns", "exit_entry_ns", "total_ns"}
            assert r[side]["total_ns"] == pytest.approx(r[side]["data_ns"] + r[side]["exit_entry_ns"])
    assert all({"utilisation", "memory_p50", "memory_p99", "memory_p999", "store"} <= set(r) for r in m["load"])
    assert m["stops_paying"] and all("why" in r for r in m["stops_paying"])
    assert doc["emulator"] is None                  # model_only
    json.dumps(doc)


def test_more_load_never_lowers_the_prior_arts_latency(quick):
    for scenario in {r["scenario"] for r in quick["model"]["load"]}:
        rows = sorted((r for r in quick["model"]["load"] if r["scenario"] == scenario), key=lambda r: r["utilisation"])
        for key in ("memory_p50", "memory_p99", "memory_p999"):
            vals = [r[key] for r in rows]
            assert vals == sorted(vals), (scenario, key)


def test_a_larger_burst_never_raises_the_burst_count(quick):
    rows = sorted(quick["model"]["bursts"], key=lambda r: r["max_burst"])
    for key in ("N_full", "N_worst", "N_typical", "M"):
        vals = [r[key] for r in rows]
        assert vals == sorted(vals, reverse=True), key


def test_dirty_only_saves_never_move_more_bytes(quick):
    for scenario in {r["scenario"] for r in quick["model"]["paths"]}:
        dirty, full = (next(r for r in quick["model"]["paths"] if r["scenario"] == scenario and r["dirty_only"] is d)
                       for d in (True, False))
        assert dirty["save_bytes"] <= full["save_bytes"]


@given(mask=st.integers(0, (1 << 15) - 1), burst=st.sampled_from([64, 256, 1024, 4096]))
def test_the_model_prices_any_dirty_set_within_bounds(mask, burst):
    mdl = bench.Model(Platform.load(None), "x86_64")
    path = mdl.store_path(burst, unchecked=True)
    units, ns = path.price(mask)
    full_units, full_ns = path.price(mdl.lay.all_groups)
    saved = sum(g.size for g in mdl.lay.groups if g.mask & mask)
    assert saved <= mdl.lay.size and units <= path.limits().worst_save_units
    assert (units == 0) == (mask == 0) and ns >= 0
    bigger = mdl.store_path(burst * 2, unchecked=True)
    assert bigger.price(mask)[0] <= units


def test_trace_parses_nests_and_adds_up(tmp_path):
    out = tmp_path / "trace.json"
    assert main(["trace", "--switches", "12", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    _check_trace(doc, run_trace(12, None)[1])


@pytest.mark.parametrize("how", [["--fallback"], ["--platform", "no-mover"], ["--platform", "aarch64"]])
def test_trace_on_other_platforms_and_the_fallback(tmp_path, how, capsys):
    out = tmp_path / "t.json"
    assert main(["trace", "--switches", "6", "--out", str(out), "--json", *how]) == 0
    summary = json.loads(capsys.readouterr().out)
    doc = json.loads(out.read_text())
    assert summary["path"] == ("store" if "aarch64" in how else "memory")
    _check_trace(doc, summary["switches"])


def _check_trace(doc, stats):
    ev = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    switch = {(e["tid"], e["args"]["seq"]): e for e in ev if e["cat"] == "switch"}
    for s in stats:
        parts = [e for e in ev if e["cat"] in ("save", "load") and e["args"]["seq"] == s["seq"]]
        bus_bytes = {d: sum(e["args"]["bytes"] for e in parts if e["cat"] == d) for d in ("save", "load")}
        if s["path"] == "store":
            assert bus_bytes == {"save": s["bytes_saved"], "load": s["bytes_loaded"]}
            assert len([e for e in parts if e["cat"] == "save"]) == s["save_bursts"]
        else:   # on the memory path a slice is a group's run of stores, in whole 8-byte or 64-byte stores
            assert sum(e["args"]["transactions"] for e in parts if e["cat"] == "save") == s["save_bursts"]
            assert sum(e["args"]["transactions"] for e in parts if e["cat"] == "load") == s["load_bursts"]
        for e in parts + [x for x in ev if x["cat"] == "exit_entry" and x["args"]["seq"] == s["seq"]]:
            parent = switch[(e["tid"], s["seq"])]
            assert parent["ts"] - 1e-6 <= e["ts"] and e["ts"] + e["dur"] <= parent["ts"] + parent["dur"] + 1e-6
        assert switch[(1, s["seq"])]["dur"] * 1000 == pytest.approx(s["modeled_ns"], abs=0.01)


def test_bad_trace_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:            # argparse: the verb's usage, and exit 2
        main(["trace", "--switches", "0"])
    assert e.value.code == 2 and "from 1 to" in capsys.readouterr().err
    assert main(["trace", "--switches", "1", "--out", str(tmp_path / "no" / "such" / "dir.json")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    doc = {"model": {"load": [], "bursts": []}}
    with pytest.raises(OSError) as e:
        bench.plot(doc, str(tmp_path / "x.png"))
    assert "pip install 'pyvswitch[plot]'" in str(e.value)


def test_plot_draws_a_png(quick, tmp_path):
    pytest.importorskip("matplotlib", reason="the optional 'plot' extra (matplotlib) is not installed")
    out = tmp_path / "bench.png"
    bench.plot(quick, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("layout, dirty", [("aarch64", "all"), ("x86_64", "none")])
def test_the_c_loop_says_where_a_switch_goes(layout, dirty):
    """The C benchmark times the switch, memcpy of the same bytes, the switch's
    checked copies alone and its atomics alone: every part measured (a part that
    failed would read 0), the switch the sum of its data and bookkeeping."""
    from pyvswitch.bench.timing import c_switch, format_report
    from pyvswitch.hw import Layout
    r = c_switch(layout, 2, 2000, rounds=1, dirty=dirty)
    size = Layout.get(layout).size
    assert r["bytes_per_switch"] == (2 if dirty == "all" else 1) * size
    assert min(r["switch_ns"], r["memcpy_ns"], r["data_ns"], r["atomics_ns"]) > 0
    assert r["switch_ns"] == pytest.approx(r["data_ns"] + r["bookkeeping_ns"])
    text = format_report({"api": [], "python": [], "c": [r], "flat": {"python": [], "c": []}})
    assert "bookkeeping" in text and f"{r['data_ns']:8.1f}" in text
