"""``pyvswitch calibrate``: this host's own context-switch costs, as a platform file.

Measured here, in rounds (medians with min and max):

- XSAVE + XRSTOR of the state this host's XCR0 enables (CPUID leaf 0xD's size),
  back to back, in ns and TSC ticks ("cycles": the TSC's rate, also measured) -
  the prior art on a core with write-back caches, where a save lands in L1;
- memcpy of one context's bytes (the layout's size) between hot buffers: its
  latency and bandwidth;
- where /dev/kvm works, a VM exit + entry: a guest whose every instruction
  after its work is a port write, each KVM_RUN timed inside the kernel (an
  upper bound on the hardware's exit + entry: KVM's I/O exit handling is in it;
  on a nested host it is the outer hypervisor's too).

The platform file written is the reference platform with this host's PCPU (its
TSC rate as cpu_mhz, the exit + entry measured) and a ``[calibration]`` table
recording every measurement and the cached-save prior art:
``cached_save_ns``, one XSAVE + XRSTOR pair, priced beside the patent's
uncached prior art (every register store a transaction over the memory bus).
``bench --platform FILE`` and ``sweep --platform FILE`` price the fast path
against both.
"""
from __future__ import annotations

import errno
import os
import pathlib
import platform as pyplatform
import statistics
import time
import tomllib
from typing import Any

from ..errors import VswError, check
from ..hw import Layout, ffi, lib
from ..schema import KINDS
from .model import XSAVE_XRSTOR_CYCLES

#: The reference point docs/guides/architects.md states (an x86 host of ours, 2,688 bytes of AVX-512 state), used
#: where no calibration is given: XSAVE + XRSTOR cycles, low and high.
REFERENCE_XSAVE_XRSTOR_CYCLES = XSAVE_XRSTOR_CYCLES


def _spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def measure_xsave(rounds: int = 7, iterations: int = 20000) -> dict[str, Any]:
    """XSAVE + XRSTOR pairs of the host's enabled state: ns and TSC ticks per pair."""
    out = ffi.new("struct vsw_calibration *")
    ns, tsc = [], []
    for _ in range(rounds):
        check(lib.vsw_calibrate_xsave(iterations, out), "XSAVE calibration",
              {errno.EOPNOTSUPP: "this host has no XSAVE the OS enabled (not x86_64?)"})
        ns.append(out.xsave_xrstor_ns / iterations)
        tsc.append(out.xsave_xrstor_tsc / iterations)
    tsc_mhz = [t / n * 1000 for t, n in zip(tsc, ns)]
    return {"xcr0": int(out.xcr0), "xsave_bytes": int(out.xsave_bytes), "pair_ns": _spread(ns),
            "pair_tsc_cycles": _spread(tsc), "tsc_mhz": _spread(tsc_mhz)}


def measure_memcpy(size: int, rounds: int = 7, iterations: int = 20000) -> dict[str, Any]:
    """memcpy of ``size`` bytes between hot buffers: ns per copy and GB/s."""
    ns, tsc = ffi.new("uint64_t *"), ffi.new("uint64_t *")
    per = []
    for _ in range(rounds):
        check(lib.vsw_calibrate_memcpy(size, iterations, ns, tsc), "memcpy calibration")
        per.append(ns[0] / iterations)
    return {"bytes": size, "copy_ns": _spread(per), "gb_per_s": _spread([size / p for p in per])}


def measure_exit_entry(rounds: int = 5, runs: int = 400) -> dict[str, Any]:
    """A KVM_RUN round trip of a guest that exits at once (a port write), timed
    inside KVM_RUN: ns per exit + entry - or why it cannot be measured here."""
    from ..hw import Bus, BusParams, MoverParams, Path, Store
    from ..hw.kvm import KvmPcpu, KvmVcpu, why_unusable
    from ..guest import loader
    why = why_unusable()
    if why:
        return {"available": False, "why": why}
    vcpu = KvmVcpu(mem_bytes=4 << 20)
    pcpu = KvmPcpu(vcpu)
    lay = Layout.get("x86_64")
    store = Store(lay, 1 << 20)
    path = Path.mover(store, Bus(BusParams.of("storage", {})), MoverParams.of({}))
    try:
        pcpu.thaw(1)
        slot = store.alloc(1)
        loader.load(vcpu.memory, 0, "hash")
        slot.write(0, loader.initial_state(0, 1, 1, vcpu.info["xsave_components"] & loader.GUEST_XCR0))
        pcpu.switch(path, 0, slot)
        vcpu.push(pcpu)
        for _ in range(50):                 # through its one round of work, to the loop that only exits
            x = vcpu.run(1_000_000_000)
            if x.reason != "io":
                raise VswError(errno.EIO, f"the calibration guest exited with {x.reason}, not a port write")
        inside, wall = [], []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            got = [vcpu.run(1_000_000_000).run_ns for _ in range(runs)]
            wall.append((time.perf_counter_ns() - t0) / runs)
            inside.append(statistics.median(got))
        return {"available": True, "inside_kvm_run_ns": _spread(inside), "round_trip_ns": _spread(wall)}
    finally:
        if pcpu.owner:
            pcpu.switch(path, pcpu.owner, None)
        pcpu.close()
        vcpu.close()
        path.close()
        store.close()


