"""csrc/vsw.h is an umbrella of one header per mechanism; the test-only calls are
outside it, in vsw_test.h, and the cffi module still declares every one."""
import re
import shutil
import subprocess

import pytest

from locations import ROOT
from pyvswitch.hw import lib

CSRC = ROOT / "csrc"
GUEST_ABI = ROOT / "pyvswitch" / "guest" / "runtime"
# what only tests and benchmarks call: fault injection, corruption, the timed loops, calibration
TEST_ONLY = re.compile(r"\bvsw_\w*_inject\b|\bvsw_store_corrupt\b|\bvsw_bench_\w+|\bvsw_calibrate\w*|"
                       r"\bvsw_kvm_bench_ioctls\b|\bvsw_kvm_calibrate\b")


def _parts() -> list[str]:
    return re.findall(r'^#include "(vsw_[a-z0-9_]+\.h)"', (CSRC / "vsw.h").read_text(), re.M)


def _declared(name: str) -> set[str]:
    block = (CSRC / name).read_text().split("/* CDEF-BEGIN */", 1)[1].split("/* CDEF-END */", 1)[0]
    return set(re.findall(r"\b(vsw_\w+)\s*\(", block))


def test_vsw_h_includes_every_part_and_nothing_else():
    parts = _parts()
    on_disk = {p.name for p in CSRC.glob("vsw_*.h")} - {"vsw_internal.h", "vsw_test.h"}
    assert sorted(parts) == sorted(on_disk), "vsw.h must include each csrc/vsw_<mechanism>.h once"
    assert len(parts) == len(set(parts))
    assert "/* CDEF-BEGIN */" not in (CSRC / "vsw.h").read_text(), "the umbrella declares nothing itself"


def test_test_only_calls_are_outside_the_public_headers():
    public = "".join((CSRC / p).read_text() for p in _parts())
    assert not TEST_ONLY.findall(public)
    test_calls = _declared("vsw_test.h")
    assert test_calls and all(TEST_ONLY.fullmatch(n) for n in test_calls)


def test_the_cffi_module_declares_every_header():
    for name in [*_parts(), "vsw_test.h"]:
        for fn in _declared(name):
            assert hasattr(lib, fn), f"{fn} of {name} is missing from pyvswitch._vsw"


def test_a_call_declared_twice_is_caught():
    # the hostile neighbour: a name in two parts would be two statements of one ABI
    seen: dict[str, str] = {}
    for name in [*_parts(), "vsw_test.h"]:
        for fn in _declared(name):
            assert fn not in seen, f"{fn} is declared in {seen[fn]} and {name}"
            seen[fn] = name
    assert len(seen) > 90            # the parts were read at all (about 100 calls)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this host to compile the headers with")
@pytest.mark.parametrize("name", ["vsw.h", "vsw_test.h", *_parts()])
def test_each_header_compiles_alone(name, tmp_path):
    src = tmp_path / "one.c"
    src.write_text(f'#include "{name}"\n')
    r = subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", f"-I{CSRC}",
                        f"-I{GUEST_ABI}", str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this host to compile the headers with")
def test_a_public_caller_cannot_reach_a_test_only_call(tmp_path):
    src = tmp_path / "product.c"
    src.write_text('#include "vsw.h"\nint f(struct vsw_store *s) { return vsw_store_corrupt(s, 0, 0, 0); }\n')
    r = subprocess.run(["gcc", "-std=c11", "-Werror=implicit-function-declaration", "-fsyntax-only",
                        f"-I{CSRC}", str(src)], capture_output=True, text=True)
    assert r.returncode != 0 and "vsw_store_corrupt" in r.stderr


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None, reason="no gcc/nm on this host")
def test_the_stubs_define_every_kvm_call(tmp_path):
    # built as on a host without KVM (not Linux): kvm_stub.c alone must answer every vsw_kvm_* call
    obj = tmp_path / "stub.o"
    r = subprocess.run(["gcc", "-c", "-U__linux__", "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
                        f"-I{CSRC}", f"-I{GUEST_ABI}", str(CSRC / "kvm_stub.c"), "-o", str(obj)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    defined = set(re.findall(r" T (vsw_kvm_\w+)$", subprocess.run(["nm", str(obj)], capture_output=True,
                                                                  text=True).stdout, re.M))
    declared = {n for h in ("vsw_kvm.h", "vsw_test.h") for n in _declared(h) if n.startswith("vsw_kvm_")}
    assert declared and defined == declared
