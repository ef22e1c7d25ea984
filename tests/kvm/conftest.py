"""Fixtures the KVM tests share (their one home)."""
from __future__ import annotations

import pytest
from builtin_runs import PROGRAMS, ROUNDS, SEED

import pyvswitch
from pyvswitch.kvm import solo


@pytest.fixture(scope="session")
def expected() -> dict[str, tuple[int, list[int]]]:
    """Each built-in program's result and progress when it runs alone, never
    preempted (``ROUNDS`` rounds from ``SEED``): what every preempted run must give.
    Only tests that KVM can run ask for it (they skip, saying why, elsewhere)."""
    out = {}
    with pyvswitch.open("reference-kvm") as hv:
        for prog in PROGRAMS:
            job = solo(hv, hv.create_vm(prog), prog, ROUNDS, SEED)
            out[prog] = (job.result, job.progress)
    return out
