"""``pyvswitch run [OPTIONS] --linux PROG [ARGS...]``: an unmodified static Linux
x86-64 program as a KVM guest, its system calls served by pyvswitch.

Everything after ``--linux PROG`` is the program's own argv, passed verbatim.
Its stdout and stderr go to ours, and the exit status is the program's own
(``EXIT_STATUS["run"]`` in pyvswitch.cli says the others).  ``--copies N`` runs N copies preempted together on the one
vCPU (each must give the same output); ``--json`` prints one document instead.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import api
from ..hw import VswError
from ..hw.kvm import why_unusable
from ..errors import DEFAULT_LINUX_MEM_MIB, DEFAULT_SLICE_US
from ..errors import MAX_LINUX_STDIN_BYTES as MAX_STDIN
from ..kvm.scheduler import Scheduler
from ..platform.description import DEFAULT_KVM_PLATFORM
from . import EVERY_VERB, EXIT_CODES, FAULT_STATUS



def run_linux(program: str, argv: Sequence[str], *, env: Sequence[str] = (), ro_dir: str | None = None,
              stdin: bytes = b"", slice_us: float = DEFAULT_SLICE_US, copies: int = 1, seed: int = 1,
              mem_mib: int = DEFAULT_LINUX_MEM_MIB,
              platform: str | None = None) -> dict[str, Any]:
    """Runs ``program`` (``copies`` of it, preempted together); per copy its stdout,
    stderr, exit status, fault and system-call report."""
    why = why_unusable()
    if why is not None:
        raise VswError(errno.ENODEV, f"running Linux programs needs a usable /dev/kvm: {why}")
    if not isinstance(copies, int) or not 1 <= copies <= 64:
        raise VswError(errno.EINVAL, f"--copies is 1 to 64, got {copies!r}")
    plat = platform or DEFAULT_KVM_PLATFORM
    with api.open(plat) as hv:
        sched = Scheduler(hv)
        jobs = [sched.add_linux(hv.create_vm(f"linux{i}"), program, [os.path.basename(program), *argv] if argv is not None
                                else None, list(env), ro_dir=ro_dir, stdin=stdin, seed=seed, mem_bytes=mem_mib << 20)
                for i in range(copies)]
        try:
            rep = sched.run(slice_us=slice_us)
        finally:
            for j in jobs:
                j.linux.close()
        rows = [{"machine": j.machine.name, "stdout": bytes(j.output).decode("utf-8", "replace"),
                 "stderr": bytes(j.linux.stderr).decode("utf-8", "replace"), "exit_status": j.exit_status,
                 "error": _why_failed(j), "slices": j.slices, "syscalls": j.linux.report()} for j in jobs]
    same = all((r["stdout"], r["exit_status"]) == (rows[0]["stdout"], rows[0]["exit_status"]) for r in rows)
    return {"program": program, "argv": list(argv), "platform": plat, "slice_us": slice_us, "copies": rows,
            "same": same, "run": {k: v for k, v in rep.as_dict().items() if k != "jobs"}}


def _why_failed(job: Any) -> str | None:
    """Why a copy did not end in exit/exit_group: its error, its fault (a crash
    that was reported as exit status 0), or its never exiting; None when it exited."""
    if job.error:
        return str(job.error)
    if job.crash is not None:
        return f"the guest faulted: {job.crash}"
    if job.exit_status is None:
        return "the guest stopped without calling exit or exit_group"
    return None


def linux_parser() -> argparse.ArgumentParser:
    """The options of ``run ... --linux PROG`` (the words before ``--linux``)."""
    p = argparse.ArgumentParser(prog="pyvswitch run", description="an unmodified static Linux x86-64 program "
                                "as a KVM guest: pyvswitch run [OPTIONS] --linux PROG [ARGS...]",
                                epilog=f"exit status: {EXIT_CODES['run']}; {EVERY_VERB}")
    p.add_argument("--ro-dir", metavar="DIR", help="the read-only directory the program sees as / (default: none)")
    p.add_argument("--stdin", metavar="FILE", help="its standard input (default: empty)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="an environment variable")
    p.add_argument("--slice-us", type=float, default=DEFAULT_SLICE_US,
                   help="time slice in microseconds (default %(default)s)")
    p.add_argument("--copies", type=int, default=1, help="copies preempted together (default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of getrandom and AT_RANDOM (default %(default)s)")
    p.add_argument("--mem-mib", type=int, default=DEFAULT_LINUX_MEM_MIB,
                   help="address space in MiB (default %(default)s)")
    p.add_argument("--platform", metavar="FILE",
                   help=f"a platform with a vsw,pcpu-kvm (default {DEFAULT_KVM_PLATFORM})")
    p.add_argument("--json", action="store_true", help="one JSON document")
    return p


def main_linux(argv: Sequence[str]) -> int:
    """``run`` options, then ``--linux PROG [ARGS...]``."""
    i = list(argv).index("--linux")
    opts, rest = list(argv[:i]), list(argv[i + 1:])
    p = linux_parser()
    args = p.parse_args(opts)
    if not rest:
        p.error("--linux needs a program")
    try:
        stdin = b""
        if args.stdin:
            with open(args.stdin, "rb") as f:
                stdin = f.read(MAX_STDIN + 1)       # /dev/zero or a pipe that never ends: bounded
            if len(stdin) > MAX_STDIN:
                raise VswError(errno.EFBIG, f"--stdin {args.stdin}: more than {MAX_STDIN >> 20} MiB (the guest "
                                            "takes its standard input whole; give it a file that ends)")
        doc = run_linux(rest[0], rest[1:], env=args.env, ro_dir=args.ro_dir, stdin=stdin, slice_us=args.slice_us,
                        copies=args.copies, seed=args.seed, mem_mib=args.mem_mib, platform=args.platform)
    except OSError as exc:
        print(f"pyvswitch run --linux: {exc}", file=sys.stderr)
        return 2
    first = doc["copies"][0]
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(first["stdout"])
        sys.stdout.flush()
        sys.stderr.write(first["stderr"])
        for row in doc["copies"]:
            if row["error"]:
                print(f"pyvswitch run --linux: {row['machine']}: {row['error']}", file=sys.stderr)
        if not doc["same"]:
            print("pyvswitch run --linux: the copies differ", file=sys.stderr)
        if first["syscalls"].get("enosys"):
            print(f"pyvswitch run --linux: unserved system calls (ENOSYS): {first['syscalls']['enosys']}",
                  file=sys.stderr)
    if any(r["error"] for r in doc["copies"]):
        return FAULT_STATUS
    if not doc["same"]:
        return 1 if first["exit_status"] == 0 else int(first["exit_status"])
    return int(first["exit_status"] or 0)
