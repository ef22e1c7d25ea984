"""The fuzz harnesses of tests/fuzz/, each for a bounded number of executions
(VSW_FUZZ_RUNS, default 2000; VSW_FUZZ_SECONDS bounds the time instead): any
input that escapes the error contract or changes state on refusal fails."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from locations import FUZZ as HERE
HARNESSES = sorted(p.name for p in HERE.glob("fuzz_*.py"))

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                reason="atheris is not installed (pip install -e '.[test]' brings it)")


def test_every_surface_has_a_harness():
    assert HARNESSES == ["fuzz_cli.py", "fuzz_elf.py", "fuzz_grid.py", "fuzz_image.py", "fuzz_modparams.py",
                         "fuzz_platform.py", "fuzz_regs.py", "fuzz_schedule.py", "fuzz_sysfs.py"]


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_finds_nothing(harness, tmp_path):
    seconds = os.environ.get("VSW_FUZZ_SECONDS")
    bound = [f"-max_total_time={seconds}"] if seconds else [f"-runs={os.environ.get('VSW_FUZZ_RUNS', '2000')}"]
    r = subprocess.run([sys.executable, str(HERE / harness), *bound, "-seed=1", f"-artifact_prefix={tmp_path}/",
                        str(tmp_path)], capture_output=True, text=True, timeout=900)
    found = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    assert r.returncode == 0 and not found, (found, r.stderr[-3000:])
    assert "Done " in r.stderr
