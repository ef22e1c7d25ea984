"""The KVM hardware model: what /dev/kvm offers (``kvm_info``), one KVM VM with
one vCPU and its guest memory, whose whole state moves to and from a PCPU
register file (C: csrc/kvm_*.c).  How guests are laid out in that memory is
``pyvswitch.guest`` (``layout``, ``loader``)."""
from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import DEFAULT_GUEST_MEM_MIB, VswError, check
from ._ffi import ffi, lib
from .layout import Layout
from .pcpu import CPU_MHZ, EXIT_ENTRY_CYCLES, Pcpu

KVM_EXIT_IO = 2                 # <linux/kvm.h>: a PIO access (KvmExit.kvm_reason)
MSR_RECORD = ffi.sizeof("struct vsw_msr_record")    # one MSR of the layout's msrs group (kvm_msr_entry)
MMIO = lib.VSW_MMIO             # the device registers, guest-physical: no memslot, accesses exit
# device registers (vsw_guest_abi.h), as KVM exits name them (KvmExit.reg): (byte offset from MMIO) / 4
REG_RESULT_LO, REG_RESULT_HI = lib.VSW_REG_RESULT_LO // 4, lib.VSW_REG_RESULT_HI // 4
REG_PROGRESS, REG_DONE = lib.VSW_REG_PROGRESS // 4, lib.VSW_REG_DONE // 4
REG_CONSOLE_ADDR, REG_CONSOLE_LEN = lib.VSW_REG_CONSOLE_ADDR // 4, lib.VSW_REG_CONSOLE_LEN // 4
REG_EXIT, REG_CLOCK = lib.VSW_REG_EXIT // 4, lib.VSW_REG_CLOCK // 4
REG_SYSCALL, REG_FAULT = lib.VSW_REG_SYSCALL // 4, lib.VSW_REG_FAULT // 4

#: capability bits of vsw_kvm_probe, by the names the probe report prints
KVM_CAPS = {"XSAVE": lib.VSW_KVM_CAP_XSAVE, "XCRS": lib.VSW_KVM_CAP_XCRS, "DEBUGREGS": lib.VSW_KVM_CAP_DEBUGREGS,
            "VCPU_EVENTS": lib.VSW_KVM_CAP_VCPU_EVENTS, "XSAVE2": lib.VSW_KVM_CAP_XSAVE2,
            "IMMEDIATE_EXIT": lib.VSW_KVM_CAP_IMMEDIATE_EXIT, "SYNC_REGS": lib.VSW_KVM_CAP_SYNC_REGS,
            "SPLIT_IRQCHIP": lib.VSW_KVM_CAP_SPLIT_IRQCHIP, "EXCEPTION_PAYLOAD": lib.VSW_KVM_CAP_EXCEPTION_PAYLOAD}
#: What pull and push need of KVM.
REQUIRED_CAPS = tuple(n for n, bit in KVM_CAPS.items() if bit & lib.VSW_KVM_CAPS_REQUIRED)


@dataclass
class KvmInfo:
    """What this host's KVM offers, as ``vsw_kvm_probe`` read it through /dev/kvm
    alone (no VM is created); ``reason`` says why the backend cannot run, if not."""
    path: str = "/dev/kvm"
    present: bool = False
    accessible: bool = False
    api_version: int | None = None
    capabilities: dict[str, bool] = field(default_factory=dict)
    nested: str | None = None
    reason: str | None = None       # why it is not usable, when it is not
    absent_msrs: list[str] = field(default_factory=list)    # the layout's MSRs this host lacks
    xsave_size: int = 0             # bytes KVM_GET_XSAVE(2) moves
    xsave_components: int = 0       # XCR0 bits the host has and the layout keeps
    host_msrs: int = 0              # MSRs KVM lists

    @property
    def usable(self) -> bool:
        return self.reason is None


