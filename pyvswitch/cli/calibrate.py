"""``pyvswitch calibrate``: this host's costs as a platform file (bench/calibrate.py)."""
from __future__ import annotations

import argparse
import errno
import json
import os
from collections.abc import Callable

from ..errors import VswError


def run(args: argparse.Namespace) -> int:
    from ..bench.calibrate import measure, platform_toml
    from ..platform import Platform
    if os.path.exists(args.out) and not args.force:
        raise VswError(errno.EEXIST, f"{args.out} exists; choose another --out, or --force to replace it")
    doc = measure(quick=args.quick, kvm=not args.no_kvm)
    text = platform_toml(doc)
    tmp = f"{args.out}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    try:
        Platform.load(tmp)              # what it wrote is a platform that loads
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if args.json:
        print(json.dumps({"out": args.out, **doc}, indent=2))
        return 0
    x, m, k = doc["xsave"], doc["memcpy"], doc["exit_entry"]

    def s(d: dict[str, float], unit: str, digits: int = 1) -> str:
        return f"{d['median']:.{digits}f} {unit} (min {d['min']:.{digits}f}, max {d['max']:.{digits}f})"
    print(f"wrote {args.out}: {doc['host']['cpu'] or doc['host']['machine']}")
    print(f"  XSAVE + XRSTOR of {x['xsave_bytes']} bytes (XCR0 {x['xcr0']:#x}): {s(x['pair_ns'], 'ns')}, "
          f"{s(x['pair_tsc_cycles'], 'TSC cycles', 0)} at {x['tsc_mhz']['median']:.0f} MHz")
    print(f"  memcpy of a {m['bytes']}-byte context: {s(m['copy_ns'], 'ns')}, {s(m['gb_per_s'], 'GB/s', 2)}")
    print("  VM exit + entry (KVM_RUN with an I/O exit, inside the kernel): " +
          (s(k['inside_kvm_run_ns'], 'ns') if k.get("available") else f"not measured: {k['why']}"))
    return 0


def add(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
        verb: Callable[..., argparse.ArgumentParser]) -> None:
    c = verb(sub, "calibrate", "measure this host (XSAVE/XRSTOR, memcpy, VM exit+entry) into a platform file",
             "the measurements as JSON", platform_help=None)
    c.add_argument("--out", default="calibrated.toml", help="the platform file to write (default %(default)s)")
    c.add_argument("--force", action="store_true", help="replace --out if it exists")
    c.add_argument("--quick", action="store_true", help="fewer rounds: a first look")
    c.add_argument("--no-kvm", action="store_true", help="skip the VM exit + entry even where /dev/kvm works")
    c.set_defaults(run=run)
