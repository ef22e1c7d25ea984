"""Fuzz: sweep grid files (``load_grid``).  Any bytes are either a grid - points whose
every axis is a known one, each value within its axis's bounds, no more points and
switches than the stated limits - or refused with a VswError (EINVAL, naming the
file; ENOENT for a trace file that is not there) before any point runs; the file is
never changed and no descriptor leaks."""
from __future__ import annotations

import errno
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import tomllib  # noqa: E402,F401  (imported before the instrumentation: the fuzzing is of pyvswitch's checks)

import atheris  # noqa: E402

with atheris.instrument_imports():
    from pyvswitch import VswError
    from pyvswitch.bench.points import AXES, MAX_POINT_SWITCHES
    from pyvswitch.bench.sweep import MAX_POINTS, load_grid

from _common import main  # noqa: E402

DIR = tempfile.mkdtemp(prefix="vsw-fuzz-grid-")
PATH = os.path.join(DIR, "grid.toml")
with open(os.path.join(DIR, "t.csv"), "w") as f:       # a trace a grid may name
    f.write("0,vm1\n0,vm2\n0,vm1\n")
AXIS_NAMES = sorted(AXES)
VALUES = ["0", "1", "-1", "2", "64", "1e9", "0.5", "nan", "inf", "-0.0", "true", '"lru"', '"clock"', '"belady"',
          '"zipf"', '"t.csv"', '"nope.csv"', '"/dev/zero"', '"."', "[]", "{}", '"' + "x" * 200 + '"',
          "99999999999999999999"]


def grid_text(fdp: atheris.FuzzedDataProvider) -> bytes:
    """Mostly well-formed grids over the real axes (so the checks past TOML are reached), sometimes raw bytes."""
    if fdp.ConsumeIntInRange(0, 7) == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 256))
    lines = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        axis = AXIS_NAMES[fdp.ConsumeIntInRange(0, len(AXIS_NAMES) - 1)] if fdp.ConsumeIntInRange(0, 9) else "bogus"
        vals = [VALUES[fdp.ConsumeIntInRange(0, len(VALUES) - 1)] for _ in range(fdp.ConsumeIntInRange(1, 4))]
        lines.append(f"{axis} = [{', '.join(vals)}]" if fdp.ConsumeBool() else f"{axis} = {vals[0]}")
    return ("\n".join(lines) + "\n").encode()


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = grid_text(fdp)
    with open(PATH, "wb") as f:
        f.write(text)
    fds = len(os.listdir("/proc/self/fd"))
    try:
        points = load_grid(PATH)
    except VswError as exc:
        assert exc.errno in (errno.EINVAL, errno.ENOENT, errno.EISDIR, errno.EFBIG), exc
        points = None
    assert len(os.listdir("/proc/self/fd")) == fds, "load_grid leaked a descriptor"
    with open(PATH, "rb") as f:
        assert f.read() == text, "load_grid changed the file"
    if points is None:
        return
    assert 0 < len(points) <= MAX_POINTS
    for p in points:
        assert set(p) == set(AXES), p
        assert (p["switches"] + p["warmup"]) * p["pcpus"] <= MAX_POINT_SWITCHES, p


def seeds() -> list[bytes]:
    return [bytes(range(64)), bytes(64), b"\x01\x02\x03\x04" * 16, b"\xff" * 64]


if __name__ == "__main__":
    main(test_one_input, seeds)
