"""No leaks: a destroyed machine's region of guest memory is given back, so any
number of create/load/destroy cycles on a KVM vCPU run in the memory of the
machines alive at once (10,000 of them in the memory of one).  The Regions
allocator alone: tests/unit/kvm/test_guest_regions.py."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import pyvswitch
from pyvswitch import VswError
from pyvswitch.guest.layout import Regions
from pyvswitch.kvm import Scheduler, load_program, why_unusable

from locations import GUESTS as HERE

MiB = 1 << 20
REASON = why_unusable()
kvm = pytest.mark.skipif(REASON is not None, reason=f"KVM unusable here: {REASON}")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> bytes:
    from pyvswitch.guest import build
    return build([HERE / "abi.c"], tmp_path_factory.mktemp("g") / "abi.elf").read_bytes()


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cycles(hv, vcpu, img, n: int) -> set[int]:
    bases = set()
    for i in range(n):
        m = hv.create_vm(f"cycle{i}")
        job = load_program(vcpu, m, img)
        bases.add(job.base)
        hv.destroy_vm(m)
    return bases


@kvm
def test_destroy_vm_frees_its_region_well_past_what_memory_holds(image):
    from pyvswitch.guest import GuestImage
    img = GuestImage.read(image)
    with pyvswitch.open("reference-kvm") as hv:
        vcpu = Scheduler(hv).vcpu
        n = vcpu.regions.memory_bytes // (64 * MiB) + 8       # 32 regions fit; this used to be ENOSPC
        bases = _cycles(hv, vcpu, img, n)
        assert vcpu.regions.in_use == 0 and len(bases) == 1


@kvm
def test_a_reused_region_starts_clean_and_its_guest_runs(image):
    """The next machine in a freed region sees zeros, not the last one's bytes, and
    gives its solo output."""
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        vcpu = sched.vcpu
        m = hv.create_vm("first")
        job = load_program(vcpu, m, image)
        vcpu.memory[job.base + 40 * MiB:job.base + 40 * MiB + 8] = b"SECRET!!"
        hv.destroy_vm(m)
        assert vcpu.memory[job.base + 40 * MiB:job.base + 40 * MiB + 8] == bytes(8)
        again = sched.add(hv.create_vm("second"), image)
        assert again.base == job.base
        sched.run(slice_us=1000)
        assert again.exit_status == 0 and again.text.startswith("abi ok"), again.text


@kvm
def test_destroying_a_running_machine_keeps_its_region(image):
    with pyvswitch.open("reference-kvm") as hv:
        sched = Scheduler(hv)
        job = sched.add(hv.create_vm("busy"), image)
        hv.switch_context(hv.host, job.machine)
        with pytest.raises(VswError) as e:
            hv.destroy_vm(job.machine)
        assert e.value.errno == errno.EBUSY and sched.vcpu.regions.in_use == job.mem_bytes


@kvm
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="under AddressSanitizer freed memory waits in its quarantine, so RSS grows by design")
def test_ten_thousand_cycles_run_in_the_memory_of_one(image):
    from pyvswitch.guest import GuestImage
    img = GuestImage.read(image)
    with pyvswitch.open("reference-kvm") as hv:
        vcpu = Scheduler(hv).vcpu
        _cycles(hv, vcpu, img, 200)                          # warm: the allocator's and Python's own
        rss0 = _rss_kib()
        bases = _cycles(hv, vcpu, img, 10_000)
        grown = _rss_kib() - rss0
        assert len(bases) == 1 and vcpu.regions.in_use == 0
        assert grown < 16 * 1024, f"RSS grew {grown} KiB over 10,000 cycles"


@kvm
def test_a_bare_vcpu_forgets_machines_without_regions():
    from pyvswitch.hw.kvm import KvmPcpu, KvmVcpu
    vcpu = KvmVcpu("/dev/kvm", 2 << 20)
    assert vcpu.regions is None
    pcpu = KvmPcpu(vcpu)
    try:
        pcpu.forget(7)                     # nothing to give back: no error
    finally:
        pcpu.close()


@kvm
def test_the_driver_gives_its_vcpu_regions():
    with pyvswitch.open("reference-kvm") as hv:
        vcpu = Scheduler(hv).vcpu
        assert isinstance(vcpu.regions, Regions) and vcpu.regions.memory_bytes == len(vcpu.memory)
