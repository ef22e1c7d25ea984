"""``pyvswitch guest build``: a freestanding C program and the guest runtime,
compiled and linked by the system's gcc into a static x86-64 ELF image."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ..hw import VswError

RUNTIME = ("crt0.S", "runtime.c")
#: Why each flag: a guest has no libc, no TLS (so no stack protector), no
#: dynamic loader (static, not PIE), and runs where the linker script puts it.
BASE_FLAGS = ("-ffreestanding", "-nostdlib", "-static", "-no-pie", "-fno-pic", "-fno-stack-protector",
              "-fno-asynchronous-unwind-tables", "-fno-exceptions", "-mno-red-zone", "-O2", "-g0",
              "-Wl,--build-id=none", "-Wl,-z,noexecstack")


def runtime_dir() -> Path:
    """The folder holding the runtime's sources, the header and the linker script."""
    return Path(str(resources.files("pyvswitch.guest") / "runtime"))


#: A guest linked with musl (``libc="musl"``): a static Linux program, musl's own
#: start-up code, stdio, <ctype.h> and libm; vsw_libc.c gives it the vsw_* API.
MUSL_FLAGS = ("-static", "-no-pie", "-O2", "-g0", "-Wl,--build-id=none", "-Wl,-z,noexecstack")
LIBCS = ("none", "musl")


def build(sources: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
          cflags: Sequence[str] = (), cc: str | None = None, libc: str = "none") -> Path:
    """Compiles ``sources`` with the runtime into the ELF image ``out``; gcc flags
    in ``cflags`` come after the defaults (so ``-O3`` or ``-march=native`` win).
    ``libc="musl"`` links musl's C and math libraries instead of the freestanding
    runtime (``musl-gcc``, from musl-tools): the guest is then a static Linux program
    whose system calls pyvswitch serves (``pyvswitch.guest.linux``)."""
    if libc not in LIBCS:
        raise VswError(errno.EINVAL, f"guest build: libc is one of {', '.join(LIBCS)}, not {libc!r}")
    if libc == "musl":
        return _build_musl(sources, out, cflags, cc)
    if not sources:
        raise VswError(errno.EINVAL, "guest build needs at least one C source")
    for src in sources:
        if not Path(src).is_file():
            raise VswError(errno.ENOENT, f"guest build: no source file {os.fspath(src)!r}")
    compiler = cc or os.environ.get("CC") or "gcc"
    if shutil.which(compiler) is None:
        raise VswError(errno.ENOENT, f"guest build: no C compiler {compiler!r} on PATH (install gcc)")
    rt = runtime_dir()
    cmd = [compiler, *BASE_FLAGS, f"-I{rt}", f"-T{rt / 'vsw_guest.ld'}", *cflags, "-o", os.fspath(out),
           *(os.fspath(rt / f) for f in RUNTIME), *(os.fspath(s) for s in sources)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        hint = ""
        if any(f"undefined reference to `{n}" in r.stderr for n in _LIBC_NAMES):
            hint = ("\n(a freestanding guest has no C library: build with --libc musl to link musl's printf, "
                    "<ctype.h> and libm" + ("" if shutil.which("musl-gcc") else "; apt-get install musl-tools") + ")")
        raise VswError(errno.ENOEXEC, f"guest build: {compiler} failed (exit {r.returncode}):\n{r.stderr.strip()}"
                                      f"{hint}")
    return Path(out)


#: names whose absence at link time means "this program wants a C library"
_LIBC_NAMES = ("printf", "puts", "putchar", "sqrt", "pow", "floor", "ceil", "fmod", "exp", "log", "sin", "cos",
               "atan2", "__ctype_b_loc", "__ctype_toupper_loc", "isalpha", "toupper", "stdout", "fprintf")


def _build_musl(sources: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], cflags: Sequence[str],
                cc: str | None) -> Path:
    if not sources:
        raise VswError(errno.EINVAL, "guest build needs at least one C source")
    for src in sources:
        if not Path(src).is_file():
            raise VswError(errno.ENOENT, f"guest build: no source file {os.fspath(src)!r}")
    compiler = cc or "musl-gcc"
    if shutil.which(compiler) is None:
        raise VswError(errno.ENOENT, f"guest build --libc musl: no {compiler!r} on PATH (apt-get install musl-tools)")
    rt = runtime_dir()
    cmd = [compiler, *MUSL_FLAGS, f"-I{rt}", *cflags, "-o", os.fspath(out), os.fspath(rt / "vsw_libc.c"),
           *(os.fspath(s) for s in sources), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise VswError(errno.ENOEXEC, f"guest build: {compiler} failed (exit {r.returncode}):\n{r.stderr.strip()}")
    return Path(out)
