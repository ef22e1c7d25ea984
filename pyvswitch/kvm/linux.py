"""Unmodified static Linux programs as KVM guests: loading one (its Linux stack
and auxv, its own system-call server) and making its ``syscall`` reach that
server on the host at hand.

How a ``syscall`` reaches the emulator is decided by what the vCPU does, not by
what the host is assumed to be.  Every Linux guest gets EFER.SCE, STAR, and an
LSTAR pointing at an entry stub in a supervisor-only page of its own address
space (virtual ``STUB_VA``): ``movabs %eax, VSW_MMIO + SYSCALL_REG; sysretq``.

- On a plain KVM (VMX or SVM) the stub runs at CPL 0: its write to the device
  register exits (``io`` write on ``SYSCALL_REG``) with the caller's registers
  intact; the server's answer goes into RAX and the stub's ``sysretq`` returns.
- On kvm-pvm (Pagetable-based Virtual Machine) a user-mode ``syscall`` is an
  event for PVM's virtual supervisor mode, which needs a PVM vCPU struct that
  only the guest itself could register (PVM's MSRs are not settable through
  KVM_SET_MSRS), so delivery fails and KVM_RUN returns KVM_EXIT_SHUTDOWN - with
  the state of the SYSCALL already taken: RIP = LSTAR, RCX = the return
  address, R11 = RFLAGS, RAX and the arguments intact.  A shutdown whose RIP is
  the stub and whose RCX follows a ``syscall`` instruction is served: RAX takes
  the answer, RIP and RFLAGS what SYSRET would load, and the guest goes on on
  the same vCPU (kvm-pvm keeps it runnable: its MP state stays RUNNABLE).
  Should a host leave the vCPU down instead (the next entry shuts down again
  at once, or comes back reset), the served state is given to a fresh vCPU
  (``KvmVcpu.reset``) and, from then on, after every call on that scheduler.
Any other shutdown is a fault of the guest, reported as before.
"""
from __future__ import annotations

import errno
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..api import Machine
from ..errors import DEFAULT_LINUX_MEM_MIB
from ..guest import loader
from ..guest.layout import regions_of
from ..guest.image import LOAD_FLOOR
from ..guest.linux import LinuxImage, LinuxProcess, build_stack, host_hwcap
from ..hw import Layout, VswError, lib
from ..hw.kvm import MMIO, KvmExit, KvmVcpu

if TYPE_CHECKING:
    from .scheduler import Job, Scheduler

SYSCALL_REG = lib.VSW_REG_SYSCALL  # the entry stub's device register (bytes from VSW_MMIO, vsw_guest_abi.h)
STUB_PA = loader.FAULT_STACK_TOP  # where it lies in the guest's region: in the system area, past its handlers' stack
STUB_VA = loader.SYS_VIRT + STUB_PA  # LSTAR: the stub, in the supervisor-only system area (pyvswitch.guest.loader)
#: movabs %eax, MMIO + SYSCALL_REG ; sysretq
STUB = b"\xa3" + struct.pack("<Q", MMIO + SYSCALL_REG) + b"\x48\x0f\x07"
STAR = (0x1B << 48) | (0x10 << 32)  # SYSRET: CS 0x2B, SS 0x23 (the guest's own); SYSCALL: CS 0x10, SS 0x18
FMASK = 0x47700                 # as Linux: TF DF IF NT AC cleared on entry
STACK_RESERVE = 8 << 20         # the stack's share of the address space (mappings stay below)
DEFAULT_LINUX_MEM = DEFAULT_LINUX_MEM_MIB << 20
MASK64 = (1 << 64) - 1
_LAYOUT = Layout.get("x86_64")


