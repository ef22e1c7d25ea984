"""How hard the tests try, decided once: the ``dev`` profile (the default: the unit loop
while working) or the ``ci`` profile (``.ci/run`` exports ``HYPOTHESIS_PROFILE=ci``;
``CI`` set in the environment, but not to false or 0, selects it too).  ``tests/conftest.py`` loads the
hypothesis profile of the same name.

``ci`` runs every test at its full strength; ``dev`` runs the same tests with fewer
hypothesis examples and fewer repetitions of exhaustive loops (sampled, seeded), so a
bug they find in CI is still the same test failing, only found with less luck."""
from __future__ import annotations

import os
from collections.abc import Mapping


def choose_profile(env: Mapping[str, str]) -> str:
    """HYPOTHESIS_PROFILE if set, else ``ci`` where CI says so (``CI=false`` or ``0`` does not)."""
    ci = env.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return env.get("HYPOTHESIS_PROFILE") or ("ci" if ci else "dev")


PROFILE = choose_profile(os.environ)
CI = PROFILE == "ci"
#: hypothesis examples of a test that names no count of its own
CI_EXAMPLES, DEV_EXAMPLES = 100, 10
#: the share of a test's own CI count that dev runs
DEV_SHARE = 5


def examples(ci: int) -> int:
    """``max_examples`` for a test whose count in CI is ``ci``: all of it in CI, a
    fifth of it (at least 5) in dev."""
    return ci if CI else max(5, ci // DEV_SHARE)


def effort(ci: int, dev: int) -> int:
    """A loop's length: ``ci`` in CI, ``dev`` in the unit loop."""
    return ci if CI else dev
