"""pyvswitch <verb>: the command line (also ``python -m pyvswitch``).

Exit status: 0 success; 1 the verb ran but its check failed (demo: a state
mismatch); 2 bad usage or an error.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .hw import VswError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyvswitch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    demo = sub.add_parser("demo", help="switch a host and a few VMs many times on the built-in platform")
    demo.add_argument("--vms", type=int, default=3, help="number of VMs (default 3)")
    demo.add_argument("--switches", type=int, default=10000, help="switches to make (default 10000)")
    demo.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    try:
        if args.verb == "demo":
            from .demo import run_demo
            report = run_demo(vms=args.vms, switches=args.switches)
            print(json.dumps(report, indent=2) if args.json else report["text"])
            return 0 if report["ok"] else 1
    except VswError as exc:
        print(f"pyvswitch {args.verb}: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
