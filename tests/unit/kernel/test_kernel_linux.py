"""The driver core behaviour by behaviour as Linux has it (drivers/base/dd.c,
bus.c, core.c; lib/kobject_uevent.c; kmod), each test named after the Linux
function it mirrors.  Followed: the current stable kernel's sources (6.x)."""
import errno

import pytest
from locations import EXPLICIT
from kernel_fakes import driver, make_module

from pyvswitch.kernel import Device, Driver, Kernel, KernelError, links
from pyvswitch.kernel.errors import EPROBE_DEFER
from pyvswitch.kernel.links import (
    DL_FLAG_AUTOPROBE_CONSUMER,
    DL_FLAG_AUTOREMOVE_CONSUMER,
    DL_FLAG_STATELESS,
    DL_FLAG_SYNC_STATE_ONLY,
)


def kernel(*modules):
    return Kernel(modules=modules, use_entry_points=False)


class ErrnoDefer(Driver):
    """Defers by returning the errno from an ordinary error path, not by ProbeDefer."""
    name, of_match_table = "errno-defer", ("vsw,x",)

    def probe(self, dev):
        raise OSError(EPROBE_DEFER, "clock not ready")


def test___device_attach_driver_lets_the_next_driver_try_after_a_deferral():
    log = []
    k = kernel(make_module("m", driver("first", ("vsw,x",), outcome="defer", log=log),
                           driver("second", ("vsw,x",), log=log)))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert [e[1] for e in log if e[0] == "probe"] == ["first", "second"]
    assert dev.driver.name == "second" and dev not in k.deferred     # driver_bound takes it off the list


def test_really_probe_defers_by_the_errno_from_any_error_path():
    k = kernel(make_module("m", ErrnoDefer))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert dev.driver is None and "clock not ready" in k.deferred[dev]
    assert not k.probe_errors       # a deferral is not a failure


def test_device_links_check_suppliers_stops_the_walk_over_drivers():
    log = []
    k = kernel(make_module("m", driver("first", ("vsw,x",), log=log), driver("second", ("vsw,x",), log=log)))
    sup = k.device_add(Device("s0", compatible=["vsw,none"]))
    dev = Device("x0", compatible=["vsw,x"])
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    k.device_add(dev)
    k.device_link_add(dev, sup)
    k.insmod("m")
    k.probe(dev)
    assert not [e for e in log if e[0] == "probe"] and k.deferred[dev] == "waiting for supplier s0"


@pytest.mark.parametrize("case,code", [("nomatch", errno.ENODEV), ("bound", errno.EBUSY), ("fails", errno.EIO),
                                        ("defers", errno.EAGAIN)])
def test_bind_store_errnos_as_device_driver_attach(case, code):
    k = kernel(make_module("m", driver("good", ("vsw,x",)), driver("other", ("vsw,y",)),
                           driver("broken", ("vsw,z",), outcome="fail"), driver("later", ("vsw,w",), outcome="defer")))
    k.insmod("m")
    dev = {"nomatch": Device("x0", compatible=["vsw,x"]), "bound": Device("x0", compatible=["vsw,x"]),
           "fails": Device("z0", compatible=["vsw,z"]), "defers": Device("w0", compatible=["vsw,w"])}[case]
    k.device_add(dev)
    k.deferred.pop(dev, None)
    drv = {"nomatch": "other", "bound": "good", "fails": "broken", "defers": "later"}[case]
    with pytest.raises(KernelError) as e:
        k.sysfs.write(f"bus/platform/drivers/{drv}/bind", dev.name)
    assert e.value.errno == code
    assert dev not in k.deferred        # a sysfs bind that defers does not queue the device


@pytest.mark.parametrize("text,value", [("0", "0"), ("1", "1"), ("yes", "1"), ("0junk", "0"), ("", "1")])
def test_drivers_autoprobe_store_takes_anything_not_starting_with_0_as_1(text, value):
    k = kernel()
    k.sysfs.write("bus/platform/drivers_autoprobe", text)
    assert k.sysfs.read("bus/platform/drivers_autoprobe") == value


def test_dev_uevent_driver_comes_from_the_current_driver():
    k = kernel(make_module("m", driver("foo", ("vsw,x",))))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert k.uevents[-1].action == "bind" and k.uevents[-1].env["DRIVER"] == "foo"
    k.sysfs.write("devices/platform/x0/uevent", "change")          # synthetic, while bound
    assert k.uevents[-1].action == "change" and k.uevents[-1].env["DRIVER"] == "foo"
    k.unbind(dev)
    assert k.uevents[-1].action == "unbind" and "DRIVER" not in k.uevents[-1].env


