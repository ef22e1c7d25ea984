"""Whole CLI processes on broken pipes: every verb whose reader went away ends quietly
with 141, and `pyvswitch probe | head -1` prints one line and nothing on stderr (from
tests/unit/test_error_contract.py: seven interpreters side by side, seconds of CPU).
The in-process half - a verb whose own pipe breaks - stays there."""
from __future__ import annotations

import subprocess
import sys

import pytest

PYVSWITCH = [sys.executable, "-m", "pyvswitch"]


WENT_AWAY = [["probe", "--no-host"], ["probe", "--json"], ["demo", "--switches", "5", "--json"],
             ["trace", "--switches", "2", "--json"], ["guest", "runtime"], ["--help"], ["demo", "--help"]]


@pytest.fixture(scope="module")
def readers_gone(tmp_path_factory) -> dict[tuple[str, ...], subprocess.Popen]:
    """Each verb of WENT_AWAY started at once (they run side by side), its stdout's
    reader gone before it writes a byte."""
    procs = {}
    for argv in WENT_AWAY:
        p = subprocess.Popen([*PYVSWITCH, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=tmp_path_factory.mktemp("gone"))
        p.stdout.close()
        procs[tuple(argv)] = p
    yield procs
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("argv", WENT_AWAY)
def test_a_reader_that_went_away_ends_the_verb_quietly_with_141(argv, readers_gone):
    p = readers_gone[tuple(argv)]
    err = p.stderr.read().decode()
    p.wait(timeout=300)
    assert err == "" and p.returncode in (141, 0), (p.returncode, err)   # 0: argparse's help swallows EPIPE
    if argv[0] != "--help" and argv[-1] != "--help":
        assert p.returncode == 141


def test_probe_into_head_prints_its_first_line_and_nothing_on_stderr(tmp_path):
    r = subprocess.run(["bash", "-c", 'set -o pipefail; "$@" | head -1', "sh", *PYVSWITCH, "probe"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.stdout.startswith("platform reference") and r.stdout.count("\n") == 1
    assert r.stderr == "" and r.returncode in (0, 1, 141)           # 1: the fast path is not usable here
