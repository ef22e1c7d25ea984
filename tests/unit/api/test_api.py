"""pyvswitch.open(), machines, switch_context, and the fallback path."""
import errno
import pathlib
import threading

import pytest

import pyvswitch
from pyvswitch import VswError

from locations import EXPLICIT  # every parameter written out
from image_header import SIZE as HEADER  # the image's header: the payload follows it


@pytest.fixture
def hv():
    with pyvswitch.open() as h:
        yield h


def test_open_enables_the_fast_path(hv):
    rep = hv.report()
    assert rep.fast_path and hv.path == "store"
    assert {d.name: d.state for d in rep.devices if d.invention} == {"sbus0": "bound", "store0": "bound",
                                                                   "mover0": "bound"}
    assert hv.host.pcpu == 0 and hv.running(0) is hv.host


def test_host_vm_and_vm_vm_switches_keep_every_state(hv):
    vms = [hv.create_vm(f"vm{i}") for i in range(3)]
    hv.run(100)
    s = hv.switch_context(hv.host, vms[0])
    assert s.path == "store" and s.save_bursts >= 1 and s.load_bursts == 1
    assert s.bytes_saved > 0 and s.bytes_loaded == hv.layout.size
    assert s.baseline_ns > s.modeled_ns
    hv.run(50)
    snap = {m.name: m.snapshot() for m in [hv.host] + vms}
    hv.switch_context(vms[0], vms[1])     # VM to VM directly
    hv.switch_context(vms[1], vms[2])
    hv.switch_context(vms[2], hv.host)
    assert vms[0].snapshot()[HEADER:] == snap["vm0"][HEADER:]
    assert hv.host.snapshot()[HEADER:] == snap["host"][HEADER:]


def test_regs_readable_and_writable_running_or_saved(hv):
    vm = hv.create_vm("vm")
    vm.regs["rax"] = 0xDEAD              # saved: goes to its slot
    hv.host.regs["rbx"] = 0xBEEF         # running: goes to the PCPU
    hv.switch_context(hv.host, vm)
    assert vm.regs["rax"] == 0xDEAD and hv.host.regs["rbx"] == 0xBEEF
    assert vm.pcpu == 0 and hv.host.pcpu is None


def test_snapshot_restore_both_ways(hv):
    vm = hv.create_vm("vm")
    hv.run(77)
    img = hv.host.snapshot()
    vm.restore(img)                          # into a saved machine
    hv.switch_context(hv.host, vm)
    assert vm.snapshot()[HEADER:] == img[HEADER:]
    hv.run(5)
    vm.restore(img)                          # into the running one
    assert vm.snapshot()[HEADER:] == img[HEADER:]
    bad = img[:-1]
    with pytest.raises(VswError) as e:
        vm.restore(bad)
    assert e.value.errno == errno.ENODATA and vm.snapshot()[HEADER:] == img[HEADER:]


def test_fallback_when_the_mover_unbinds_and_back_when_it_rebinds(hv):
    vm = hv.create_vm("vm")
    hv.run(10)
    hv.switch_context(hv.host, vm)
    hv.run(20)
    before = {m.name: m.snapshot()[HEADER:] for m in hv.machines}
    hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/unbind", "mover0")
    assert hv.path == "memory" and not hv.report().fast_path
    assert {m.name: m.snapshot()[HEADER:] for m in hv.machines} == before     # nothing lost in the move
    s = hv.switch_context(vm, hv.host)
    assert s.path == "memory" and s.modeled_ns == s.baseline_ns
    hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/bind", "mover0")
    assert hv.path == "store" and hv.report().fast_path
    assert hv.switch_context(hv.host, vm).path == "store"


@pytest.mark.parametrize("device,driver", [("store0", "vsw-store"), ("sbus0", "vsw-sbus")])
def test_losing_the_store_or_the_bus_falls_back_too(hv, device, driver):
    vm = hv.create_vm("vm")
    bus = "vsw-storage" if device == "store0" else "platform"
    hv.kernel.sysfs.write(f"bus/{bus}/drivers/{driver}/unbind", device)
    assert hv.path == "memory"
    assert hv.switch_context(hv.host, vm).path == "memory"
    hv.kernel.sysfs.write(f"bus/{bus}/drivers/{driver}/bind", device)
    assert hv.path == "store" and hv.switch_context(vm, hv.host).path == "store"


