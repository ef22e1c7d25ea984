"""pyvswitch calibrate: this host measured into a platform file, and bench and
sweep pricing the fast path against its cached-save prior art too."""
import errno
import json
import pathlib

import pytest

from pyvswitch.bench import calibrate, sweep as sw
from pyvswitch.bench.model import Model
from pyvswitch.cli import main
from pyvswitch.hw.kvm import why_unusable
from pyvswitch.platform import Platform
from pyvswitch.schema import KINDS

REFERENCE = pathlib.Path(calibrate.__file__).resolve().parent.parent / "platforms" / "reference.toml"


def _xsave_or_skip():
    try:
        return calibrate.measure_xsave(3, 500)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip(f"no XSAVE here: {e}")
        raise


def test_xsave_is_measured_at_the_hosts_state_size():
    x = _xsave_or_skip()
    assert x["xcr0"] & 0x3 == 0x3 and x["xsave_bytes"] >= 576       # x87 + SSE at least: legacy area + header
    assert 0 < x["pair_ns"]["min"] <= x["pair_ns"]["median"] <= x["pair_ns"]["max"]
    assert x["tsc_mhz"]["median"] > 100


def test_memcpy_is_measured_at_the_size_asked_and_bounded():
    small, big = calibrate.measure_memcpy(1024, 3, 200), calibrate.measure_memcpy(1 << 20, 3, 20)
    assert small["bytes"] == 1024 and big["copy_ns"]["median"] > small["copy_ns"]["median"] > 0
    for bad in (0, (64 << 20) + 1):
        with pytest.raises(OSError) as e:
            calibrate.measure_memcpy(bad, 1, 1)
        assert e.value.errno == errno.EINVAL


def test_exit_entry_where_kvm_works_and_why_not_elsewhere():
    k = calibrate.measure_exit_entry(2, 20)
    why = why_unusable()
    if why:
        assert k == {"available": False, "why": why}
    else:
        assert k["available"] and 0 < k["inside_kvm_run_ns"]["median"] <= k["round_trip_ns"]["max"]


def test_the_verb_writes_a_platform_that_loads_and_records_the_measurements(tmp_path, capsys):
    _xsave_or_skip()
    out = tmp_path / "cal.toml"
    assert main(["calibrate", "--out", str(out), "--quick", "--no-kvm", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    plat = Platform.load(str(out))
    pcpu = next(s for s in plat.devices if s.kind == "pcpu").params
    assert pcpu["cpu_mhz"] == round(doc["xsave"]["tsc_mhz"]["median"])
    assert pcpu["exit_entry_cycles"] == KINDS["pcpu"].param("exit_entry_cycles").default     # --no-kvm: the default
    cal = calibrate.calibration_of(str(out))
    assert cal["cached_save_ns"] == pytest.approx(doc["xsave"]["pair_ns"]["median"], abs=1e-3)
    assert cal["kvm_exit_entry"]["available"] is False and "not asked" in cal["kvm_exit_entry"]["why"]
    assert cal["memcpy_bytes"] == doc["memcpy"]["bytes"] > 0
    text = out.read_text()
    assert main(["calibrate", "--out", str(out), "--quick", "--no-kvm"]) == 2       # never over a file
    assert "exists" in capsys.readouterr().err and out.read_text() == text


def _calibrated(tmp_path, ns) -> str:
    p = tmp_path / "cal.toml"
    p.write_text(REFERENCE.read_text() + f"\n[calibration]\ncached_save_ns = {ns}\n")
    return str(p)


def test_bench_prices_against_the_calibrated_cached_prior_art(tmp_path):
    from pyvswitch.bench.model import _stops_paying
    plat = Platform.load(_calibrated(tmp_path, 1234.5))
    row = next(r for r in _stops_paying(plat) if r["case"] == "prior art with caches")
    assert row["against_ns"] == pytest.approx(Model(plat, "x86_64").exit_entry_ns + 1234.5)
    assert "measured on this host" in row["against"]
    ref = next(r for r in _stops_paying(Platform.load(None)) if r["case"] == "prior art with caches")
    assert "reference point" in ref["against"] and ref["against_ns"] != row["against_ns"]


def test_the_sweep_prices_against_both_and_a_new_calibration_is_another_model(tmp_path):
    grid, out = tmp_path / "g.toml", str(tmp_path / "t.csv")
    grid.write_text("vms = 4\nswitches = 20\n")
    (row,) = sw.sweep(grid, out, workers=1, platform=_calibrated(tmp_path, 1234.5))
    pcpu = KINDS["pcpu"]
    ee = pcpu.param("exit_entry_cycles").default * 1000.0 / pcpu.param("cpu_mhz").default
    assert row["cached_prior_art_ns"] == pytest.approx(ee + 1234.5)
    assert row["speedup_cached_mean"] == pytest.approx(row["cached_prior_art_ns"] / row["mean_ns"])
    assert json.loads(row["platform"])["cached prior art"]["save_restore_ns"] == 1234.5
    with pytest.raises(OSError) as e:
        sw.sweep(grid, out, workers=1, platform=_calibrated(tmp_path, 99.0))
    assert e.value.errno == errno.EINVAL and "platform" in str(e.value)
    (plain,) = sw.sweep(grid, str(tmp_path / "u.csv"), workers=1)
    assert plain["cached_prior_art_ns"] == pytest.approx(ee + 340 * 1000.0 / pcpu.param("cpu_mhz").default)


@pytest.mark.parametrize("body, says", [("", "no [calibration]"), ("\n[calibration]\ncached_save_ns = -1\n",
                                                                    "positive number")])
def test_a_platform_without_a_usable_calibration_is_refused(tmp_path, body, says):
    p = tmp_path / "p.toml"
    p.write_text(REFERENCE.read_text() + body)
    (tmp_path / "g.toml").write_text("switches = 5\n")
    with pytest.raises(OSError) as e:
        sw.sweep(tmp_path / "g.toml", str(tmp_path / "t.csv"), workers=1, platform=str(p))
    assert e.value.errno == errno.EINVAL and says in str(e.value) and not (tmp_path / "t.csv").exists()
