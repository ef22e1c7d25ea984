"""scripts/bench_guests.py sets the host's sched_rr_timeslice_ms for its SCHED_RR
runs and must restore it however it ends: here against a stand-in file (the host's
setting is never touched), a process told to stop (SIGTERM, as `timeout` and CI
cancellation send) inside the window where it is set."""
from __future__ import annotations

import signal
import subprocess
import sys

from locations import SCRIPTS

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import bench_guests
bench_guests.RR_SYSCTL = Path(sys.argv[2])
with bench_guests.rr_timeslice(4) as why:
    assert why is None, why
    print(Path(sys.argv[2]).read_text().strip(), flush=True)
    time.sleep(120)
"""


def test_sigterm_inside_the_rr_window_restores_the_timeslice(tmp_path):
    """The default SIGTERM ends Python with no ``finally``: the host kept the bench's 4 ms
    RR timeslice for good.  Now SIGTERM inside the window unwinds it (exit 143)."""
    sysctl = tmp_path / "sched_rr_timeslice_ms"
    sysctl.write_text("100\n")
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(SCRIPTS), str(sysctl)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "4"          # inside the window: the bench's value is set
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert sysctl.read_text().strip() == "100", err
    assert p.returncode in (143, -signal.SIGTERM), (p.returncode, err)
