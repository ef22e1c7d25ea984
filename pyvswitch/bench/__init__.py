"""pyvswitch bench: the architect's view and the prototype developer's.

Two parts, as tables or one JSON document:

- emulator speed: what a hypervisor prototype pays per switch - switch_context
  from Python and the switch loop in C against floors measured in the same run
  (one ffi.memmove of the same bytes; memcpy in C), against a plain-Python
  implementation of the same switch, and with 2, 100 and 10,000 VMs;
- the model: what the hardware would buy - the patented path against the prior
  art for x86_64 with AVX2- and AVX-512-sized state and for aarch64, data
  movement and the fixed exit/entry apart, across burst sizes and thresholds,
  under memory-bus load (p50, p99, p99.9, seeded), with dirty-only saves on and
  off - including where the patented path stops paying.

One concern per file: ``model`` (the model half), ``contention`` (PCPUs sharing
one storage bus), ``emulator`` (the emulator
half), ``timing`` (the timing harness and its floors, also behind
``scripts/bench_switch.py``), ``baselines`` (the plain-Python switch),
``report`` (text and plot), ``progress``; this module runs them as one document.
"""
from __future__ import annotations

import errno
import os
import platform as pyplatform
import sys
import time
from typing import Any

from ..hw import VswError, lib
from ..platform import Platform
from .contention import contention
from .emulator import emulator
from .model import Model, model
from .progress import Progress
from .report import format_text, plot

__all__ = ["Model", "format_text", "machine_info", "plot", "run"]


def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"machine": pyplatform.machine(), "cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0],
            "system": f"{pyplatform.system()} {pyplatform.release()}",
            "crc32c_hw": bool(lib.vsw_crc32c_hw())}


def run(platform: str | None = None, quick: bool = False, model_only: bool = False) -> dict[str, Any]:
    plat = Platform.load(platform)
    if not plat.of_kind("pcpu"):
        raise VswError(errno.EINVAL, "the platform has no PCPU")
    if plat.of_kind("mover"):       # refused as the mover's probe refuses it (E2BIG), same words
        Model(plat, plat.layout.name).store_path().close()
    prog = Progress((0 if model_only else 10) + 4)
    t0 = time.perf_counter()
    doc: dict[str, Any] = {
        "pyvswitch_bench": 1, "quick": quick, "machine": machine_info(),
        "platform": {"name": plat.name, "source": plat.source,
                     "devices": [{"name": s.name, "kind": s.kind, "params": s.params} for s in plat.devices]},
    }
    try:
        doc["model"] = model(plat, quick, prog)
        prog.step("model: PCPUs sharing one storage bus")
        doc["contention"] = contention(4, 100 if quick else 400, plat.layout.name)
        doc["emulator"] = None if model_only else emulator(quick, prog)
    finally:
        prog.close()
    doc["seconds"] = time.perf_counter() - t0
    return doc
