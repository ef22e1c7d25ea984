"""pyvswitch <verb> (also python -m pyvswitch <verb>).

Exit status: probe - 0 the fast switch path is usable, 1 only the fallback
path, 2 an error; demo - 0 every machine's state checked out, 1 a mismatch,
2 an error; bench, trace - 0 done, 2 an error.  Every verb takes --json.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .hw import VswError


def _probe(args: argparse.Namespace) -> int:
    from .probe import as_json, as_text, probe
    report, host = probe(args.platform, host=not args.no_host)
    source = args.platform or "built-in reference"
    print(json.dumps(as_json(report, host, source), indent=2) if args.json else as_text(report, host, source))
    return 0 if report.fast_path else 1


def _demo(args: argparse.Namespace) -> int:
    if args.kvm:
        from .kvm.demo import run_kvm_demo
        report = run_kvm_demo(platform=args.platform, slice_us=args.slice_us)
    else:
        from .demo import run_demo
        report = run_demo(platform=args.platform, vms=args.vms, switches=args.switches)
    text = report.pop("text")
    print(json.dumps(report, indent=2) if args.json else text)
    return 0 if report["ok"] else 1


def _bench(args: argparse.Namespace) -> int:
    from . import bench
    doc = bench.run(platform=args.platform, quick=args.quick)
    if args.plot:
        bench.plot(doc, args.plot)
    print(json.dumps(doc, indent=2) if args.json else bench.format_text(doc))
    return 0


def _trace(args: argparse.Namespace) -> int:
    from .tracing import run_trace
    doc, stats = run_trace(args.switches, args.out, platform=args.platform, fallback=args.fallback)
    slices = sum(1 for e in doc["traceEvents"] if e["ph"] == "X")
    if args.json:
        print(json.dumps({"out": args.out, "slices": slices, "path": doc["otherData"]["path"], "switches": stats},
                         indent=2))
    else:
        print(f"wrote {args.out}: {args.switches} switches over the {doc['otherData']['path']} path, {slices} slices "
              f"(open it in https://ui.perfetto.dev or chrome://tracing)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyvswitch", description="emulator of hardware-assisted VM switching "
                                     "(patent CN105718300B)")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = sub.add_parser("probe", help="the invention's devices, their drivers, the fast path; and the host")
    p.add_argument("--platform", metavar="FILE", help="platform TOML file or built-in name (default: reference)")
    p.add_argument("--no-host", action="store_true", help="skip the host section")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(run=_probe)
    d = sub.add_parser("demo", help="host and VMs switched many times over both paths, state checked")
    d.add_argument("--platform", metavar="FILE", help="platform TOML file or built-in name (default: reference)")
    d.add_argument("--vms", type=int, default=3, help="VMs besides the host (default 3)")
    d.add_argument("--switches", type=int, default=10000, help="switches per path (default 10000)")
    d.add_argument("--kvm", action="store_true", help="real guests preempted on a KVM vCPU (needs /dev/kvm; "
                   "platform default reference-kvm)")
    d.add_argument("--slice-us", type=float, default=50.0, help="KVM time slice in microseconds (default 50)")
    d.add_argument("--json", action="store_true", help="one JSON document")
    d.set_defaults(run=_demo)
    b = sub.add_parser("bench", help="the model (patented path vs prior art) and the emulator's own speed")
    b.add_argument("--platform", metavar="FILE", help="platform TOML file or built-in name (default: reference)")
    b.add_argument("--quick", action="store_true", help="a first look in a few seconds")
    b.add_argument("--plot", metavar="FILE.png", help="latency vs memory-bus load and bursts vs max burst "
                   "(needs the 'plot' extra: matplotlib)")
    b.add_argument("--json", action="store_true", help="one JSON document, with the platform and the machine")
    b.set_defaults(run=_bench)
    t = sub.add_parser("trace", help="bus transactions of a run of switches as Chrome trace-event JSON")
    t.add_argument("--switches", type=int, default=10, help="switches to trace (default 10)")
    t.add_argument("--out", default="trace.json", help="output file (default trace.json)")
    t.add_argument("--platform", metavar="FILE", help="platform TOML file or built-in name (default: reference)")
    t.add_argument("--fallback", action="store_true", help="unbind the mover first: trace the prior-art path")
    t.add_argument("--json", action="store_true", help="print a JSON summary with each switch's stats")
    t.set_defaults(run=_trace)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except VswError as exc:
        print(f"pyvswitch {args.verb}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:          # e.g. an --out file that cannot be written
        print(f"pyvswitch {args.verb}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
