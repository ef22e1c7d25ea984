"""No leaks: a destroyed machine's region of guest memory is given back, so any
number of create/load/destroy cycles run in the memory of the machines alive at
once.  The Regions allocator runs anywhere; the cycles need /dev/kvm."""
from __future__ import annotations

import errno
import os
import random
import threading
from pathlib import Path

import pytest

import pyvswitch
from pyvswitch import VswError
from pyvswitch.guest.layout import MAX_MEM, PAGE_2M, Regions
from pyvswitch.kvm import Scheduler, load_program, why_unusable

MiB = 1 << 20
from locations import GUESTS as HERE


def test_regions_are_given_back_and_merged():
    r = Regions(8 * PAGE_2M)
    a, b, c = r.get(1, 2 * PAGE_2M), r.get(2, 2 * PAGE_2M), r.get(3, 4 * PAGE_2M)
    assert sorted((a, b, c)) == [0, 2 * PAGE_2M, 4 * PAGE_2M] and r.in_use == 8 * PAGE_2M
    with pytest.raises(VswError) as e:
        r.get(4, PAGE_2M)                                  # one past the bound
    assert e.value.errno == errno.ENOSPC
    assert r.release(1) == (a, 2 * PAGE_2M) and r.release(2) == (b, 2 * PAGE_2M)
    assert r.release(2) is None                            # twice: nothing more
    assert r.get(5, 4 * PAGE_2M) == 0                      # the two freed neighbours, merged
    assert r.in_use == 8 * PAGE_2M


def test_a_refused_resize_keeps_the_old_region():
    r = Regions(4 * PAGE_2M)
    base = r.get(1, 2 * PAGE_2M)
    r.get(2, 2 * PAGE_2M)
    with pytest.raises(VswError):
        r.get(1, 4 * PAGE_2M)
    assert r.get(1, 2 * PAGE_2M) == base and r.in_use == 4 * PAGE_2M


def test_a_resize_may_reuse_its_own_room():
    r = Regions(4 * PAGE_2M)
    r.get(1, 2 * PAGE_2M)
    assert r.get(1, 4 * PAGE_2M) == 0 and r.in_use == 4 * PAGE_2M


@pytest.mark.parametrize("size", [0, PAGE_2M - 1, PAGE_2M + 4096, MAX_MEM + PAGE_2M, 2048 * MiB, True, 2.0])
def test_bad_sizes_are_refused_in_mib(size):
    with pytest.raises(VswError) as e:
        Regions(1 << 31).get(1, size)
    assert e.value.errno == errno.EINVAL
    if size == 2048 * MiB:
        assert "got 2048 MiB" in str(e.value)


def test_racing_get_and_release_never_hand_out_a_byte_twice():
    r, held, lock = Regions(64 * PAGE_2M), {}, threading.Lock()
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(2000):
                mid = seed * 1000 + rng.randrange(8)
                if rng.random() < 0.5:
                    try:
                        base = r.get(mid, rng.choice((1, 2, 4)) * PAGE_2M)
                    except VswError as exc:
                        assert exc.errno == errno.ENOSPC
                        continue
                    with lock:
                        held[mid] = base
                else:
                    r.release(mid)
                    with lock:
                        held.pop(mid, None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    spans = sorted(r._by_machine.values())
    assert all(a + n <= b for (a, n), (b, _) in zip(spans, spans[1:])), "two machines share guest memory"
    assert r.in_use + sum(n for _, n in r._free) == r.memory_bytes


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


def test_the_guest_layout_lives_under_guest_not_hw_or_kvm():
    import importlib

    import pyvswitch.guest.layout as layout
    import pyvswitch.guest.loader as loader
    import pyvswitch.hw.kvm as hwkvm
    # one home: the hardware model keeps no guest layout, the scheduler package no loader
    for name in ("Regions", "PAGE_2M", "CODE", "BUFFER", "STACK_TOP", "DEFAULT_MEM", "MAX_MEM"):
        assert hasattr(layout, name) and not hasattr(hwkvm, name), name
    with pytest.raises(ImportError):
        importlib.import_module("pyvswitch.kvm.guests")
    assert loader.MMIO is layout.MMIO == hwkvm.MMIO      # the device window: one fact (vsw_guest_abi.h)


def test_a_vcpu_nobody_divides_is_refused_by_name():
    # the hostile neighbour: a loader handed a vCPU without Regions says so, it does not crash on None
    from pyvswitch.guest.layout import regions_of

    class Bare:
        regions = None
    with pytest.raises(VswError) as e:
        regions_of(Bare())
    assert e.value.errno == errno.ENODEV and "Regions" in str(e.value)
    with pytest.raises(VswError):
        regions_of(object())
    r = Regions(2 * PAGE_2M)

    class Divided:
        regions = r
    assert regions_of(Divided()) is r


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
