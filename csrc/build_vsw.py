"""cffi build script for pyvswitch._vsw (API mode, out of line).

The cdef is the block of csrc/vsw.h between the CDEF markers, so the header
stays the single statement of the ABI.
"""
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = sorted(p.name for p in HERE.glob("*.c"))


def _cdef() -> str:
    text = (HERE / "vsw.h").read_text()
    return text.split("/* CDEF-BEGIN */", 1)[1].split("/* CDEF-END */", 1)[0]


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "pyvswitch._vsw",
    '#include "vsw.h"',
    # relative to the project root, where setup.py runs the build
    sources=[f"csrc/{name}" for name in SOURCES],
    include_dirs=["csrc"],
    extra_compile_args=["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-psabi", "-fno-strict-aliasing", "-D_GNU_SOURCE"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
