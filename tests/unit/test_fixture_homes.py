"""A fixture the tests share has one home, its conftest.py: a test module that
defines one of the same name would silently shadow it (and run it again)."""
import functools
import re

import locations


# a fixture is a function under a decorator line naming fixture (pytest.fixture(...) or
# fixture), other decorators possibly between: read as text, ~100x faster than ast for the
# whole tree, and the hostile-neighbour test below checks it still sees one
_FIXTURE = re.compile(r"^@(?:pytest\.)?fixture\b[^\n]*\n(?:@[^\n]*\n)*(?:async )?def (\w+)", re.M)


@functools.lru_cache(maxsize=None)
def _fixtures(path) -> frozenset[str]:
    return frozenset(_FIXTURE.findall(path.read_text()))


def test_no_test_module_redefines_a_conftest_fixture():
    clashes = []
    for conftest in locations.TESTS.rglob("conftest.py"):
        shared = _fixtures(conftest)
        for mod in conftest.parent.rglob("test_*.py"):
            clashes += [f"{mod.relative_to(locations.TESTS)}: {name} (home: {conftest.relative_to(locations.TESTS)})"
                        for name in sorted(_fixtures(mod) & shared)]
    assert not clashes


def test_the_kvm_expected_fixture_lives_in_its_conftest():
    conftest = locations.TESTS / "kvm" / "conftest.py"
    assert "expected" in _fixtures(conftest)
    users = [m for m in (locations.TESTS / "kvm").glob("test_*.py") if "expected" in m.read_text()]
    assert len(users) >= 2          # shared, not a private fixture moved


def test_the_check_sees_a_redefinition(tmp_path):
    # the hostile neighbour: a module that does redefine a shared fixture is caught
    mod = tmp_path / "test_x.py"
    mod.write_text("import pytest\n@pytest.fixture(scope='module')\ndef expected():\n    return 1\n")
    assert _fixtures(mod) == {"expected"}