def measure(quick: bool = False, kvm: bool = True) -> dict[str, Any]:
    """Every measurement of this host."""
    it = 2000 if quick else 20000
    lay = Layout.get("x86_64")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    x = measure_xsave(5 if quick else 9, it)
    m = measure_memcpy(lay.size, 5 if quick else 9, it)
    k = measure_exit_entry(3 if quick else 5, 100 if quick else 400) if kvm else {"available": False,
                                                                                 "why": "not asked (--no-kvm)"}
    return {"host": {"cpu": cpu, "machine": pyplatform.machine(), "system": f"{pyplatform.system()} "
                     f"{pyplatform.release()}", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "xsave": x, "memcpy": m, "exit_entry": k}


def platform_toml(doc: dict[str, Any]) -> str:
    """The reference platform with this host's PCPU and a [calibration] table of every measurement."""
    x, m, k, host = doc["xsave"], doc["memcpy"], doc["exit_entry"], doc["host"]
    mhz = max(1, round(x["tsc_mhz"]["median"]))
    default_ee = KINDS["pcpu"].param("exit_entry_cycles").default
    ee = round(k["inside_kvm_run_ns"]["median"] * mhz / 1000) if k.get("available") else default_ee
    cached_ns = x["pair_ns"]["median"]

    def t(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{a} = {t(b)}" for a, b in v.items()) + " }"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return f"{v:.3f}"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    ref = (pathlib.Path(__file__).resolve().parent.parent / "platforms" / "reference.toml").read_text()
    body = ref[ref.index("[[device]]"):]
    pcpu = 'compatible = ["vsw,pcpu"]\n'
    body = body.replace(pcpu, pcpu + "# cpu_mhz: the TSC's rate, measured; exit_entry_cycles: " + (
        "a KVM_RUN round trip with an I/O exit, measured (an upper bound)" if k.get("available")
        else f"the schema's default ({k.get('why')})") + f"\nparams = {{ cpu_mhz = {mhz}, exit_entry_cycles = {ee} }}\n", 1)
    lines = [
        "# Written by `pyvswitch calibrate`: the reference platform with this host's PCPU, and what was measured.",
        f"# {host['cpu'] or host['machine']}, {host['system']}, {host['when']}",
        "[platform]",
        'name = "calibrated"',
        f"description = {t('reference platform; PCPU and cached-save prior art measured on ' + (host['cpu'] or host['machine']))}",
        "",
        body.rstrip("\n"),
        "",
        "# The prior art priced two ways: the patent's (every register store a DRAM transaction over the",
        "# memory bus, the memory-bus parameters above) and this host's, with its caches: a switch saves",
        "# and restores its state with XSAVE + XRSTOR near cache speed (cached_save_ns, one pair measured).",
        "[calibration]",
        f"cached_save_ns = {cached_ns:.3f}",
        f"cached_save_bytes = {x['xsave_bytes']}",
        f"xcr0 = {x['xcr0']:#x}",
        f"xsave_xrstor_ns = {t(x['pair_ns'])}",
        f"xsave_xrstor_tsc_cycles = {t(x['pair_tsc_cycles'])}",
        f"tsc_mhz = {t(x['tsc_mhz'])}",
        f"memcpy_bytes = {m['bytes']}",
        f"memcpy_ns = {t(m['copy_ns'])}",
        f"memcpy_gb_per_s = {t(m['gb_per_s'])}",
        f"kvm_exit_entry = {t(k)}",
        f"host = {t(host)}",
    ]
    return "\n".join(lines) + "\n"


def calibration_of(source: "str | os.PathLike[str] | None") -> dict[str, Any] | None:
    """The [calibration] table of a platform file (None: a built-in platform, or none in it)."""
    if not source or not os.path.isfile(source):
        return None
    try:
        with open(source, "rb") as f:
            cal = tomllib.load(f).get("calibration")
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise VswError(errno.EINVAL, f"{source}: cannot read its [calibration]: {exc}") from None
    if cal is None:
        return None
    v = cal.get("cached_save_ns") if isinstance(cal, dict) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1e7:
        raise VswError(errno.EINVAL, f"{source}: [calibration] cached_save_ns is a positive number of ns, got {v!r}")
    return cal


def cached_save_ns(calibration: dict[str, Any] | None, cpu_mhz: float) -> tuple[float, str]:
    """The cached prior art's save + restore (ns) and where the figure comes from."""
    if calibration:
        return float(calibration["cached_save_ns"]), "XSAVE+XRSTOR measured on this host (pyvswitch calibrate)"
    lo, hi = REFERENCE_XSAVE_XRSTOR_CYCLES
    source = f"XSAVE+XRSTOR {lo}-{hi} cycles, the reference point of docs/guides/architects.md"
    return (lo + hi) / 2 * 1000.0 / cpu_mhz, source