def test_rmmod_of_a_held_mover_is_refused(hv):
    with pytest.raises(VswError) as e:
        hv.kernel.rmmod("vsw_mover")
    assert e.value.errno == errno.EBUSY
    assert hv.kernel.sysfs.read("module/vsw_mover/refcnt") == "1"


def test_without_a_mover_switching_works_and_says_so():
    with pyvswitch.open("no-mover") as hv:
        vm = hv.create_vm("vm")
        s = hv.switch_context(hv.host, vm)
        assert s.path == "memory" and not hv.report().fast_path
        assert "no vsw,mover" in hv.report().reason


def test_bad_mover_parameters_fail_the_probe_and_fall_back():
    text = EXPLICIT.read_text().replace(
        "max_burst = 8192", "max_burst = 64")
    with pytest.warns(pyvswitch.FallbackWarning, match="declares the invention's devices but switches over the memory"):
        hv = pyvswitch.open(text)       # said, not only reported: a declared fast path that did not come up
    with hv:
        mover = next(d for d in hv.report().devices if d.name == "mover0")
        assert mover.state == "failed" and "threshold" in mover.error
        assert hv.switch_context(hv.host, hv.create_vm("vm")).path == "memory"


def test_aarch64_platform_with_two_pcpus():
    with pyvswitch.open("aarch64") as hv:
        vm1, vm2, vm3 = hv.create_vm("a"), hv.create_vm("b"), hv.create_vm("c")
        assert hv.running(1) is None
        hv.switch_context(None, vm2, pcpu=1)                   # start the idle second PCPU
        assert vm2.pcpu == 1 and hv.host.pcpu == 0
        s = hv.switch_context(hv.host, vm1)
        assert s.path == "store" and s.load_bursts == -(-hv.layout.size // 256)
        with pytest.raises(VswError) as e:
            hv.switch_context(vm1, vm2)                        # vm2 runs on the other PCPU
        assert e.value.errno == errno.EBUSY and "b is running on another PCPU" in str(e.value)
        hv.run(100, pcpu=1)
        assert pyvswitch.switch_context(vm2, vm3).path == "store" and vm3.pcpu == 1
        with pytest.raises(VswError) as e:
            hv.switch_context(None, vm2, pcpu=1)               # pcpu1 is not idle
        assert e.value.errno == errno.ESRCH
        hv.switch_context(vm3, None, pcpu=1)                   # and idle again
        assert hv.running(1) is None and vm3.pcpu is None


def test_module_level_switch_context(hv):
    vm = hv.create_vm("vm")
    assert pyvswitch.switch_context(hv.host, vm).path == "store"
    with pytest.raises(VswError) as e:
        pyvswitch.switch_context(hv.host, vm)
    assert e.value.errno == errno.ESRCH


def test_module_level_switch_context_finds_a_machine_that_moved():
    """The PCPU a machine was last loaded onto is only where the call looks first:
    once it runs elsewhere the C switch refuses there and the call finds it."""
    with pyvswitch.open("aarch64") as hv:
        a, b, c = hv.create_vm("a"), hv.create_vm("b"), hv.create_vm("c")
        pyvswitch.switch_context(hv.host, a)                 # a last loaded onto pcpu0
        hv.switch_context(a, hv.host)
        hv.switch_context(None, a, pcpu=1)                   # now it runs on pcpu1
        assert a.pcpu == 1
        assert pyvswitch.switch_context(a, b).path == "store" and b.pcpu == 1 and a.pcpu is None
        hv.switch_context(hv.host, c)
        assert pyvswitch.switch_context(b, a) and a.pcpu == 1 and c.pcpu == 0
        with pytest.raises(VswError) as e:
            pyvswitch.switch_context(b, c)                   # b is saved: nowhere to switch from
        assert e.value.errno == errno.ESRCH and "not running" in str(e.value)
        with pytest.raises(VswError) as e:
            pyvswitch.switch_context("a", b)                 # type: ignore[arg-type]
        assert e.value.errno == errno.EINVAL


def test_module_level_switch_context_refuses_a_failed_switch_once(hv):
    """The module-level call's fast path hands a refused switch (an injected
    fault) to the same error path as the method: raised, not tried again - and
    nothing changed, so the same call then succeeds."""
    a, b = hv.create_vm("a"), hv.create_vm("b")
    pyvswitch.switch_context(hv.host, a)
    a.regs["rax"] = 7
    before = (a.snapshot(), b.snapshot())
    hv.controller.channel.context.inject("load", 0)
    with pytest.raises(VswError) as e:
        pyvswitch.switch_context(a, b)
    assert e.value.errno == errno.EIO and a.pcpu == 0 and b.pcpu is None
    assert a.regs["rax"] == 7 and b.snapshot() == before[1]
    assert pyvswitch.switch_context(a, b).path == "store" and b.pcpu == 0 and a.regs["rax"] == 7


def test_misuse_gets_clear_errors(hv):
    vm = hv.create_vm("vm")
    cases = [
        (lambda: hv.create_vm("vm"), errno.EEXIST),
        (lambda: hv.create_vm(""), errno.EINVAL),
        (lambda: hv.create_vm("arm", layout="aarch64"), errno.EINVAL),
        (lambda: hv.switch_context(vm, hv.host), errno.ESRCH),
        (lambda: hv.switch_context(hv.host, hv.host), errno.EALREADY),
        (lambda: hv.switch_context(hv.host, vm, pcpu=3), errno.EINVAL),
        (lambda: hv.switch_context("host", vm), errno.EINVAL),
        (lambda: hv.switch_context(None, None), errno.EINVAL),
        (lambda: hv.destroy_vm(hv.host), errno.EPERM),
        (lambda: vm.regs.__setitem__("nope", 1), errno.ENOENT),
    ]
    for fn, code in cases:
        with pytest.raises(VswError) as e:
            fn()
        assert e.value.errno == code, (fn, e.value)
    hv.switch_context(hv.host, vm)
    with pytest.raises(VswError) as e:
        hv.destroy_vm(vm)
    assert e.value.errno == errno.EBUSY
    hv.switch_context(vm, hv.host)
    hv.destroy_vm(vm)
    with pytest.raises(VswError) as e:
        hv.switch_context(hv.host, vm)
    assert e.value.errno == errno.ENOENT


def test_closed_hypervisor_refuses(hv):
    vm = hv.create_vm("vm")
    hv.close()
    with pytest.raises(VswError) as e:
        hv.switch_context(hv.host, vm)
    assert e.value.errno in (errno.EBADF, errno.EINVAL)


def test_threads_switching_one_pcpu_are_serialised(hv):
    vms = [hv.create_vm(f"vm{i}") for i in range(4)]
    errors = []

    def worker():
        for _ in range(500):
            cur = hv.running(0)
            nxt = vms[(vms.index(cur) + 1) % 4] if cur in vms else vms[0]
            try:
                hv.switch_context(cur, nxt)
            except VswError as e:
                if e.errno not in (errno.ESRCH, errno.EALREADY, errno.EBUSY):
                    errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for m in hv.machines:
        m.snapshot()        # every context still passes its checks


@pytest.mark.parametrize("device,driver", [("pcpu0", "vsw-pcpu"), ("mem0", "vsw-mem"), ("membus0", "vsw-membus")])
def test_losing_a_part_every_switch_needs_parks_the_contexts_until_it_returns(hv, device, driver):
    vm = hv.create_vm("vm")
    hv.run(33)
    hv.switch_context(hv.host, vm)
    hv.run(44)
    before = {m.name: m.snapshot()[HEADER:] for m in hv.machines}
    hv.kernel.sysfs.write(f"bus/platform/drivers/{driver}/unbind", device)
    assert hv.path == "none"
    with pytest.raises(VswError) as e:
        hv.switch_context(vm, hv.host)
    assert e.value.errno == errno.ENODEV and device in str(e.value)
    hv.kernel.sysfs.write(f"bus/platform/drivers/{driver}/bind", device)
    assert hv.path == "store" and vm.pcpu == 0
    assert {m.name: m.snapshot()[HEADER:] for m in hv.machines} == before
    assert hv.switch_context(vm, hv.host).path == "store"


SLOT_BYTES = pyvswitch.hw.Store("x86_64", 1 << 20).slot_bytes


def test_a_store_smaller_than_the_machines_caches_them_and_mem_bounds_how_many():
    text = (EXPLICIT.read_text()
            .replace("capacity_bytes = 8388608", f"capacity_bytes = {3 * SLOT_BYTES + 100}")    # host + 2 VMs
            .replace("capacity_bytes = 67108864", f"capacity_bytes = {6 * SLOT_BYTES + 100}"))  # 6 homes
    with pyvswitch.open(text) as hv:
        vms = [hv.create_vm(f"vm{i}") for i in range(5)]         # 3 of them only at home
        with pytest.raises(VswError) as e:
            hv.create_vm("one too many")
        assert e.value.errno == errno.ENOSPC and "MEM is full" in str(e.value)
        assert [hv.cache.where(vm).resident for vm in vms] == [True, True, False, False, False]
        vms[4].regs["rax"] = 44                                  # written at home
        st = hv.switch_context(hv.host, vms[4])
        assert (st.cache, st.bytes_fetched, st.bytes_written_back) == ("miss", hv.layout.size, hv.layout.size)
        assert st.cache_ns > 0 and st.data_ns >= st.cache_ns and hv.cache.where(vms[0]).slot is None   # LRU
        assert vms[4].regs["rax"] == 44
        hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/unbind", "mover0")
        assert hv.path == "memory" and vms[4].pcpu == 0 and vms[4].regs["rax"] == 44
        hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/bind", "mover0")
        assert hv.path == "store" and vms[4].pcpu == 0 and hv.cache.where(hv.host).pinned
        assert hv.switch_context(vms[4], vms[2]).cache == "miss" and vms[4].regs["rax"] == 44


def test_stats_a_caller_keeps_keep_their_values(hv):
    vm = hv.create_vm("vm")
    kept = [hv.switch_context(hv.host, vm), hv.switch_context(vm, hv.host)]
    snap = [s.as_dict() for s in kept]
    hv.run(500)                                 # later switches move other byte counts
    for _ in range(20):
        hv.switch_context(hv.host, vm)
        hv.run(3)
        hv.switch_context(vm, hv.host)
    assert [s.as_dict() for s in kept] == snap
    first = hv.switch_context(hv.host, vm)     # held in a variable across the next switch
    values = first.as_dict()
    second = hv.switch_context(vm, hv.host)
    third = hv.switch_context(hv.host, vm)
    assert first.as_dict() == values and len({id(first), id(second), id(third)}) == 3
    del first, second, third
    a = hv.switch_context(vm, hv.host).as_dict()
    assert a["path"] == "store"                # dropped stats are reused, and still right


def test_names_and_slots_are_reused_after_destroy(hv):
    """Create and destroy are O(1) (a dict by name and id, a free list of slots): a
    destroyed name and its slot are free again, the slot freed last first."""
    vms = [hv.create_vm(f"v{i}") for i in range(5)]
    slots = [vm._slot.index for vm in vms]
    hv.destroy_vm(vms[1])
    hv.destroy_vm(vms[3])
    again = hv.create_vm("v1")
    assert again._slot.index == slots[3] and hv.machine("v1") is again
    with pytest.raises(VswError) as e:
        hv.machine("v3")
    assert e.value.errno == errno.ENOENT
    assert {m.name for m in hv.vms} == {"v0", "v1", "v2", "v4"}


def test_unbind_and_bind_a_device_kind_through_the_api(hv):
    """Hypervisor.unbind/bind(kind): the sysfs unbind/bind of every device of a kind."""
    vm = hv.create_vm("vm")
    hv.switch_context(hv.host, vm)
    assert hv.unbind("mover") == ["mover0"] and hv.path == "memory"
    assert hv.unbind("mover") == []                         # nothing left bound
    assert hv.switch_context(vm, hv.host).path == "memory"
    assert hv.bind("mover") == ["mover0"] and hv.path == "store"
    with pytest.raises(VswError) as e:
        hv.unbind("movers")
    assert e.value.errno == errno.EINVAL and "kinds are pcpu, mem" in str(e.value)
