"""Guests built with ``--libc musl`` get musl's printf/puts/putchar, <ctype.h> and
libm under their standard names, and run like any guest (``pyvswitch run``)."""
from __future__ import annotations

import errno
import shutil
import subprocess

import pytest

import pyvswitch
from pyvswitch.errors import VswError
from pyvswitch.guest import GuestImage, build
from pyvswitch.hw.kvm import why_unusable
from pyvswitch.kvm import Scheduler

NO_MUSL = None if shutil.which("musl-gcc") else "musl-gcc is not installed (apt-get install musl-tools)"
NO_GCC = None if shutil.which("gcc") else "gcc is not installed"
WHY = why_unusable()

PROGRAM = r"""
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "vsw_guest.h"
int main(void) {
    const char *s = "Embench-like Text 2026, with DIGITS 7!";
    int up = 0, dig = 0, sp = 0;
    for (const char *p = s; *p; p++) {
        up += isupper((unsigned char)*p) != 0; dig += isdigit((unsigned char)*p) != 0; sp += isspace((unsigned char)*p) != 0;
    }
    double acc = 0;
    for (int i = 1; i < 2000; i++)
        acc += sqrt(i) + fabs(sin(i)) * cos(i / 7.0) + fmod(i, 3.5) + floor(i / 3.0) - ceil(i / 4.0)
               + pow(1.0001, i) + exp(-i / 500.0) + log(i) + atan2(i, 100.0);
    printf("upper %d digits %d spaces %d acc %.6f\n", up, dig, sp, acc);
    char buf[32];
    for (int i = 0; s[i] && i < 31; i++) buf[i] = (char)toupper((unsigned char)s[i]), buf[i + 1] = 0;
    puts(buf);
    putchar('!'); putchar('\n');
    vsw_printf("vsw_printf still works: %d\n", 42);
    return dig;
}
"""


@pytest.fixture(scope="module")
def musl_guest(tmp_path_factory):
    if NO_MUSL:
        pytest.skip(NO_MUSL)
    d = tmp_path_factory.mktemp("libc")
    (d / "m.c").write_text(PROGRAM)
    return str(build([d / "m.c"], d / "m.elf", libc="musl"))


def test_build_links_musl_and_marks_the_image(musl_guest):
    img = GuestImage.read(musl_guest)
    assert img.linux is not None and img.linux.entry == img.entry


@pytest.mark.skipif(NO_GCC is not None, reason=str(NO_GCC))
def test_freestanding_build_suggests_libc_musl(tmp_path):
    (tmp_path / "m.c").write_text(PROGRAM)
    with pytest.raises(VswError) as e:
        build([tmp_path / "m.c"], tmp_path / "m.elf")
    assert e.value.errno == errno.ENOEXEC and "--libc musl" in str(e.value)


def test_build_refuses_an_unknown_libc(tmp_path):
    with pytest.raises(VswError) as e:
        build([tmp_path / "m.c"], tmp_path / "m.elf", libc="glibc")
    assert e.value.errno == errno.EINVAL


@pytest.mark.skipif(WHY is not None, reason=f"no usable KVM: {WHY}")
@pytest.mark.parametrize("slice_us", [50, 10_000])
def test_musl_guest_runs_like_native_beside_freestanding_ones(musl_guest, slice_us):
    want = subprocess.run([musl_guest], capture_output=True, env={}, timeout=60)
    assert b"acc" in want.stdout
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        s.add(hv.create_vm("pre"), "hash", 300)
        job = s.add(hv.create_vm("musl"), musl_guest)
        s.add(hv.create_vm("post"), "prng", 300)
        s.run(slice_us=slice_us)
        assert job.error is None
        assert (bytes(job.output), job.exit_status) == (want.stdout, want.returncode)


@pytest.mark.skipif(WHY is not None, reason=f"no usable KVM: {WHY}")
def test_cli_run_and_check_solo(musl_guest, capfd):
    from pyvswitch.cli import main
    assert main(["run", musl_guest, musl_guest, "--check-solo", "--slice-us", "50"]) == 0
    out = capfd.readouterr().out
    assert out.count("same as alone") == 2 and "vsw_printf still works: 42" in out