@pytest.mark.parametrize("action", ["add", "remove", "change", "move", "online", "offline", "bind", "unbind"])
def test_kobject_synth_uevent_takes_every_kobject_action(action):
    k = kernel()
    k.device_add(Device("x0", compatible=["vsw,x"]))
    k.sysfs.write("devices/platform/x0/uevent", action)
    assert k.uevents[-1].action == action


@pytest.mark.parametrize("text", ["\n", "\0", "explode"])
def test_kobject_synth_uevent_refuses_an_empty_or_unknown_action(text):
    k = kernel()
    k.device_add(Device("x0", compatible=["vsw,x"]))
    n = len(k.uevents)
    with pytest.raises(KernelError) as e:
        k.sysfs.write("devices/platform/x0/uevent", text)
    assert e.value.errno == errno.EINVAL and len(k.uevents) == n
    k.sysfs.write("devices/platform/x0/uevent", "")     # sysfs_kf_write: no bytes never reach the store
    assert len(k.uevents) == n


def test_device_links_unbind_consumers_reprobes_only_with_autoprobe_consumer():
    k = kernel(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    k.insmod("m")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    plain, auto = k.device_add(Device("c0", compatible=["vsw,c"])), k.device_add(Device("c1", compatible=["vsw,c"]))
    k.device_link_add(plain, s)
    k.device_link_add(auto, s, DL_FLAG_AUTOPROBE_CONSUMER)
    k.unbind(s)
    assert plain.driver is None and auto.driver is None
    k.bind(s, k.driver("sup"))
    assert auto.driver is not None and plain.driver is None      # device_links_driver_bound queues only `auto`


def test_device_link_init_status_dormant_leaves_the_consumer_bound():
    k = kernel(make_module("m", driver("con", ("vsw,c",))))
    k.insmod("m")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))         # no driver for it
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s)
    assert c.driver is not None and links.link_of(c, s).status == "dormant"
    k.unbind(c)
    k.probe(c)
    assert c.driver is None and k.deferred[c] == "waiting for supplier s0"    # no longer dormant


def test_device_is_dependent_refuses_a_child_of_the_consumer_as_its_supplier():
    k = kernel()
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    child = k.device_add(Device("c0.child", compatible=["vsw,x"], parent=c))
    with pytest.raises(KernelError) as e:
        k.device_link_add(c, child)
    assert e.value.errno == errno.ELOOP


def test_device_link_add_refuses_an_unregistered_supplier_and_flags_that_do_not_go_together():
    k = kernel()
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    with pytest.raises(KernelError) as e:
        k.device_link_add(c, Device("ghost", compatible=["vsw,s"]))
    assert e.value.errno == errno.EINVAL and not c.suppliers
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    for flags in (DL_FLAG_STATELESS | DL_FLAG_AUTOPROBE_CONSUMER, DL_FLAG_AUTOPROBE_CONSUMER | DL_FLAG_AUTOREMOVE_CONSUMER,
                  DL_FLAG_SYNC_STATE_ONLY | DL_FLAG_AUTOPROBE_CONSUMER, 1 << 20):
        with pytest.raises(KernelError) as e:
            k.device_link_add(c, s, flags)
        assert e.value.errno == errno.EINVAL and not c.suppliers


def test_device_del_triggers_no_deferred_probe_and_leaves_children():
    log = []
    k = kernel(make_module("m", driver("con", ("vsw,c",), log=log)))
    k.insmod("m")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    child = k.device_add(Device("s0.child", compatible=["vsw,x"], parent=s))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.unbind(c)
    k.device_link_add(c, s)
    k.probe(c)
    assert c in k.deferred
    log.clear()
    k.device_del(s)
    assert not [e for e in log if e[0] == "probe"] and c in k.deferred and not c.suppliers
    assert child.registered         # device_del does not recurse: whoever added the child removes it


def test_device_del_notifies_bus_notify_del_device_before_unbinding():
    k = kernel(make_module("m", driver("foo", ("vsw,x",))))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    seen = []
    k.notifier_register(lambda event, d: seen.append((event, d.driver is not None)))
    k.device_del(dev)
    assert seen[:3] == [("del_device", True), ("unbind_driver", True), ("unbound_driver", False)]


def test_driver_detach_unbinds_in_reverse_bind_order():
    log = []
    k = kernel(make_module("m", driver("foo", ("vsw,x",), log=log)))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    for name in ("x0", "x1", "x2"):
        k.device_add(Device(name, compatible=["vsw,x"]))
    k.insmod("m")
    for name in ("x2", "x0", "x1"):                   # bound in this order
        k.sysfs.write("bus/platform/drivers/foo/bind", name)
    log.clear()
    k.rmmod("m")
    assert [e[2] for e in log if e[0] == "remove"] == ["x1", "x0", "x2"]