def _probe_reason(path: str, pr: Any) -> str | None:
    """The probe's failure in a sentence (None: the backend can run)."""
    code = -pr.error
    step = pr.failed
    if step == lib.VSW_KVM_PROBE_OK:
        return None
    if step == lib.VSW_KVM_PROBE_BUILD:
        return "this build of pyvswitch has no KVM backend (not Linux x86_64, or no linux/kvm.h)"
    if step == lib.VSW_KVM_PROBE_OPEN:
        if code == errno.ENOENT:
            return f"{path} does not exist (no KVM module loaded, or a guest without nested virtualisation)"
        if code in (errno.EACCES, errno.EPERM):
            return f"cannot open {path}: {os.strerror(code)} (join the kvm group)"
        return f"cannot open {path}: {os.strerror(code)}"
    if step == lib.VSW_KVM_PROBE_API:
        return f"KVM API version {pr.api_version}, expected 12"
    if step == lib.VSW_KVM_PROBE_CAPS:
        missing = [n for n, bit in KVM_CAPS.items() if pr.missing & bit]
        return f"KVM lacks capabilities the backend needs: {', '.join(missing)}"
    what = {lib.VSW_KVM_PROBE_CPUID: "reading the host's CPUID (KVM_GET_SUPPORTED_CPUID)",
            lib.VSW_KVM_PROBE_XSAVE: "this host's XSAVE layout (CPUID leaf 0xD) is not one the layout can map",
            lib.VSW_KVM_PROBE_MSRS: "reading the host's MSR list (KVM_GET_MSR_INDEX_LIST)"}.get(step, f"step {step}")
    return f"KVM probe failed: {what}: {os.strerror(code)}"


def kvm_info(path: str = "/dev/kvm") -> KvmInfo:
    """Probes the host's KVM at ``path`` once (C: ``vsw_kvm_probe``); keep the result
    where it is needed rather than probing again."""
    pr = ffi.new("struct vsw_kvm_probe *")
    lib.vsw_kvm_probe(path.encode(), pr)
    opened = pr.failed not in (lib.VSW_KVM_PROBE_OPEN, lib.VSW_KVM_PROBE_BUILD)
    info = KvmInfo(path=path, present=os.path.exists(path), accessible=opened,
                   api_version=pr.api_version if pr.api_version >= 0 else None,
                   capabilities={n: bool(pr.caps & bit) for n, bit in KVM_CAPS.items()} if opened and
                   pr.failed != lib.VSW_KVM_PROBE_API else {},
                   reason=_probe_reason(path, pr))
    for module in ("kvm_intel", "kvm_amd"):
        p = f"/sys/module/{module}/parameters/nested"
        if os.path.exists(p):
            with open(p) as f:
                info.nested = f"{module}: {f.read().strip()}"
    if info.reason is None:
        info.absent_msrs = [n for i, n in enumerate(layout_msrs()) if not pr.msr_present & (1 << i)]
        info.xsave_size, info.xsave_components, info.host_msrs = pr.xsave_size, pr.xsave.xcr0, pr.host_msrs
    return info



EXIT_NAMES = {lib.VSW_KVM_EXIT_PREEMPTED: "preempted", lib.VSW_KVM_EXIT_IO: "io", lib.VSW_KVM_EXIT_HLT: "hlt",
              lib.VSW_KVM_EXIT_SHUTDOWN: "shutdown", lib.VSW_KVM_EXIT_OTHER: "other",
              lib.VSW_KVM_EXIT_BAD_IO: "bad_io"}
#: The device registers as the device answers them: reg -> (name, bytes, written).
DEVICE_REGS = {REG_RESULT_LO: ("RESULT_LO", 4, True), REG_RESULT_HI: ("RESULT_HI", 4, True),
               REG_PROGRESS: ("PROGRESS", 4, True), REG_DONE: ("DONE", 4, True),
               REG_CONSOLE_ADDR: ("CONSOLE_ADDR", 8, True), REG_CONSOLE_LEN: ("CONSOLE_LEN", 4, True),
               REG_EXIT: ("EXIT", 4, True), REG_CLOCK: ("CLOCK", 8, False),
               REG_SYSCALL: ("SYSCALL", 4, True)}


def layout_msrs() -> list[str]:
    """The x86_64 layout's MSRs in record order, as the C layout table names them
    (their presence is per host)."""
    lay = Layout.get("x86_64")
    group = lay.group("msrs").index
    return [f.name[4:] for f in sorted(lay.fields.values(), key=lambda f: f.offset)
            if f.group == group and f.name.startswith("msr.")]


@dataclass(frozen=True)
class KvmExit:
    """One exit of KVM_RUN.  A device access names either a device register
    (``reg``, an MMIO access at one of them: ``io``) or an I/O port (``port``, a PIO
    access, which the device never answers: ``bad_io``), never both."""
    reason: str                 # preempted | io | bad_io | hlt | shutdown | other
    kvm_reason: int
    reg: int | None             # io: the device register (DEVICE_REGS); None for anything else
    port: int | None            # a PIO access: its I/O port; None for anything else
    size: int
    write: bool
    data: int
    run_ns: int
    addr: int = 0               # an MMIO access: the guest-physical address; PIO: the port

    def describe(self) -> str:
        """The access in words, for an error (`bad_io`: what the device does not answer)."""
        what = f"{self.size}-byte {'write' if self.write else 'read'}"
        where = f"I/O port {self.port:#x}" if self.port is not None else f"{self.addr:#x}"
        return f"{what} at {where}"


