"""Shared by the harnesses: run one under atheris with seeds, as libFuzzer does."""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable


def main(test_one_input: Callable[[bytes], None], seeds: Callable[[], Iterable[bytes]]) -> None:
    """``python harness.py [libFuzzer flags] [corpus dirs]``: the harness's seeds
    are read from a scratch directory after the given ones (new inputs go to the
    first given directory, as libFuzzer does)."""
    import atheris
    argv = list(sys.argv)
    seed_dir = tempfile.mkdtemp(prefix="vsw-fuzz-seeds-")
    for i, seed in enumerate(seeds()):
        with open(os.path.join(seed_dir, f"seed{i}"), "wb") as f:
            f.write(seed)
    if not any(os.path.isdir(a) for a in argv[1:] if not a.startswith("-")):
        argv.append(tempfile.mkdtemp(prefix="vsw-fuzz-"))
    argv.append(seed_dir)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
