"""pyvswitch <verb> (also python -m pyvswitch <verb>).

Exit status: probe - 0 the fast switch path is usable, 1 only the fallback
path, 2 an error; demo - 0 every machine's state checked out, 1 a mismatch,
2 an error.  Every verb takes --json.
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
    from .demo import run_demo
    report = run_demo(platform=args.platform, vms=args.vms, switches=args.switches)
    text = report.pop("text")
    print(json.dumps(report, indent=2) if args.json else text)
    return 0 if report["ok"] else 1


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
    d.add_argument("--json", action="store_true", help="one JSON document")
    d.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except VswError as exc:
        print(f"pyvswitch {args.verb}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
