#!/usr/bin/env python3
"""Emulator-speed benchmark of the switch (thin wrapper over pyvswitch.bench.timing)."""
import argparse
import json

from pyvswitch.bench.timing import format_report, report

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--quick", action="store_true", help="fewer repetitions")
parser.add_argument("--json", action="store_true", help="print JSON")
args = parser.parse_args()
rep = report(quick=args.quick)
print(json.dumps(rep, indent=2) if args.json else format_report(rep))
