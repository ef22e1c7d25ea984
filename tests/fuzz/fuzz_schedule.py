"""Fuzz: schedule files (``read_schedule``) and what ``play`` makes of them.  Any
bytes are either a schedule - (pcpu, name) pairs, a non-negative int and a
non-empty str - or refused with a VswError that names the file; the file is
never changed, no descriptor leaks.  A schedule played on a hypervisor either
runs or stops with a VswError at its step: the steps before it happened, and
every machine still holds what ``replay`` says its steps give."""
from __future__ import annotations

import os
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import atheris  # noqa: E402

with atheris.instrument_imports():
    import pyvswitch
    from pyvswitch import VswError
    from pyvswitch.workloads import play, read_schedule

from _common import main  # noqa: E402

warnings.simplefilter("ignore", pyvswitch.FallbackWarning)
DIR = tempfile.mkdtemp(prefix="vsw-fuzz-schedule-")
PATH = os.path.join(DIR, "schedule.txt")
HV = pyvswitch.open("datacenter")
NAMES = ["host"] + [HV.create_vm(f"vm{i}").name for i in range(5)]
STEPS = 3
RAN = {name: 0 for name in NAMES}           # the workload steps each machine ran, as the model says


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def check_machines() -> None:
    for name, steps in RAN.items():
        assert HV.machine(name).state() == pyvswitch.replay(steps), f"{name} is not replay({steps})"


def test_one_input(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(data)
    fds = open_fds()
    try:
        schedule = read_schedule(PATH)
    except VswError as exc:
        assert PATH in str(exc), exc
        schedule = None
    assert open_fds() == fds, "read_schedule leaked a descriptor"
    with open(PATH, "rb") as f:
        assert f.read() == data, "read_schedule changed the file"
    if schedule is None:
        return
    for pcpu, name in schedule:
        assert type(pcpu) is int and pcpu >= 0 and type(name) is str and name, (pcpu, name)
    # play it, a step at a time so the model knows what ran: what a refusal stopped changed nothing
    for pcpu, name in schedule[:64]:
        running = HV.running(pcpu) if isinstance(pcpu, int) and pcpu < HV.npcpus else None
        try:
            stats = play(HV, [(pcpu, name)], steps=STEPS)
        except VswError as exc:
            assert "schedule step 0" in str(exc), exc
            if running is not None and f"steps before the switch ran on {running.name}" in str(exc):
                RAN[running.name] += STEPS
            continue
        if stats.switches and running is not None:
            RAN[running.name] += STEPS
    check_machines()


def seeds() -> list[bytes]:
    return [b"0,vm0\n0,vm1\n1,vm2\n1,vm3\n0,host\n", b'{"pcpu": 0, "machine": "vm1"}\n# c\n\n2,vm4\n',
            b"0,vm0\r\n3,vm4\r1,vm1", b'{"pcpu": 1, "machine": "vm2", "x": [1, {"y": 2}]}\n', b"\xef\xbb\xbf0,vm0\n"]


if __name__ == "__main__":
    main(test_one_input, seeds)
