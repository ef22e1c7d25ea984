"""Signals to whole CLI processes, each a subprocess busy for seconds: Ctrl-C ends any
verb with 130 and no traceback; SIGINT, SIGTERM and SIGKILL stop a sweep, keep its
finished rows and leave no worker behind, and the sweep resumes from them.  (From
tests/unit/test_error_contract.py and tests/unit/bench/test_bench_sweep_hostile.py:
each spends seconds of CPU before the signal can mean anything.)"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pyvswitch import errors as limits
from pyvswitch.bench import sweep as sw

PYVSWITCH = [sys.executable, "-m", "pyvswitch"]


def _as_at_a_terminal() -> None:
    """In the child: SIGINT as a shell's foreground job has it (a job started in the
    background by a non-interactive shell inherits SIGINT ignored, and Python then
    never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("argv", [["demo", "--switches", str(limits.MAX_DEMO_SWITCHES)], ["bench"]])
def test_ctrl_c_ends_any_verb_with_130_and_no_traceback(argv, tmp_path):
    p = subprocess.Popen([*PYVSWITCH, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                         preexec_fn=_as_at_a_terminal)
    try:
        deadline = time.monotonic() + 600                       # a bound on a stuck child, not a timing
        while p.poll() is None and _cpu_seconds(p.pid) < 1.5 and time.monotonic() < deadline:
            time.sleep(0.05)                                    # imported and busy in the verb (CPU, not wall time)
        assert p.poll() is None, "finished before it could be interrupted"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130 and b"Traceback" not in err and b"KeyboardInterrupt" not in err, (p.returncode, err)


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` now (from /proc)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(p)
        except OSError:
            pass
    return alive


def _rows(out) -> int:
    try:
        return max(0, out.read_text().count("\n") - 1)
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_signal_stops_the_sweep_keeps_finished_rows_and_leaves_no_worker(tmp_path, sig, code):
    grid, out = tmp_path / "g.toml", tmp_path / "t.csv"
    grid.write_text(f"vms = 16\ncapacity = 8\nswitches = 3000\nseed = {list(range(40))}\n")
    proc = subprocess.Popen([*PYVSWITCH, "sweep", str(grid), "--out", str(out), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_at_a_terminal)
    try:
        deadline = time.monotonic() + 120
        while _rows(out) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert workers and _rows(out) >= 2, proc.stderr.read() if proc.poll() is not None else "too slow"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    if sig != signal.SIGKILL:
        assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(workers), "a worker outlived the sweep"
    kept = _rows(out)
    assert 2 <= kept < 40
    done, whole = sw.read_table(str(out))
    assert len(done) >= kept - 1                          # every row whole (a SIGKILL may tear the last)
    computed = []
    rows = sw.sweep(grid, str(out), workers=2, progress=lambda i, n: computed.append(n))
    assert len(rows) == 40 and set(computed) == {40 - len(done)}
