"""The CLI a newcomer expects: `guest build` reads its command line as gcc does
(flags anywhere, sources among them), a libc call that fails to link says what
the runtime offers instead, `demo --kvm --vms N` runs N guests or says why not,
and sizes given in MiB are refused in MiB."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyvswitch.cli import main
from pyvswitch.guest.build import split_gcc_args
from pyvswitch.kvm import why_unusable

from locations import GUESTS as HERE
gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH: guests cannot be built")


def _cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyvswitch", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_sources_and_flags_come_apart_in_any_order():
    assert split_gcc_args(["-O2", "a.c", "-I", "inc", "-DX=1", "b.S", "-D", "Y", "-march=native", "-l", "m"]) == \
        (["a.c", "b.S"], ["-O2", "-I", "inc", "-DX=1", "-D", "Y", "-march=native", "-l", "m"])
    assert split_gcc_args([]) == ([], [])
    assert split_gcc_args(["-I"]) == ([], ["-I"])                  # a value missing: gcc says so


@gcc
@pytest.mark.parametrize("argv", [["-O2", "{src}", "-o", "{out}"], ["{src}", "-o{out}", "-O3"],
                                  ["--output={out}", "-DUNUSED=1", "{src}"], ["-I", "{inc}", "{src}", "--output", "{out}"]])
def test_guest_build_takes_gcc_flags_anywhere(tmp_path, argv):
    out = tmp_path / "p.elf"
    r = _cli("guest", "build", *(a.format(src=HERE / "float.c", out=out, inc=tmp_path) for a in argv))
    assert r.returncode == 0 and out.is_file() and out.read_bytes()[:4] == b"\x7fELF", r.stderr


@gcc
def test_a_flag_reaches_gcc(tmp_path):
    src = tmp_path / "d.c"
    src.write_text("#include <vsw_guest.h>\n#ifndef MUST\n#error MUST is not defined\n#endif\n"
                   "int main(void) { return MUST; }\n")
    assert _cli("guest", "build", src, "-o", tmp_path / "d.elf").returncode == 2
    assert _cli("guest", "build", "-DMUST=4", src, "-o", tmp_path / "d.elf").returncode == 0


@pytest.mark.parametrize("argv,says", [(["-O2", "x.c"], "needs -o OUT.elf"), (["x.c", "-o"], "given once"),
                                       (["x.c", "-o", "a", "-o", "b"], "given once"),
                                       (["-O2", "-o", "x.elf"], "at least one C source")])
def test_guest_build_misuse_says_what_is_missing(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        code = main(["guest", "build", *argv])
        raise SystemExit(code)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_guest_help_says_flags_go_to_gcc():
    r = _cli("guest", "--help")
    assert r.returncode == 0 and "goes to gcc" in " ".join(r.stdout.split())
    r = _cli("guest", "build", "--help")
    assert r.returncode == 0 and "goes to gcc" in " ".join(r.stdout.split())


@gcc
@pytest.mark.parametrize("body,name", [('#include <stdio.h>\nint main(void) { printf("%d\\n", 3); return 0; }',
                                        "printf"),
                                       ('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }', "puts"),
                                       ('#include <stdlib.h>\nint main(void) { exit(3); }', "exit")])
def test_a_libc_call_that_does_not_link_says_what_the_runtime_offers(tmp_path, body, name):
    src = tmp_path / "p.c"
    src.write_text(body + "\n")
    r = _cli("guest", "build", src, "-o", tmp_path / "p.elf")
    assert r.returncode == 2 and f"`{name}'" in r.stderr
    assert "hint: a guest has no libc" in r.stderr and "vsw_guest.h" in r.stderr and "vsw_printf" in r.stderr


@gcc
def test_an_undefined_name_of_ones_own_gets_no_libc_hint(tmp_path):
    src = tmp_path / "u.c"
    src.write_text("int helper(void);\nint main(void) { return helper(); }\n")
    r = _cli("guest", "build", src, "-o", tmp_path / "u.elf")
    assert r.returncode == 2 and "helper" in r.stderr and "hint" not in r.stderr


@pytest.mark.parametrize("mib,says", [(2048, "got 2048 MiB, at most 1024 MiB"), (3, "got 3 MiB, an even number"),
                                      (0, "got 0 MiB, at least 2 MiB")])
def test_mem_mib_is_refused_in_mib(tmp_path, mib, says):
    r = _cli("run", tmp_path / "none.elf", "--mem-mib", mib)
    assert r.returncode == 2 and says in r.stderr and (mib == 0 or str(mib << 20) not in r.stderr), r.stderr


def test_demo_kvm_refuses_zero_vms():
    r = _cli("demo", "--kvm", "--vms", 0)
    assert r.returncode == 2 and "--vms" in r.stderr and "got 0" in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(why_unusable() is not None, reason=f"KVM unusable here: {why_unusable()}")
@pytest.mark.parametrize("vms", [1, 5])
def test_demo_kvm_runs_as_many_guests_as_asked(vms):
    r = _cli("demo", "--kvm", "--vms", vms, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["guests"]) == vms and all(g["same"] for g in doc["guests"])
    assert len({g["machine"] for g in doc["guests"]}) == vms


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_timeout_that_is_not_positive_is_refused_up_front(tmp_path, value):
    r = _cli("run", tmp_path / "none.elf", "--timeout", value)
    assert r.returncode == 2 and "--timeout is a positive number of seconds" in r.stderr, r.stderr
