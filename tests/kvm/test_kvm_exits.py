"""An exit names a device register (MMIO at one of its registers) or an I/O port
(PIO), in fields of their own, from struct vsw_kvm_exit to KvmExit and the
scheduler: a port number is never read as a register, nor the reverse."""
import pytest

import pyvswitch
from locations import GUESTS
from pyvswitch.guest import build
from pyvswitch.hw import ffi, lib
from pyvswitch.hw.kvm import DEVICE_REGS, KVM_EXIT_IO, REG_DONE, REG_PROGRESS, KvmExit, KvmVcpu
from pyvswitch.kvm import Scheduler, why_unusable
from pyvswitch.kvm.scheduler import Scheduler as _Sched

REASON = why_unusable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"KVM unusable here: {REASON}")


def test_the_c_struct_has_both_fields_apart():
    x = ffi.new("struct vsw_kvm_exit *")
    fields = dict(ffi.typeof(x[0]).fields)
    assert {"port", "reg"} <= set(fields)
    assert fields["port"].offset != fields["reg"].offset
    assert lib.VSW_KVM_NO_REG == 0xFFFF


def _run_recording(monkeypatch, image: bytes, rflags_or: int = 0):
    seen: list[KvmExit] = []
    orig = _Sched._device

    def record(self, job, x):
        seen.append(x)
        return orig(self, job, x)
    monkeypatch.setattr(_Sched, "_device", record)
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        vm = hv.create_vm("g")
        job = sched.add(vm, image, mem_bytes=4 << 20)
        if rflags_or:
            vm.regs["rflags"] = vm.regs["rflags"] | rflags_or
        sched.run(slice_us=max(1000, sched.vcpu.shortest_slice_ns() / 1000))
    return job, seen


def test_mmio_exits_name_their_register_and_no_port(monkeypatch, tmp_path):
    image = build([GUESTS / "chatty.c"], tmp_path / "chatty.elf", ["-Wall", "-Wextra", "-Werror"]).read_bytes()
    job, seen = _run_recording(monkeypatch, image)
    io = [x for x in seen if x.reason == "io"]
    assert io and all(x.port is None and x.reg in DEVICE_REGS for x in io)
    assert all(x.addr == lib.VSW_MMIO + 4 * x.reg for x in io)
    assert any(x.reg == REG_DONE for x in io) or job.exit_status is not None
    assert job.error is None and job.crash is None
    others = [x for x in seen if x.reason not in ("io", "bad_io")]
    assert all(x.reg is None and x.port is None for x in others)


def test_the_vcpu_maps_each_kind_of_exit_to_its_own_field():
    # KvmExit as the vCPU hands it over (a CPL 3 guest cannot make a PIO exit: OUT faults
    # first, test_kvm_hostile's FAULTS; so the PIO shape is given here as C would fill it)
    vcpu = KvmVcpu("/dev/kvm", 2 << 20)
    try:
        raw = ffi.new("struct vsw_kvm_exit *")
        raw.reason, raw.kvm_reason, raw.port, raw.reg = lib.VSW_KVM_EXIT_BAD_IO, KVM_EXIT_IO, 0x80, lib.VSW_KVM_NO_REG
        raw.size, raw.write, raw.data, raw.addr = 1, 1, 0x42, 0x80
        x = vcpu._last(raw)
        assert x.port == 0x80 and x.reg is None and x.describe() == "1-byte write at I/O port 0x80"
        # port 0x80 read as a register would be 32 (= 0x80 / 4): it never is
        raw.port, raw.addr = 4 * REG_DONE, 4 * REG_DONE
        assert vcpu._last(raw).reg is None
        # an MMIO access at a register: reg, and no port even where the C field held one
        raw.reason, raw.kvm_reason, raw.reg, raw.port = lib.VSW_KVM_EXIT_IO, 6, REG_PROGRESS, 0x1234
        raw.addr = lib.VSW_MMIO + 4 * REG_PROGRESS
        x = vcpu._last(raw)
        assert x.reg == REG_PROGRESS and x.port is None and "I/O port" not in x.describe()
        # an MMIO access the device does not answer: neither
        raw.reason, raw.reg = lib.VSW_KVM_EXIT_BAD_IO, lib.VSW_KVM_NO_REG
        x = vcpu._last(raw)
        assert x.reg is None and x.port is None
    finally:
        vcpu.close()