def test_modprobe_loads_a_module_by_name_before_aliases_folding_dashes():
    """kmod (modprobe): a module name is looked up before aliases; "-" and "_" are one."""
    k = kernel(make_module("vsw_foo", driver("foo", ("vsw,x",))))
    assert k.modprobe("vsw-foo") == ["vsw_foo"] and k.module("vsw_foo").loaded
    with pytest.raises(KernelError) as e:
        k.modprobe("vsw_nothing")
    assert e.value.errno == errno.ENOENT


@pytest.mark.parametrize("glob,alias,hit", [("of:N*T*Cvsw,[^m]*", "of:NaT<NULL>Cvsw,mover", False),
                                            ("of:N*T*Cvsw,[^m]*", "of:NaT<NULL>Cvsw,store", True),
                                            ("of:N*T*Cvsw,[!m]*", "of:NaT<NULL>Cvsw,mover", False),
                                            ("x[]^]y", "x^y", True), ("x[]^]y", "x]y", True)])
def test_fnmatch_negates_a_caret_bracket_as_glibc_does(glob, alias, hit):
    from pyvswitch.kernel.modalias import alias_matches
    assert alias_matches(glob, alias) is hit


def test_device_link_states_through_a_supplier_and_consumer_life():
    """enum device_link_state as device_link_init_status and device_links_* move it."""
    k = kernel(make_module("ms", driver("sup", ("vsw,s",))), make_module("mc", driver("con", ("vsw,c",))))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    link = links.link_add(c, s)
    seen = [link.status]                                          # dormant: nobody bound
    k.insmod("ms")
    seen.append(link.status)                                      # available: the supplier bound
    k.insmod("mc")
    seen.append(link.status)                                      # active: the consumer bound too
    k.unbind(c)
    seen.append(link.status)                                      # available again
    k.probe(c)
    k.unbind(s)                                                   # the consumer goes first
    seen.append(link.status)
    assert seen == ["dormant", "available", "active", "available", "dormant"] and c.driver is None
    path = "class/devlink/platform:s0--platform:c0"
    assert k.sysfs.read(f"{path}/status") == "dormant" and k.sysfs.read(f"{path}/auto_remove_on") == "never"
    stateless = k.device_add(Device("c1", compatible=["vsw,x"]))
    links.link_add(stateless, s, DL_FLAG_STATELESS)
    assert k.sysfs.read("class/devlink/platform:s0--platform:c1/status") == "not tracked"


def test_device_links_no_driver_drops_an_autoremove_consumer_link():
    k = kernel(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    k.insmod("m")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s, DL_FLAG_AUTOREMOVE_CONSUMER)
    assert k.sysfs.read("class/devlink/platform:s0--platform:c0/auto_remove_on") == "consumer unbind"
    k.unbind(c)
    assert not c.suppliers and "class/devlink/platform:s0--platform:c0/status" not in k.sysfs.tree()


def test_platform_files_choose_each_suppliers_link_flags(tmp_path):
    import pathlib

    import pyvswitch
    text = EXPLICIT.read_text().replace(
        'suppliers = ["store0", "sbus0"]',
        'suppliers = ["store0", "sbus0"]\nlink_flags = { sbus0 = ["pm-runtime", "autoprobe-consumer"] }')
    with pyvswitch.open(text) as hv:
        read = hv.kernel.sysfs.read
        assert read("class/devlink/platform:sbus0--platform:mover0/runtime_pm") == "1"
        assert read("class/devlink/vsw-storage:store0--platform:mover0/runtime_pm") == "0"
        assert read("class/devlink/platform:sbus0--platform:mover0/status") == "active"
    with pytest.raises(OSError) as e:
        pyvswitch.Platform.load(text.replace('["pm-runtime", "autoprobe-consumer"]', '["sticky"]'))
    assert e.value.errno == errno.EINVAL and "link_flags" in str(e.value)


class Syncing(Driver):
    """A supplier whose sync_state is counted."""
    name, of_match_table = "syncing", ("vsw,s",)
    calls: list = []

    def probe(self, dev):
        pass

    def sync_state(self, dev):
        Syncing.calls.append((dev.name, sorted(c.name for c in dev.consumers if c.driver)))


