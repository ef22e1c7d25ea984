"""cffi build script for pyvswitch._vsw (API mode, out of line).

The cdef is the block between the CDEF markers of each part csrc/vsw.h
includes, in its order, then of csrc/vsw_test.h (the calls only tests and
benchmarks make), so the headers stay the single statement of the ABI.
VSW_SANITIZE=1 in the environment builds it with AddressSanitizer and UndefinedBehaviorSanitizer (scripts/sanitize).
The switch from Python goes through pyvswitch._fastpath instead (csrc/fastpath.c).
"""
import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = sorted(p.name for p in HERE.glob("*.c"))


GUEST_ABI = HERE.parent / "pyvswitch" / "guest" / "runtime" / "vsw_guest_abi.h"


def _headers() -> list[str]:
    """The parts vsw.h includes, in its order, then vsw_test.h."""
    parts = re.findall(r'^#include "(vsw_[a-z0-9_]+\.h)"', (HERE / "vsw.h").read_text(), re.M)
    return [*parts, "vsw_test.h"]


def _block(name: str) -> str:
    text = (HERE / name).read_text()
    if text.count("/* CDEF-BEGIN */") != 1 or text.count("/* CDEF-END */") != 1:
        raise SystemExit(f"csrc/{name}: expected one CDEF-BEGIN ... CDEF-END block")
    return text.split("/* CDEF-BEGIN */", 1)[1].split("/* CDEF-END */", 1)[0]


def _cdef() -> str:
    """Each header's CDEF block, and every #define of the guest ABI header as a
    constant whose value the compiler supplies (cffi's "#define NAME ..."): one definition."""
    names = re.findall(r"^#define (VSW_[A-Z0-9_]+) ", GUEST_ABI.read_text(), re.M)
    return ("".join(_block(h) for h in _headers()) +
            "".join(f"#define {n} ...\n" for n in names))


FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Wno-psabi", "-fno-strict-aliasing", "-D_GNU_SOURCE",
         "-fvisibility=hidden"]  # only the module init is exported: calls inside skip the PLT
if os.environ.get("VSW_SANITIZE"):
    SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]
    FLAGS += ["-O1", *SAN]
    LINK = SAN
else:
    # link-time optimisation inlines the store's and the bus's small calls into
    # the switch (about 5 ns of its 50-100)
    FLAGS += ["-O3", "-flto=auto"]
    LINK = ["-O3", "-flto=auto"]

ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "pyvswitch._vsw",
    '#include "vsw.h"\n#include "vsw_test.h"\n#include "vsw_guest_abi.h"',
    # relative to the project root, where setup.py runs the build
    sources=[f"csrc/{name}" for name in SOURCES],
    include_dirs=["csrc", "pyvswitch/guest/runtime"],
    extra_compile_args=FLAGS,
    extra_link_args=LINK,
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