def load_linux(vcpu: KvmVcpu, machine: Machine, program: "str | os.PathLike[str] | bytes | LinuxImage",
               argv: Sequence[str | bytes] | None = None, envp: Sequence[str | bytes] = (), *,
               ro_dir: str | None = None, stdin: bytes = b"", seed: int = 1, mem_bytes: int | None = None,
               xcr0: int | None = None, cr4: int | None = None) -> "Job":
    """Loads a static (or static-PIE) Linux program into the machine's own memory with
    its stack (``argv``, ``envp``, auxv) and sets the machine at its entry point."""
    from .scheduler import Job
    if machine.pcpu is not None:
        raise VswError(errno.EBUSY, f"{machine.name} is running; load programs into saved machines")
    image = program if isinstance(program, LinuxImage) else LinuxImage.read(program)
    size = DEFAULT_LINUX_MEM if mem_bytes is None else mem_bytes
    if not isinstance(size, int) or size < 2 * STACK_RESERVE:
        raise VswError(errno.EINVAL, f"a Linux guest needs at least {2 * STACK_RESERVE >> 20} MiB, got {size!r}")
    if image.end > size - 2 * STACK_RESERVE:
        raise VswError(errno.EFBIG, f"Linux program {image.name} reaches {image.end:#x}; {size >> 20} MiB leave "
                                    "it no heap and stack (give it more guest memory)")
    have = vcpu.info["xsave_components"]
    xcr0 = have & loader.GUEST_XCR0 if xcr0 is None else xcr0
    if not isinstance(xcr0, int) or xcr0 & 0x3 != 0x3 or xcr0 & ~have:
        raise VswError(errno.EINVAL, f"xcr0 {xcr0!r} must hold x87 and SSE (0x3) and only components this host "
                                     f"has ({have:#x})")
    names = [os.fsencode(a) for a in (argv if argv is not None else [image.name])]
    env = [os.fsencode(e) for e in envp]
    if any(b"\0" in a for a in names + env):
        raise VswError(errno.EINVAL, "an argument or environment string holds a NUL byte")
    base = regions_of(vcpu).get(machine.id, size)
    loader.load_image(vcpu.memory, vcpu.clear, base, size, image.guest_image())
    mem = memoryview(vcpu.memory)[base:base + size]         # type: ignore[arg-type]
    mem[STUB_PA:STUB_PA + len(STUB)] = STUB                 # the system area is mapped supervisor-only
    proc = LinuxProcess(mem, size, brk_start=-(-image.end // 4096) * 4096, mmap_top=size - STACK_RESERVE,
                        argv0=_exe_path(program, image), ro_dir=ro_dir, stdin=stdin, seed=seed)
    rsp, blob = build_stack(size, image, names, env, proc.rng.randbytes(16), (os.getuid(), os.geteuid(),
                            os.getgid(), os.getegid()), host_hwcap())
    if size - len(blob) < size - STACK_RESERVE // 2:
        raise VswError(errno.E2BIG, f"arguments and environment take {len(blob)} bytes of the stack")
    mem[rsp:size] = blob
    lay = Layout.get("x86_64")
    raw = bytearray(loader.image_state(base, size, image.guest_image(), xcr0, loader.CR4 if cr4 is None else cr4))
    # no IDT: on kvm-pvm a `syscall` arrives at LSTAR still at CPL 3, and the fetch fault there
    # must end in the shutdown that serve() takes for the call; the fault handlers that
    # freestanding guests get (pyvswitch.guest.loader) would catch it as a crash instead
    for name, value in {"rsp": rsp, "rdi": 0, "rdx": 0, "rip": image.entry, "msr.lstar": STUB_VA,
                        "msr.star": STAR, "msr.fmask": FMASK, "idt.base": 0, "idt.limit": 0}.items():
        f = lay.fields[name]
        raw[f.offset:f.offset + f.size] = value.to_bytes(f.size, "little")
    f = lay.fields["efer"]
    efer = int.from_bytes(raw[f.offset:f.offset + f.size], "little") | 1          # SCE
    raw[f.offset:f.offset + f.size] = efer.to_bytes(f.size, "little")
    machine.set_state(bytes(raw))
    job = Job(machine, image.name, image=image.guest_image(), base=base, mem_bytes=size)
    proc.stdout = job.output
    job.linux = proc
    return job


def _exe_path(program: object, image: LinuxImage) -> bytes:
    """What /proc/self/exe reads as: the program's absolute path (its name, for bytes)."""
    if isinstance(program, (str, os.PathLike)):
        return os.fsencode(os.path.abspath(program))
    return b"/" + os.fsencode(image.name)


def serve(sched: "Scheduler", job: "Job", x: KvmExit) -> bool:
    """Serves the system call this exit of a Linux guest stands for; False when it
    is not one (the exit is then the guest's fault, reported as for any guest)."""
    proc: LinuxProcess = job.linux
    if x.reason == "shutdown":
        how = "shutdown"
    elif x.reason == "io" and x.write and x.reg == SYSCALL_REG // 4:
        how = "stub"
    else:
        return False
    vcpu, pcpu = sched.vcpu, sched.pcpu
    if how == "stub":
        vcpu.complete()         # the stub's store finishes in this guest before its state is pulled
    vcpu.pull(pcpu)
    machine = job.machine
    raw = pcpu.raw()            # the scheduler owns the PCPU: its register file, read in place
    fields = _LAYOUT.fields
    owner = machine.id

    def get(name: str) -> int:
        f = fields[name]
        return int.from_bytes(raw[f.offset:f.offset + f.size], "little")

    def put(name: str, value: int) -> None:
        f = fields[name]
        pcpu.write(f.offset, value.to_bytes(f.size, "little"), owner)

    served, job.linux_served = job.linux_served, None
    retried, job.linux_retried = job.linux_retried, None
    rcx = get("rcx")
    if how == "shutdown":
        rip = get("rip")
        if retried is not None and rip == retried[0]:
            # the retry on a fresh vCPU shut down where the first did: the guest's own
            # fault at the call's return, not a vCPU that did not survive the call
            sched.linux_fresh_vcpu = retried[1]
            return False
        if served is not None and (rip == served[0] or rip == 0xFFF0):
            # the vCPU did not survive the shutdown just served: a fresh one, now and after every call
            job.linux_retried = (served[0], sched.linux_fresh_vcpu)
            sched.linux_fresh_vcpu = True
            vcpu.reset()
            machine.set_state(served[1])
            vcpu.push(pcpu)
            return True
        if rip != STUB_VA or not LOAD_FLOOR + 2 <= rcx <= job.mem_bytes or \
                bytes(proc.mem[rcx - 2:rcx]) != b"\x0f\x05":
            return False
    proc.fs_base, proc.gs_base = fs, gs = get("fs.base"), get("gs.base")
    before = len(job.output)
    r = proc.call(get("rax"), (get("rdi"), get("rsi"), get("rdx"), get("r10"), get("r8"), get("r9")))
    job.syscalls += 1
    if proc.exit_status is not None:
        job.exit_status = proc.exit_status
        _stream(sched, job, before)
        return True
    put("rax", r & MASK64)
    if proc.fs_base != fs:
        put("fs.base", proc.fs_base)
    if proc.gs_base != gs:
        put("gs.base", proc.gs_base)
    if how == "shutdown":
        put("rflags", (get("r11") & 0x3C7FD7) | 0x2)
        put("rip", rcx)
        if sched.linux_fresh_vcpu:
            vcpu.reset()
        else:
            job.linux_served = (rcx, bytes(raw))      # as pushed
    vcpu.push(pcpu)
    _stream(sched, job, before)
    return True


def _stream(sched: "Scheduler", job: "Job", before: int) -> None:
    """What the call wrote to stdout or stderr, to the run's listener (as a freestanding
    guest's console is), once the vCPU holds the call's result: a listener that raises
    leaves nothing half done."""
    if len(job.output) > before and sched._on_output is not None:
        sched._on_output(job, bytes(job.output[before:]))


def report(job: "Job") -> dict[str, Any]:
    """A Linux guest's system calls: served, by name, and unserved (ENOSYS), by number."""
    proc: LinuxProcess | None = job.linux
    return {} if proc is None else proc.report()
