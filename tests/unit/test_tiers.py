"""A test's tier is its folder (tests/conftest.py): the unit loop (``python -m pytest
tests/unit``) and ``-m "not slow"`` are one set only while every test lives in one of the
four folders, so a test anywhere else is refused at collection, as a slow one under unit is."""
from __future__ import annotations

import importlib.util

import locations
import pytest


def _hook():
    spec = importlib.util.spec_from_file_location("_tiers_conftest", locations.TESTS / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.pytest_collection_modifyitems


class _Item:
    def __init__(self, rel: str, *marks: str) -> None:
        self.path = locations.TESTS / rel
        self.nodeid = rel + "::test_x"
        self.marks = list(marks)

    def get_closest_marker(self, name: str):
        return name if name in self.marks else None

    def add_marker(self, mark: str) -> None:
        self.marks.append(mark)


def test_each_folder_gives_its_marks():
    hook = _hook()
    items = [_Item("unit/api/test_a.py"), _Item("stress/test_b.py"), _Item("kvm/test_c.py"), _Item("fuzz/test_d.py")]
    hook(None, items)
    assert [i.marks for i in items] == [["unit"], ["stress", "slow"], ["kvm", "slow"], ["fuzz", "slow"]]


@pytest.mark.parametrize("rel", ["test_stray.py", "integration/test_new_tier.py"])
def test_a_test_in_no_tier_is_refused(rel):
    """tests/test_stray.py had no mark at all: -m "not slow" ran it, tests/unit did not."""
    with pytest.raises(pytest.UsageError, match="no tier"):
        _hook()(None, [_Item(rel)])


def test_a_slow_test_under_unit_is_still_refused():
    with pytest.raises(pytest.UsageError, match="marked slow"):
        _hook()(None, [_Item("unit/hw/test_e.py", "slow")])


@pytest.mark.parametrize("env, profile", [
    ({}, "dev"), ({"CI": "true"}, "ci"), ({"CI": "1"}, "ci"),
    ({"CI": "false"}, "dev"), ({"CI": "0"}, "dev"), ({"CI": ""}, "dev"),    # CI=false read as CI
    ({"HYPOTHESIS_PROFILE": "ci"}, "ci"), ({"HYPOTHESIS_PROFILE": "dev", "CI": "true"}, "dev"),
])
def test_the_profile_follows_what_the_environment_means(env, profile):
    import effort
    assert effort.choose_profile(env) == profile
