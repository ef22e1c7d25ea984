"""Fuzz: the command line of every verb.  Any argv is either parsed - each value
within its stated limit (pyvswitch.errors) - or refused with the verb's usage and
exit 2 (SystemExit(2); 0 for --help and --version); a --platform value is then
loaded, and refused with exit 2 and a message, never an exception.  Verbs do not
run (each would take seconds): their functions are replaced by a check of what
argparse gave them.  Nothing is written to the working directory."""
from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import argparse  # noqa: E402,F401  (imported before the instrumentation: the fuzzing is of pyvswitch's checks)
import json  # noqa: E402,F401
import tomllib  # noqa: E402,F401

import atheris  # noqa: E402

with atheris.instrument_imports():
    import pyvswitch
    import pyvswitch.cli as cli
    from pyvswitch import errors as limits

from _common import main  # noqa: E402

warnings.simplefilter("ignore", pyvswitch.FallbackWarning)
CWD = tempfile.mkdtemp(prefix="vsw-fuzz-cli-")      # each input runs in it (libFuzzer's paths stay where given)
with open(os.path.join(CWD, "plat.toml"), "w") as f:
    f.write(open(os.path.join(pyvswitch.__path__[0], "platforms", "reference.toml")).read())
os.mkfifo(os.path.join(CWD, "fifo"))
LISTING = sorted(os.listdir(CWD))
PARSER, SUB = cli._parser()
VERBS = sorted(SUB.choices)
OPTIONS = {v: sorted(s for a in p._actions for s in a.option_strings) for v, p in SUB.choices.items()}
VALUES = ["inf", "-inf", "nan", "1e300", "1e-300", "0", "-1", "1", "50", "99999999999999999999", "0x10", "1_000",
          "/dev/zero", "/dev/null", ".", "fifo", "plat.toml", "reference", "no-such", "x.bad", "x.png", "--", "-",
          "--json", "--help", "round-robin", "random", "build", "runtime", "", " ", "\x00", "é"]


def check_args(args) -> int:
    """What each verb would be given: within the limits the options state."""
    if getattr(args, "platform", None) is not None:
        assert isinstance(args.platform, str)
        pyvswitch.Platform.load(args.platform)           # a VswError: main says so and returns 2
    for name, low, high in (("switches", 1, limits.MAX_DEMO_SWITCHES if args.verb == "demo"
                             else limits.MAX_TRACE_SWITCHES), ("vms", 1, limits.MAX_DEMO_VMS),
                            ("mem_mib", 1, limits.MAX_GUEST_MEM_MIB)):
        v = getattr(args, name, None)
        if v is not None:
            assert type(v) is int and low <= v <= high, (name, v)
    if getattr(args, "slice_us", None) is not None:
        v = args.slice_us
        assert math.isfinite(v) and limits.SLICE_US_RANGE[0] <= v <= limits.SLICE_US_RANGE[1], v
    return 0


_real_parser = cli._parser


def _checking_parser():
    """The CLI's own parser, every verb's action replaced by check_args (new verbs included)."""
    parser, sub = _real_parser()
    for p in sub.choices.values():
        p.set_defaults(run=check_args)
    return parser, sub


cli._parser = _checking_parser


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    argv = [VERBS[fdp.ConsumeIntInRange(0, len(VERBS) - 1)]] if fdp.ConsumeIntInRange(0, 15) else []
    opts = OPTIONS.get(argv[0], []) if argv else ["--version", "--help"]
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        pick = fdp.ConsumeIntInRange(0, 2)
        argv.append(opts[fdp.ConsumeIntInRange(0, len(opts) - 1)] if pick == 0 else
                    VALUES[fdp.ConsumeIntInRange(0, len(VALUES) - 1)] if pick == 1 else fdp.ConsumeUnicode(12))
    out, err = io.StringIO(), io.StringIO()
    home = os.getcwd()
    os.chdir(CWD)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(argv)
    except SystemExit as e:
        assert e.code in (0, 2), (argv, e.code)
        assert e.code == 0 or "usage: pyvswitch" in err.getvalue(), (argv, err.getvalue())
    else:
        assert status in (0, 2), (argv, status)
        assert status == 0 or err.getvalue().startswith("pyvswitch "), (argv, err.getvalue())
    finally:
        os.chdir(home)
    assert "Traceback" not in err.getvalue()
    assert sorted(os.listdir(CWD)) == LISTING, f"{argv} changed the working directory"


def seeds() -> list[bytes]:
    return [bytes(range(64)), bytes(64), b"\x01\x02\x03\x04" * 16, b"\xff" * 64]


if __name__ == "__main__":
    main(test_one_input, seeds)
