"""``pyvswitch run --linux`` as a clumsy user drives it: inputs that never end,
directories that are not, before any guest is made (no KVM needed)."""
from __future__ import annotations

import os
import subprocess
import sys

from pyvswitch.cli.run_linux import MAX_STDIN, main_linux


def test_stdin_that_never_ends_is_refused_not_swallowed():
    """--stdin /dev/zero: an error naming the bound (exit 2), not a read until the
    host runs out of memory.  Run in a child held to 1 GiB of address space so the
    old behaviour fails as a MemoryError instead of taking the machine down."""
    # AddressSanitizer (scripts/sanitize preloads it) reserves terabytes of shadow address
    # space, so there the child cannot be held to 1 GiB; the bound under test needs no limit
    held = "" if "libasan" in os.environ.get("LD_PRELOAD", "") else \
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    code = ("import resource, sys; " + held +
            "from pyvswitch.cli.run_linux import main_linux; "
            "sys.exit(main_linux(['--stdin', '/dev/zero', '--linux', '/bin/true']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "--stdin" in r.stderr and str(MAX_STDIN >> 20) in r.stderr


def test_stdin_one_past_the_bound_and_at_it(tmp_path, capfd, monkeypatch):
    """A file of MAX_STDIN + 1 bytes is refused; one of MAX_STDIN is taken whole."""
    import pyvswitch.cli.run_linux as rl
    monkeypatch.setattr(rl, "MAX_STDIN", 4096)
    seen: list[bytes] = []

    def fake_run(program, argv, **kw):
        seen.append(kw["stdin"])
        raise OSError(5, "stop here")

    monkeypatch.setattr(rl, "run_linux", fake_run)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 4097)
    assert main_linux(["--stdin", str(big), "--linux", "/bin/true"]) == 2
    assert not seen and "--stdin" in capfd.readouterr().err
    big.write_bytes(b"y" * 4096)
    assert main_linux(["--stdin", str(big), "--linux", "/bin/true"]) == 2
    assert seen == [b"y" * 4096]
