"""Hostile Linux guests through ``pyvswitch run --linux``: a program that faults
must not be reported as one that succeeded."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pyvswitch.cli import main
from pyvswitch.hw.kvm import why_unusable

WHY = why_unusable()
MUSL = shutil.which("musl-gcc")
pytestmark = [pytest.mark.skipif(WHY is not None, reason=f"no usable KVM: {WHY}"),
              pytest.mark.skipif(MUSL is None, reason="no musl-gcc (apt-get install musl-tools)")]

SEGV = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    printf("before\n");
    fflush(stdout);
    *(volatile int *)(long)(argc - 1) = 1;     /* a store to address 0 */
    return 5;
}
"""


@pytest.fixture(scope="module")
def segv(tmp_path_factory):
    d = tmp_path_factory.mktemp("segv")
    (d / "segv.c").write_text(SEGV)
    subprocess.run([MUSL, "-static", "-O1", "-o", str(d / "segv"), str(d / "segv.c")], check=True)
    return str(d / "segv")


def test_cli_a_faulting_program_is_139_not_0(segv, capfd):
    """A NULL store: what it printed before, then 139 and the fault named on stderr
    (a shell's SIGSEGV), for one copy and for copies preempted together; --json says it too."""
    assert main(["run", "--linux", segv]) == 139
    out, err = capfd.readouterr()
    assert out == "before\n" and "linux0" in err
    assert main(["run", "--copies", "2", "--linux", segv]) == 139
    out, err = capfd.readouterr()
    assert "linux1" in err
    assert main(["run", "--json", "--linux", segv]) == 139
    out, _ = capfd.readouterr()
    import json
    doc = json.loads(out)
    assert doc["copies"][0]["exit_status"] is None and doc["copies"][0]["error"]
