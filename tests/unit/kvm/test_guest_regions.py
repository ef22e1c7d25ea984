"""No leaks: a destroyed machine's region of guest memory is given back - the Regions
allocator, which runs anywhere.  The create/load/destroy cycles on a KVM vCPU that
prove it whole are in tests/kvm/test_kvm_regions.py."""
from __future__ import annotations

import errno
import random
import threading

import pytest

from pyvswitch import VswError
from pyvswitch.guest.layout import MAX_MEM, PAGE_2M, Regions

MiB = 1 << 20


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