def why_unusable(path: str = "/dev/kvm") -> str | None:
    """None when the backend can run here; otherwise why not, in a sentence
    (no /dev/kvm, no permission, API version, missing capabilities, no KVM in
    this build): ``kvm_info(path).reason``."""
    return kvm_info(path).reason


def msr_name(index: int) -> str | None:
    """The layout's name of the MSR with this index, if it has one."""
    lay = Layout.get("x86_64")
    reset = lay.reset_state()
    base = lay.group("msrs").offset + ffi.offsetof("struct vsw_msr_record", "index")
    for i, name in enumerate(layout_msrs()):
        at = base + MSR_RECORD * i
        if int.from_bytes(reset[at:at + 4], "little") == index:
            return name
    return None


class RegionAllocator(Protocol):
    """What divides a vCPU's guest memory between machines (pyvswitch.guest.layout.Regions)."""
    memory_bytes: int

    def get(self, machine_id: int, size: int) -> int: ...
    def release(self, machine_id: int) -> "tuple[int, int] | None": ...
    @property
    def in_use(self) -> int: ...


_PENDING = ("a guest's device access is not complete yet (complete() it first: KVM finishes it "
            "at the next KVM_RUN, in whatever state the vCPU then holds)")
_GONE = "the vCPU is gone: a reset() failed to make a new one (reset() again)"


