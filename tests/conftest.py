"""Shared fixtures - rigs of C models (tests/rigs.py) - the hypothesis profiles, and the
marks that sort the tests by cost, from the folder each lives in:

- ``tests/unit/<layer>``: quick - the loop to run while working (``python -m pytest tests/unit``,
  or ``-m "not slow"``: the same set, since a test marked slow there is refused);
- ``tests/stress``: threads, hot-unplug, long state machines, timed runs, signals to CLI processes
  (``stress``, ``slow``);
- ``tests/fuzz``: the atheris harnesses, bounded (``fuzz``, ``slow``);
- ``tests/kvm``: real guests on a KVM vCPU; they skip, saying why, without /dev/kvm (``kvm``, ``slow``).

A test in no folder of these four is refused, as a slow one under unit is (tests/unit/test_tiers.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import effort
from hypothesis import HealthCheck, settings
from rigs import LAYOUTS, Rig
from rigs import make_rig as _make_rig

# C-backed tests: timing varies with the machine's load, so no deadline.  The profile
# (and the strength of the tests that scale with it) is chosen once, in tests/effort.py.
settings.register_profile("ci", parent=settings.get_profile("ci"), deadline=None, max_examples=effort.CI_EXAMPLES,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=effort.DEV_EXAMPLES)
settings.load_profile(effort.PROFILE)

@pytest.fixture(params=LAYOUTS)
def rig(request: pytest.FixtureRequest) -> Rig:
    return _make_rig(request.param)


@pytest.fixture
def x86() -> Rig:
    return _make_rig("x86_64")


@pytest.fixture(scope="session")
def make_rig():
    """The rig builder itself, for tests that need several rigs or other knobs
    (session-scoped: it holds no state, so hypothesis examples may share it)."""
    return _make_rig


@pytest.fixture(scope="session")
def rigs():
    """One default rig per layout, shared by property tests that reset what they use."""
    return {name: _make_rig(name) for name in LAYOUTS}


#: the marks each top-level folder of tests/ gives its tests
_FOLDER_MARKS = {"unit": ("unit",), "stress": ("stress", "slow"), "fuzz": ("fuzz", "slow"), "kvm": ("kvm", "slow")}
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.path)).resolve().relative_to(_TESTS).parts[0]
        if folder == "unit" and item.get_closest_marker("slow"):
            # the unit loop and -m "not slow" are one set: a slow test lives in a slow folder
            raise pytest.UsageError(f"{item.nodeid} is marked slow: it belongs in tests/stress or tests/kvm "
                                    f"(or make it cheap: docs/testing.md, 'Where a new test goes')")
        if folder not in _FOLDER_MARKS:
            # unmarked, it would run under -m "not slow" but not in tests/unit: the two sets would part
            raise pytest.UsageError(f"{item.nodeid} is in no tier: a test lives in tests/unit/<layer>, tests/stress, "
                                    f"tests/fuzz or tests/kvm (docs/testing.md, 'Where a new test goes')")
        for mark in _FOLDER_MARKS[folder]:
            item.add_marker(mark)