def test_device_links_flush_sync_list_runs_sync_state_once_all_consumers_probed():
    Syncing.calls = []
    k = kernel(make_module("ms", Syncing), make_module("mc", driver("con", ("vsw,c",))))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c0, c1 = (k.device_add(Device(n, compatible=["vsw,c"])) for n in ("c0", "c1"))
    k.device_link_add(c0, s)
    k.device_link_add(c1, s)
    k.insmod("ms")
    assert not Syncing.calls and k.sysfs.read("devices/platform/s0/state_synced") == "0"
    k.insmod("mc")                                  # both consumers probe
    assert Syncing.calls == [("s0", ["c0", "c1"])] and s.state_synced
    k.unbind(c0)
    k.probe(c0)
    assert len(Syncing.calls) == 1                  # once, until the supplier unbinds
    k.unbind(s)
    assert not s.state_synced


def test_state_synced_store_forces_sync_state_and_takes_only_1():
    Syncing.calls = []
    k = kernel(make_module("ms", Syncing))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,none"]))     # a consumer that never probes
    k.device_link_add(c, s)
    k.insmod("ms")
    assert not s.state_synced
    with pytest.raises(KernelError) as e:
        k.sysfs.write("devices/platform/s0/state_synced", "0")
    assert e.value.errno == errno.EINVAL
    k.sysfs.write("devices/platform/s0/state_synced", "1")
    assert s.state_synced and Syncing.calls == [("s0", [])]


def test_the_fast_path_waits_for_the_movers_suppliers_sync_state():
    import pyvswitch
    with pyvswitch.open() as hv:
        read = hv.kernel.sysfs.read
        assert read("bus/vsw-storage/devices/store0/state_synced") == "1"
        assert read("devices/platform/sbus0/state_synced") == "1"
        assert hv.path == "store"
        store = hv.kernel.device("store0")
        store.state_synced = False              # as if a consumer had not probed yet
        hv.controller.release()
        assert hv.controller.acquire_channel() is None
        assert "not in sync yet: store0" in hv.controller.channel_error
        store.state_synced = True
        assert hv.controller.acquire_channel() is not None


def test_module_param_given_at_modprobe_shown_and_written_in_sysfs():
    """module_param: modprobe m name=value, /sys/module/<m>/parameters/<p>, perm."""
    import pyvswitch
    k = Kernel()
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    assert k.modprobe("vsw_mover max_burst=4096 write_threshold=0x20 bogus=1") == ["vsw_mover"]
    read = k.sysfs.read
    assert read("module/vsw_mover/parameters/max_burst") == "4096"
    assert read("module/vsw_mover/parameters/write_threshold") == "32"
    assert "unknown parameter 'bogus' ignored" in " ".join(line.message for line in k.dmesg)
    k.sysfs.write("module/vsw_mover/parameters/channels", "2")
    assert read("module/vsw_mover/parameters/channels") == "2"
    with pytest.raises(KernelError) as e:
        k.sysfs.write("module/vsw_mover/parameters/channels", "many")
    assert e.value.errno == errno.EINVAL and read("module/vsw_mover/parameters/channels") == "2"
    k.rmmod("vsw_mover")
    with pytest.raises(KernelError) as e:
        k.modprobe("vsw_mover", max_burst="big")          # a bad value: nothing loads
    assert e.value.errno == errno.EINVAL and not k.module("vsw_mover").loaded
    assert pyvswitch.Kernel is Kernel


def test_a_device_property_wins_over_the_module_parameter_which_wins_over_the_default():
    import pathlib

    import pyvswitch
    from pyvswitch.drivers.common import param
    explicit = EXPLICIT.read_text()
    for text, module_value, expected in ((None, 4096, 4096),            # reference: no property set
                                         (explicit, 4096, 8192),        # the file sets 8192
                                         (None, None, 8192)):           # neither: the schema's default
        k = Kernel()
        plat = pyvswitch.Platform.load(text)
        if module_value:
            k.modprobe("vsw_mover", max_burst=module_value)
        pyvswitch.platform.boot(plat, k)
        pyvswitch.Controller(k, plat).enable()          # loads the other drivers; the mover's is loaded
        mover = k.device("mover0")
        assert mover.driver is not None and param(mover, "max_burst") == expected
        assert mover.driver_data.context.params.max_burst == expected


