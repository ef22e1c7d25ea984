"""`pyvswitch bench --quick`'s emulator section: its timed loops take seconds, so it is
checked here rather than in the unit tier (tests/unit/cli/test_cli_bench_trace.py
checks the model's part of the same document)."""
from __future__ import annotations

import json

from pyvswitch import bench


def test_quick_emulator_section_schema():
    doc = bench.run(quick=True)
    assert doc["quick"] is True and doc["seconds"] > 0 and doc["model"]
    e = doc["emulator"]
    assert {r["vms"] for r in e["flat"]} == {2, 100, 10000}
    # timings are the benchmark's to report, not the test's to judge (noisy machines, sanitizer builds)
    assert all(r["switch_ratio"] > 0 for r in e["api"])
    assert all(r["times_switch_context"] > 0 for r in e["pure_python"])
    json.dumps(doc)
