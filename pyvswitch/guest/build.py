"""``pyvswitch guest build``: a freestanding C program and the guest runtime,
compiled and linked by the system's gcc into a static x86-64 ELF image."""
from __future__ import annotations

import errno
import os
import re
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


#: What a C programmer reaches for first, and what the guest runtime (vsw_guest.h) has instead.
LIBC_INSTEAD = {"printf": "vsw_printf", "puts": "vsw_printf(\"%s\\n\", s)", "putchar": "vsw_putc",
                "fprintf": "vsw_printf", "sprintf": "vsw_snprintf", "snprintf": "vsw_snprintf",
                "vprintf": "vsw_vprintf", "fputs": "vsw_write", "fwrite": "vsw_write", "putc": "vsw_putc",
                "fputc": "vsw_putc", "exit": "vsw_exit", "_exit": "vsw_exit", "abort": "vsw_exit",
                "clock_gettime": "vsw_clock_ns", "time": "vsw_clock_ns", "clock": "vsw_clock_ns"}
#: gcc options whose value is the next argument (so it is not a source).
GCC_TAKES_VALUE = frozenset({"-I", "-D", "-U", "-include", "-imacros", "-iquote", "-isystem", "-idirafter", "-L", "-l",
                             "-x", "-MF", "-MT", "-MQ", "-T", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-u", "-z",
                             "-e", "--param", "-aux-info", "-wrapper", "-specs"})


def split_gcc_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Sources and gcc flags from a command line in any order: a word that is not
    an option, nor the value of one that takes the next word (-I DIR, -D X, ...),
    is a source."""
    sources, flags, take = [], [], False
    for a in args:
        if take:
            flags.append(a)
            take = False
        elif a.startswith("-") and a != "-":
            flags.append(a)
            take = a in GCC_TAKES_VALUE
        else:
            sources.append(a)
    return sources, flags


def _hint(stderr: str) -> str:
    """What the runtime offers instead of the libc calls a failed link names, and
    that ``--libc musl`` links a real C library."""
    missing = re.findall(r"undefined reference to `([A-Za-z_][A-Za-z_0-9]*)'", stderr)
    offered = {m: LIBC_INSTEAD[m] for m in dict.fromkeys(missing) if m in LIBC_INSTEAD}
    wants_libc = "stdio.h" in stderr or any(m in _LIBC_NAMES for m in missing)
    if not offered and not wants_libc:
        return ""
    instead = ", ".join(f"{m} -> {v}" for m, v in offered.items())
    return ("\nhint: a guest has no libc (no <stdio.h>, <stdlib.h>); #include <vsw_guest.h> instead, which offers "
            "vsw_printf, vsw_snprintf, vsw_putc, vsw_write, vsw_exit, vsw_clock_ns, the string functions and "
            "malloc/free" + (f" ({instead})" if instead else "") + ". `pyvswitch guest runtime` shows where it is."
            "\nOr build with --libc musl to link musl's printf, <ctype.h> and libm"
            + ("" if shutil.which("musl-gcc") else " (apt-get install musl-tools)") + ".")


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
        raise VswError(errno.EINVAL, "guest build needs at least one C source (e.g. pyvswitch guest build -O2 prog.c "
                                     "-o prog.elf)")
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
        raise VswError(errno.ENOEXEC, f"guest build: {compiler} failed (exit {r.returncode}):\n{r.stderr.strip()}"
                                      + _hint(r.stderr))
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