def test_sysfs_hierarchy_with_subsystem_driver_and_bus_links():
    """device_add's sysfs (device_add_class_symlinks, bus_add_device, driver_sysfs_add):
    devices/ nests children under parents; bus/*/devices/* and a device's
    subsystem and driver are symlinks; class/devlink links name both ends."""
    import pyvswitch
    with pyvswitch.open() as hv:
        fs = hv.kernel.sysfs
        assert fs.readlink("bus/vsw-storage/devices/store0") == "devices/platform/sbus0/store0"
        assert fs.readlink("devices/platform/sbus0/store0/subsystem") == "bus/vsw-storage"
        assert fs.readlink("devices/platform/sbus0/store0/driver") == "bus/vsw-storage/drivers/vsw-store"
        assert fs.readlink("bus/vsw-storage/drivers/vsw-store/store0") == "devices/platform/sbus0/store0"
        assert "store0" in fs.ls("devices/platform/sbus0") and "driver" in fs.ls("bus/vsw-storage/devices/store0")
        assert fs.read("bus/vsw-storage/devices/store0/vendor") == fs.read("devices/platform/sbus0/store0/vendor")
        link = "class/devlink/vsw-storage:store0--platform:mover0"
        assert fs.readlink(f"{link}/consumer") == "devices/platform/mover0"
        assert fs.readlink("devices/platform/mover0/supplier:vsw-storage:store0") == link
        assert fs.read("devices/platform/mover0/supplier:vsw-storage:store0/status") == "active"
        with pytest.raises(KernelError) as e:
            fs.readlink("devices/platform/mover0/modalias")
        assert e.value.errno == errno.EINVAL
        assert fs.links() and not set(fs.tree()) & set(fs.links())     # files and symlinks apart
        hv.unbind("mover")
        with pytest.raises(KernelError):
            fs.readlink("devices/platform/mover0/driver")
        assert "devices/platform/mover0/driver" not in fs.links()


def slow_async(name, compatible, started, release):
    class Slow(Driver):
        of_match_table = compatible
        probe_type = "prefer-asynchronous"

        def probe(self, dev):
            started.set()
            assert release.wait(5)
    Slow.name = name
    return Slow


def test_async_probe_runs_on_the_pool_and_wait_for_device_probe_waits():
    """__device_attach with allow_async, __device_attach_async_helper, wait_for_device_probe."""
    import threading
    started, release = threading.Event(), threading.Event()
    k = kernel(make_module("m", slow_async("slow", ("vsw,x",), started, release)))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))          # returns before the probe ends
    assert started.wait(5) and dev.driver is not None and dev.probing
    assert k.wait_for_device_probe(timeout=0.05) is False           # still running
    release.set()
    assert k.wait_for_device_probe(timeout=5) and dev.driver is not None and not dev.probing
    with pytest.raises(KernelError) as e, k.lock:
        k.wait_for_device_probe()
    assert e.value.errno == errno.EDEADLK


def test_async_probe_keeps_link_order_and_sysfs_binds_stay_synchronous():
    import threading
    started, release = threading.Event(), threading.Event()
    release.set()
    k = kernel(make_module("m", slow_async("slow", ("vsw,c",), started, release)),
               make_module("n", driver("sup", ("vsw,s",))))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = Device("c0", compatible=["vsw,c"])
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    k.device_add(c)
    k.device_link_add(c, s, DL_FLAG_AUTOPROBE_CONSUMER)
    k.sysfs.write("bus/platform/drivers_autoprobe", "1")
    k.insmod("m")                                   # the consumer's driver first: it must wait
    assert k.wait_for_device_probe(timeout=5)
    assert c.driver is None and k.deferred[c] == "waiting for supplier s0"
    k.insmod("n")
    assert k.wait_for_device_probe(timeout=5) and s.driver is not None and c.driver is not None
    k.unbind(c)
    k.sysfs.write("bus/platform/drivers/slow/bind", "c0")          # synchronous: bound on return
    assert c.driver is not None


def test_deferred_probe_timeout_reports_what_still_waits():
    """deferred_probe_timeout_work_func, driver_deferred_probe_check_state."""
    import time
    k = Kernel(modules=[make_module("m", driver("w", ("vsw,w",), outcome="defer"))], use_entry_points=False,
               deferred_probe_timeout=0.05)
    k.insmod("m")
    dev = k.device_add(Device("w0", compatible=["vsw,w"]))
    assert k.deferred_probe_check_state(dev) == -EPROBE_DEFER
    deadline = time.monotonic() + 5
    while not k.async_probe.timed_out and time.monotonic() < deadline:
        time.sleep(0.01)
    assert k.deferred_probe_check_state(dev) == -errno.ETIMEDOUT
    assert "w0: deferred probe pending: w: w waits" in [line.message for line in k.dmesg]
    with pytest.raises(KernelError) as e:
        Kernel(use_entry_points=False, deferred_probe_timeout=-1)
    assert e.value.errno == errno.EINVAL
