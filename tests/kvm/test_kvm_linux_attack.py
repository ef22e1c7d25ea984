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
    rc = main(["run", "--copies", "2", "--linux", segv])
    out, err = capfd.readouterr()
    assert rc == 139 and "linux1" in err, err
    assert main(["run", "--json", "--linux", segv]) == 139
    out, _ = capfd.readouterr()
    import json
    doc = json.loads(out)
    assert doc["copies"][0]["exit_status"] is None and doc["copies"][0]["error"]


HOARD = r"""
#include <fcntl.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int n = 0;
    while (open("/f.txt", O_RDONLY) >= 0)       /* every descriptor it may have, never closed */
        n++;
    printf("%d\n", n);
    fflush(stdout);
    if (argc > 1)
        *(volatile int *)(long)(argc - 2) = 1;  /* and then a fault instead of an exit */
    return 0;
}
"""


def _host_fds() -> int:
    import os
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("fault", [False, True])
def test_a_finished_guest_gives_back_its_host_files(tmp_path, fault):
    """A guest that opens every file it may and ends (exit or fault) without closing
    them: its host descriptors are released when it ends, not held by the job until
    someone remembers job.linux.close() (ten such guests were 2500 host fds)."""
    from pyvswitch import api
    from pyvswitch.kvm import Scheduler
    (tmp_path / "hoard.c").write_text(HOARD)
    prog = str(tmp_path / "hoard")
    subprocess.run([MUSL, "-static", "-O1", "-o", prog, str(tmp_path / "hoard.c")], check=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "f.txt").write_text("x\n")
    before = _host_fds()
    with api.open("reference-kvm") as hv:
        s = Scheduler(hv)
        jobs = [s.add_linux(hv.create_vm(f"h{i}"), prog, ["hoard"] + (["x"] if fault else []), ro_dir=str(ro))
                for i in range(3)]
        s.run(slice_us=50)
        assert all(j.done for j in jobs)
        assert all((j.crash is not None) == fault for j in jobs)
        assert all(int(bytes(j.output)) == 253 for j in jobs)
        assert _host_fds() <= before + 16             # the vCPU's and VMs' own, not 3 x 253
        assert all(j.linux.report()["served"]["open"] == 254 for j in jobs)     # the report outlives them