class KvmVcpu:
    """A KVM vCPU with ``mem_bytes`` of guest memory (a multiple of 2 MiB)."""

    def __init__(self, path: str = "/dev/kvm", mem_bytes: int = DEFAULT_GUEST_MEM_MIB << 20,
                 regions: "RegionAllocator | None" = None) -> None:
        # held around every C call on the handle: close() waits for the call in flight
        # (a slice, or the C slice loop's turn) instead of freeing the vCPU under it
        self._lock = threading.RLock()
        self.runner = threading.Lock()     # held by the one Scheduler.run on this vCPU (pyvswitch.kvm)
        self._h: Any = None
        out, info = ffi.new("struct vsw_kvm **"), ffi.new("struct vsw_kvm_info *")
        r = lib.vsw_kvm_open(path.encode(), mem_bytes, out, info)
        check(r, f"KVM vCPU on {path}", {
            errno.ENOENT: f"{path} does not exist (no KVM module loaded, or no nested virtualisation)",
            errno.EACCES: f"no permission to open {path} (join the kvm group)",
            errno.EPROTONOSUPPORT: f"KVM API version {info.api_version}, this backend speaks version 12",
            errno.ENOSYS: "this build of pyvswitch has no KVM backend (not Linux x86_64, or no linux/kvm.h)",
            errno.EOPNOTSUPP: "KVM lacks capabilities the backend needs (kvm_info() names them)",
            errno.EINVAL: f"guest memory must be a positive multiple of 2 MiB up to {MMIO >> 20} MiB (where the "
                          f"device registers are), got {mem_bytes}",
        })
        self._h = ffi.gc(out[0], lib.vsw_kvm_close)
        m = info.xsave
        self.info = {"api_version": info.api_version, "xsave_size": info.xsave_size,
                     "supported_xcr0": info.supported_xcr0, "host_msrs": info.host_msrs,
                     "mem_bytes": info.mem_bytes, "lapic": bool(info.lapic),
                     # the XSAVE components this host has and the layout keeps, and where the host puts them
                     "xsave_components": m.xcr0,
                     "xsave_offsets": {i: (m.offset[i], m.csize[i]) for i in range(2, lib.VSW_XSAVE_COMPONENTS)
                                       if m.xcr0 >> i & 1}}
        self.msr_present = info.msr_present
        self.memory = ffi.buffer(lib.vsw_kvm_memory(self._h), mem_bytes)
        #: what divides this memory between machines (pyvswitch.guest.layout.Regions),
        #: given by whoever lays guests out in it (the vsw,pcpu-kvm driver); None: nobody
        self.regions: RegionAllocator | None = regions
        self._exit = ffi.new("struct vsw_kvm_exit *")
        self._kick: dict[str, int] | None = None      # shortest_slice_ns's measurement

    def clear(self, offset: int, length: int) -> None:
        """Guest memory [offset, offset + length) back to zeros, without touching it."""
        with self._lock:
            check(lib.vsw_kvm_clear(self.handle, offset, length), "guest memory clear",
                  {errno.EINVAL: f"{offset:#x}+{length:#x} is not a page-aligned range of guest memory"})

    def flush(self) -> None:
        """Applies everything pushed and forgets what is known to be held, so the next
        pull asks KVM for every group (KVM's own word, as its selftests read it)."""
        with self._lock:
            check(lib.vsw_kvm_flush(self.handle), "KVM flush", {errno.EBUSY: _PENDING, errno.ENXIO: _GONE})

    def reset(self) -> None:
        """A fresh vCPU in place of one a guest's triple fault left undefined.  If it
        fails, the vCPU is gone (every call but close and reset: ENXIO) until a reset works."""
        with self._lock:
            check(lib.vsw_kvm_reset(self.handle), "KVM vCPU reset")

    def complete_read(self, value: int) -> None:
        """The value the device-register read that just exited returns (before the next run)."""
        with self._lock:
            check(lib.vsw_kvm_complete_read(self.handle, value), "MMIO read", {errno.EINVAL: "no read is pending"})

    @property
    def absent_msrs(self) -> list[str]:
        """The layout's MSRs this host does not have: never sent to KVM, kept as they are."""
        return [n for i, n in enumerate(layout_msrs()) if not self.msr_present & (1 << i)]

    @property
    def handle(self) -> object:
        if self._h is None:
            raise VswError(errno.EBADF, "this vCPU is closed")
        return self._h

    def pull(self, pcpu: Pcpu) -> None:
        """The vCPU's state into the PCPU's register file (changed groups become dirty)."""
        with self._lock:
            check(lib.vsw_kvm_pull(self.handle, pcpu.handle), "KVM pull",
                  {errno.ESRCH: "no machine is running on the PCPU", errno.EBUSY: _PENDING, errno.ENXIO: _GONE})

    def push(self, pcpu: Pcpu) -> None:
        """The PCPU's register file into the vCPU (nothing is set when it cannot all be)."""
        with self._lock:
            r = lib.vsw_kvm_push(self.handle, pcpu.handle)
            refused = lib.vsw_kvm_refused_msr(self.handle) if r == -errno.EINVAL else 0
        if r >= 0:
            return                  # the messages below read the register file: only for a refusal
        check(r, "KVM push", {
            errno.ESRCH: "no machine is running on the PCPU", errno.EBUSY: _PENDING, errno.ENXIO: _GONE,
            errno.EOPNOTSUPP: f"the context uses XSAVE components this host lacks: its XSTATE_BV has bits "
                              f"{self._missing(pcpu):#x}, this host has {self.info['xsave_components']:#x}",
            errno.EINVAL: (f"KVM refused the value of MSR {msr_name(refused)} ({refused:#x}): "
                           f"{pcpu.regs[f'msr.{msr_name(refused)}']:#x}" if refused and msr_name(refused) else
                           "KVM refused a register value (an inconsistent mode, or an MSR value)")})

    def _missing(self, pcpu: Pcpu) -> int:
        bv = int.from_bytes(pcpu.read(pcpu.layout.field("xstate_bv").offset, 8), "little")
        return bv & ~self.info["xsave_components"]

    def run(self, slice_ns: int) -> KvmExit:
        """Enters the guest until it exits or the slice ends (preempted).  After an
        ``io`` or ``bad_io`` exit the access is complete only at the next ``run`` or
        ``complete``; pull and push refuse (EBUSY) until then."""
        with self._lock:
            check(lib.vsw_kvm_run(self.handle, slice_ns, self._exit), "KVM_RUN", {errno.ENXIO: _GONE})
        return self._last()

    def complete(self) -> KvmExit | None:
        """Completes the pending device access inside the guest that made it, running
        no further instruction: None when complete (or nothing was pending), else
        the next part of a split access, which exited in turn (handle it, call again)."""
        with self._lock:
            r = lib.vsw_kvm_complete(self.handle, self._exit)
        check(r, "KVM_RUN (completing a device access)", {errno.ENXIO: _GONE})
        return self._last() if r == 1 else None

    #: the slice the calibration arms: long enough that the guest is surely running when the kick comes
    PROBE_NS = 100_000

    def shortest_slice_ns(self) -> int:
        """The shortest slice this host keeps, measured once per vCPU: the time it takes
        to stop a running guest once its slice is up (p50 of the preemptions of a
        private guest armed for 100 us; ``kick_report`` has the figures).  A shorter
        slice would be more than doubled.  Clobbers the vCPU's state (push after)."""
        if self._kick is None:
            took = sorted(self.calibrate(self.PROBE_NS, 64))
            over = [t - self.PROBE_NS for t in took]
            self._kick = {"p50_ns": over[len(over) // 2], "p99_ns": over[int(0.99 * len(over))], "min_ns": over[0],
                          "max_ns": over[-1], "samples": len(over)}
        return max(1000, -(-self._kick["p50_ns"] // 1000) * 1000)

    def kick_measurement(self) -> dict[str, int]:
        """What ``shortest_slice_ns`` measured: ns from a slice's end to KVM_RUN's
        return (``p50_ns``, ``p99_ns``, ``min_ns``, ``max_ns``) over ``samples`` runs."""
        self.shortest_slice_ns()
        assert self._kick is not None
        return dict(self._kick)

    def kick_report(self) -> str:
        """What ``shortest_slice_ns`` measured, in words."""
        k = self.kick_measurement()
        return (f"stopping a guest takes {k['p50_ns'] / 1000:.1f} us after its slice is up, p50 of {k['samples']} "
                f"(min {k['min_ns'] / 1000:.1f}, p99 {k['p99_ns'] / 1000:.1f}, max {k['max_ns'] / 1000:.1f})")

    def _last(self, x: Any = None) -> KvmExit:
        """The exit in ``x`` (a ``struct vsw_kvm_exit``; default: the last run's) as a KvmExit."""
        x = self._exit if x is None else x
        return KvmExit(EXIT_NAMES[x.reason], x.kvm_reason, None if x.reg == lib.VSW_KVM_NO_REG else x.reg,
                       x.port if x.kvm_reason == KVM_EXIT_IO else None, x.size, bool(x.write), x.data, x.run_ns,
                       x.addr)

    def calibrate(self, slice_ns: int, samples: int = 64) -> list[int]:
        """Measures preemption here: ``samples`` runs of a private ``jmp .`` guest, each
        armed for ``slice_ns``; the ns each took, from arming to KVM_RUN's return.
        The vCPU holds no guest's state afterwards (push one before running)."""
        if not isinstance(samples, int) or isinstance(samples, bool) or not 0 < samples <= 100_000:
            raise VswError(errno.EINVAL, f"samples must be an integer from 1 to 100000, got {samples!r}")
        took = ffi.new("uint64_t[]", samples)
        with self._lock:
            check(lib.vsw_kvm_calibrate(self.handle, slice_ns, samples, took), "KVM preemption calibration",
                  {errno.EBUSY: _PENDING, errno.ENXIO: _GONE,
                   errno.EIO: "the calibration guest stopped other than by the timer"})
        return list(took)

    def bench_ioctls(self, iterations: int = 1000) -> dict[str, dict[str, float]]:
        """Per-ioctl ns of the GET and SET sequences pull and push issue, straight from C."""
        out = ffi.new("struct vsw_kvm_bench *")
        with self._lock:
            check(lib.vsw_kvm_bench_ioctls(self.handle, iterations, out), "KVM ioctl benchmark")
        skip = set() if self.info["lapic"] else {"LAPIC"}
        names = [ffi.string(n).decode() for n in out.names]
        return {way: {n: total[i] / iterations for i, n in enumerate(names) if n and n not in skip}
                for way, total in (("get", out.get_ns), ("set", out.set_ns))}

    def close(self) -> None:
        """Frees the vCPU, once a call another thread has in flight on it returns."""
        with self._lock:
            if self._h is not None:
                self.memory = None  # type: ignore[assignment]
                ffi.release(self._h)
                self._h = None



class KvmPcpu(Pcpu):
    """A PCPU whose register file is the state of a real KVM vCPU (``vcpu``):
    push before the guest runs, pull before its context is switched out."""

    def __init__(self, vcpu: KvmVcpu, cpu_mhz: int = CPU_MHZ, exit_entry_cycles: int = EXIT_ENTRY_CYCLES) -> None:
        super().__init__("x86_64", cpu_mhz, exit_entry_cycles)
        self.vcpu = vcpu

    def forget(self, machine_id: int) -> None:
        """The machine is gone: its region of guest memory is given back, as zeros."""
        regions = self.vcpu.regions
        had = regions.release(machine_id) if regions is not None else None
        if had is not None and self.vcpu._h is not None:
            self.vcpu.clear(*had)

    def close(self) -> None:
        super().close()
        self.vcpu.close()
