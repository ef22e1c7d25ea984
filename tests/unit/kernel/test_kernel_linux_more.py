"""The driver core, part two: the behaviours next to the ones test_kernel_linux.py
covers, each test named after the Linux function it follows (drivers/base/dd.c,
core.c, platform.c, devres.c; lib/kobject_uevent.c; kernel/module/main.c;
kmod's rmmod).  Followed: the current stable kernel's sources (6.x)."""
import errno
import types

import pytest
from effort import examples
from kernel_fakes import driver, make_module

from pyvswitch.errors import VswError
from pyvswitch.kernel import Device, Driver, Kernel, KernelError, links
from pyvswitch.kernel.links import (
    DL_FLAG_AUTOPROBE_CONSUMER,
    DL_FLAG_AUTOREMOVE_CONSUMER,
    DL_FLAG_AUTOREMOVE_SUPPLIER,
    DL_FLAG_STATELESS,
    DL_FLAG_SYNC_STATE_ONLY,
)

UUID = "12345678-1234-4321-abcd-0123456789ab"


def kernel(*modules):
    return Kernel(modules=modules, use_entry_points=False)


def loaded(*modules):
    k = kernel(*modules)
    for m in modules:
        k.insmod(m.MODULE_NAME)
    return k


def probes(log):
    return [e[2] for e in log if e[0] == "probe"]


# --- a deleted device is never probed -------------------------------------------
def test___driver_probe_device_gives_enodev_for_a_deleted_device():
    log = []
    k = loaded(make_module("m", driver("foo", ("vsw,x",), log=log)))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    k.device_del(dev)
    n = len(k.uevents)
    with pytest.raises(KernelError) as e:
        k.bind(dev, k.driver("foo"))
    assert e.value.errno == errno.ENODEV
    assert k.probe(dev) is False                        # __device_attach: a dead device is skipped
    with pytest.raises(KernelError) as e:
        k.sysfs.write("bus/platform/drivers/foo/bind", "x0")     # bind_store: no such device
    assert e.value.errno == errno.ENODEV
    assert probes(log) == [] and dev.driver is None and len(k.uevents) == n


def test_kill_device_comes_before_the_del_notifier_so_a_racing_probe_does_not_bind():
    """device_del marks the device dead first: a probe started from inside its
    deletion (a notifier, a consumer's driver) finds it dead."""
    log = []
    k = loaded(make_module("m", driver("foo", ("vsw,x",), log=log)))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    tried = []

    def racer(event, d):
        if d is dev and event in ("del_device", "removed_device"):
            tried.append(k.probe(d))
            with pytest.raises(KernelError) as e:
                k.bind(d, k.driver("foo"))
            tried.append(e.value.errno)
    k.notifier_register(racer)
    k.device_del(dev)
    assert tried == [False, errno.ENODEV, False, errno.ENODEV]
    assert probes(log) == [] and not any(ev.action == "bind" for ev in k.uevents)


def test_device_del_releases_the_devres_of_an_unbound_device_and_notifies_removed_device():
    k = kernel()
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    seen = []
    k.notifier_register(lambda event, d: seen.append((event, len(d.devres))))
    dev.devm_add_action(lambda: seen.append(("release", "a")), "a")
    dev.devm_add_action(lambda: seen.append(("release", "b")), "b")
    k.device_del(dev)
    assert seen == [("del_device", 2), ("release", "b"), ("release", "a"), ("removed_device", 0)]
    assert k.uevents[-1].action == "remove" and len(dev.devres) == 0


def test_device_del_of_a_bound_device_unbinds_purges_its_links_and_releases_everything():
    log = []
    k = loaded(make_module("m", driver("sup", ("vsw,s",), log=log, resources=2), driver("con", ("vsw,c",), log=log)))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s, DL_FLAG_AUTOPROBE_CONSUMER)
    k.device_del(s)
    assert c.driver is None and c.supplier_links == {} and s.consumers == []       # device_links_purge
    assert [e for e in log if e[0] == "release"] == [("release", "sup", "s0", 1), ("release", "sup", "s0", 0)]
    assert c in k.deferred or c.driver is None
    k.probe(c)
    assert c.driver is not None                 # its supplier's link went with the supplier


# --- devres outside a probe, and groups --------------------------------------------
def test_really_probe_refuses_a_device_holding_resources_with_ebusy():
    log = []
    k = loaded(make_module("m", driver("first", ("vsw,x",), log=log), driver("second", ("vsw,x",), log=log)))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    released = []
    dev.devm_add_action(lambda: released.append(1), "outside")
    with pytest.raises(KernelError) as e:
        k.bind(dev, k.driver("first"))
    assert e.value.errno == errno.EBUSY and "outside" in str(e.value)
    assert k.probe(dev) is False and probes(log) == []      # -EBUSY stops the walk over drivers
    assert any("Resources present before probing" in line.message for line in k.dmesg)
    assert dev.devres.release_all() == ["outside"] and released == [1]
    assert k.probe(dev) is True and probes(log) == ["x0"]


def test_devres_release_group_releases_only_the_group_newest_first():
    dev = Device("x0")
    order = []
    dev.devm_add_action(lambda: order.append("before"), "before")
    gid = dev.devres_open_group()
    dev.devm_add_action(lambda: order.append("g1"), "g1")
    inner = dev.devres_open_group("inner")
    dev.devm_add_action(lambda: order.append("g2"), "g2")
    dev.devres_close_group(inner)
    dev.devres_close_group(gid)
    dev.devm_add_action(lambda: order.append("after"), "after")
    assert dev.devres_release_group(gid) == 2 and order == ["g2", "g1"]     # the nested group with it
    assert dev.devres.names() == ["before", "after"]
    with pytest.raises(KernelError) as e:
        dev.devres_release_group(gid)
    assert e.value.errno == errno.ENOENT and dev.devres.names() == ["before", "after"]


def test_devres_remove_group_keeps_the_resources():
    dev = Device("x0")
    gid = dev.devres_open_group()
    dev.devm_add_action(lambda: None, "kept")
    dev.devres_close_group()                        # None: the newest open group
    dev.devres_remove_group(gid)
    assert dev.devres.names() == ["kept"]
    with pytest.raises(KernelError) as e:
        dev.devres_release_group(gid)               # its marks are gone
    assert e.value.errno == errno.ENOENT and dev.devres.names() == ["kept"]


def test_devres_release_group_of_an_open_group_goes_to_the_end():
    dev = Device("x0")
    dev.devm_add_action(lambda: None, "outer")
    dev.devres_open_group("g")
    dev.devm_add_action(lambda: None, "a")
    dev.devm_add_action(lambda: None, "b")
    assert dev.devres_release_group("g") == 2 and dev.devres.names() == ["outer"]
    with pytest.raises(KernelError):
        dev.devres_close_group("g")


def test_devres_group_in_a_failed_probe_is_released_with_the_rest():
    class Grouped(Driver):
        name, of_match_table = "grouped", ("vsw,x",)

        def probe(self, dev):
            dev.devres_open_group("g")
            dev.devm_add_action(lambda: None, "in-group")
            raise KernelError(errno.EIO, "half way")
    k = loaded(make_module("m", Grouped))
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert dev.driver is None and len(dev.devres) == 0 and dev.devres._items == []
    assert k.probe(dev) is False and "half way" in k.probe_errors["x0"]      # not EBUSY: nothing was left


# --- device links -----------------------------------------------------------------
def test_device_links_unbind_consumers_leaves_a_consumer_that_bound_before_its_link():
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.probe(c)
    k.device_link_add(c, s)
    link = links.link_of(c, s)
    assert link.status == "dormant"
    k.probe(s)
    assert link.status == "available" and c.driver is not None      # device_links_driver_bound: not active
    k.unbind(s)
    assert c.driver is not None and link.status == "dormant"        # only ACTIVE consumers are unbound
    k.probe(s)
    k.unbind(c)
    k.probe(c)
    assert link.status == "active"
    k.unbind(s)
    assert c.driver is None and link.status == "dormant"


def test_device_link_del_leaves_a_managed_link_and_warns():
    k = kernel()
    s, c = k.device_add(Device("s0")), k.device_add(Device("c0"))
    k.device_link_add(c, s)
    k.device_link_del(c, s)
    assert links.link_of(c, s) is not None
    assert any("unable to drop a managed device link reference" in line.message for line in k.dmesg)


def test_device_link_put_kref_drops_one_stateless_reference_at_a_time():
    k = kernel()
    s, c = k.device_add(Device("s0")), k.device_add(Device("c0"))
    for _ in range(2):
        k.device_link_add(c, s, DL_FLAG_STATELESS)
    k.device_link_del(c, s)
    assert links.link_of(c, s) is not None and links.link_of(c, s).kref == 1
    k.device_link_del(c, s)
    assert links.link_of(c, s) is None and c.suppliers == [] and s.consumers == []
    k.device_link_del(c, s)                     # one too many: nothing there, nothing happens
    assert links.link_of(c, s) is None


def test_device_link_add_managed_over_stateless_takes_a_reference_and_drop_managed_keeps_it():
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s, DL_FLAG_STATELESS)
    link = links.link_of(c, s)
    assert link.status == "not tracked"
    k.device_link_add(c, s, DL_FLAG_AUTOREMOVE_CONSUMER)
    assert link.managed and link.kref == 2 and link.status == "active"
    k.unbind(c)                                 # device_link_drop_managed: the stateless reference stays
    assert links.link_of(c, s) is link and not link.managed and link.kref == 1 and link.status == "not tracked"


@pytest.mark.parametrize("first,second,expected", [
    (DL_FLAG_AUTOREMOVE_CONSUMER, DL_FLAG_AUTOREMOVE_SUPPLIER, "supplier unbind"),
    (DL_FLAG_AUTOREMOVE_SUPPLIER, DL_FLAG_AUTOREMOVE_CONSUMER, "supplier unbind"),
    (DL_FLAG_AUTOREMOVE_CONSUMER, DL_FLAG_AUTOREMOVE_CONSUMER, "consumer unbind"),
    (DL_FLAG_AUTOREMOVE_CONSUMER, 0, "never"),
    (DL_FLAG_AUTOREMOVE_SUPPLIER, 0, "never"),
    (0, DL_FLAG_AUTOREMOVE_CONSUMER, "never"),
])
def test_device_link_add_again_keeps_the_longer_lifetime(first, second, expected):
    k = kernel()
    s, c = k.device_add(Device("s0")), k.device_add(Device("c0"))
    k.device_link_add(c, s, first)
    k.device_link_add(c, s, second)
    assert k.sysfs.read("class/devlink/platform:s0--platform:c0/auto_remove_on") == expected


def test_device_link_add_prefers_autoremove_supplier_when_both_are_given():
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s, DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER)
    assert links.link_of(c, s).auto_remove_on == "supplier unbind"
    k.unbind(c)
    assert links.link_of(c, s) is not None              # not the consumer's unbind
    k.probe(c)
    k.unbind(s)
    assert links.link_of(c, s) is None and c.driver is None


def test_device_links_driver_bound_drops_a_sync_state_only_link_and_syncs_its_supplier():
    synced = []

    class Sup(Driver):
        name, of_match_table = "sup", ("vsw,s",)

        def probe(self, dev):
            pass

        def sync_state(self, dev):
            synced.append(dev.name)
    k = loaded(make_module("m", Sup, driver("con", ("vsw,c",))))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s, DL_FLAG_SYNC_STATE_ONLY)
    k.probe(s)
    assert synced == [] and links.link_of(c, s).status == "available"     # a consumer yet to probe
    k.probe(c)
    assert links.link_of(c, s) is None and synced == ["s0"]
    with pytest.raises(KernelError) as e:                                  # useless once the consumer probed
        k.device_link_add(c, s, DL_FLAG_SYNC_STATE_ONLY)
    assert e.value.errno == errno.EINVAL and links.link_of(c, s) is None


@pytest.mark.parametrize("flags", [DL_FLAG_STATELESS | DL_FLAG_AUTOREMOVE_CONSUMER,
                                   DL_FLAG_STATELESS | DL_FLAG_SYNC_STATE_ONLY,
                                   DL_FLAG_AUTOPROBE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER,
                                   DL_FLAG_SYNC_STATE_ONLY | DL_FLAG_AUTOPROBE_CONSUMER, 1 << 12, -1])
def test_device_link_add_refuses_flags_that_do_not_go_together(flags):
    k = kernel()
    s, c = k.device_add(Device("s0")), k.device_add(Device("c0"))
    with pytest.raises(KernelError) as e:
        k.device_link_add(c, s, flags)
    assert e.value.errno == errno.EINVAL and links.link_of(c, s) is None


def test_device_link_add_refuses_a_deleted_supplier():
    k = kernel()
    s, c = k.device_add(Device("s0")), k.device_add(Device("c0"))
    k.device_del(s)
    with pytest.raises(KernelError) as e:
        k.device_link_add(c, s)
    assert e.value.errno == errno.EINVAL and c.suppliers == []


# --- names --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", None, 7])
def test_kobject_add_internal_refuses_a_device_without_a_name(name):
    k = kernel()
    n = len(k.uevents)
    with pytest.raises(KernelError) as e:
        k.device_add(Device(name))
    assert e.value.errno == errno.EINVAL and len(k.uevents) == n and k.devices == []


def test_kobject_set_name_makes_a_slash_a_bang():
    k = kernel()
    dev = k.device_add(Device("i2c/eeprom", compatible=["vsw,x"]))
    assert dev.name == "i2c!eeprom" and dev.devpath == "/devices/platform/i2c!eeprom"
    assert k.uevents[-1].devpath == "/devices/platform/i2c!eeprom"
    assert k.sysfs.readlink("bus/platform/devices/i2c!eeprom") == "devices/platform/i2c!eeprom"
    child = k.device_add(Device("a/b", parent=dev))
    assert child.devpath == "/devices/platform/i2c!eeprom/a!b"


# --- legacy platform devices ----------------------------------------------------------
def test_platform_match_falls_back_to_the_driver_name_for_a_device_without_a_node():
    log = []
    legacy = driver("serial8250", log=log)
    k = loaded(make_module("m", legacy))
    dev = k.device_add(Device("serial8250", pdev_id=0))
    other = k.device_add(Device("serial8251"))
    assert dev.name == "serial8250.0" and dev.driver is not None and other.driver is None
    assert probes(log) == ["serial8250.0"]


def test_platform_match_uses_the_id_table_before_the_name():
    class Ids(Driver):
        name, platform_ids = "multi", ("chip-a", "chip-b")

        def probe(self, dev):
            pass
    k = loaded(make_module("m", Ids))
    a, b = k.device_add(Device("chip-b")), k.device_add(Device("multi"))
    assert a.driver is not None and b.driver is None     # an id table: the driver's name does not match
    assert k.modules.lookup("platform:chip-a")[0].name == "m"


def test_platform_uevent_modalias_for_a_device_without_a_node():
    k = kernel()
    dev = k.device_add(Device("legacy-rtc", pdev_id=2))
    ev = k.uevents[-1]
    assert ev.action == "add" and ev.env["MODALIAS"] == "platform:legacy-rtc"
    assert not any(key.startswith("OF_") for key in ev.env) and "<NULL>" not in str(ev.env)
    assert dev.modalias == k.sysfs.read("devices/platform/legacy-rtc.2/modalias") == "platform:legacy-rtc"
    assert "MODALIAS=platform:legacy-rtc" in k.sysfs.read("devices/platform/legacy-rtc.2/uevent")
    with pytest.raises(KernelError):
        k.sysfs.read("devices/platform/legacy-rtc.2/of_node/compatible")
    of = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert of.modalias == "of:Nx0T<NULL>Cvsw,x" and k.uevents[-1].env["OF_COMPATIBLE_0"] == "vsw,x"


def test_modprobe_loads_a_module_by_its_platform_alias_and_it_binds():
    mod = make_module("rtc_legacy", driver("legacy-rtc"))
    mod.MODULE_ALIAS = ("platform:legacy-rtc",)
    k = kernel(mod)
    dev = k.device_add(Device("legacy-rtc"))
    assert dev.driver is None
    assert k.modprobe(dev.modalias) == ["rtc_legacy"] and dev.driver is not None
    bind = [e for e in k.uevents if e.action == "bind"]
    assert len(bind) == 1 and bind[0].env["MODALIAS"] == "platform:legacy-rtc"
    assert k.uevents[-1].devpath == "/module/rtc_legacy"     # the module's add comes once its init returned
    with pytest.raises(KernelError) as e:
        k.modprobe("platform:legacy-rtc2")
    assert e.value.errno == errno.ENOENT


# --- registration and modules -----------------------------------------------------------
def test_driver_register_refuses_a_name_taken_with_ebusy_and_the_module_loads_nothing():
    k = kernel(make_module("a", driver("foo", ("vsw,x",))),
               make_module("b", driver("bar", ("vsw,y",)), driver("foo", ("vsw,z",))))
    k.insmod("a")
    with pytest.raises(KernelError) as e:
        k.insmod("b")
    assert e.value.errno == errno.EBUSY and not k.module("b").loaded
    assert "bar" not in k.buses["platform"].drivers          # what it registered first is gone again
    assert [ev.action for ev in k.uevents if ev.subsystem == "drivers" and "bar" in ev.devpath] == ["add", "remove"]


def test_driver_register_refuses_a_bus_that_is_not_registered():
    k = kernel(make_module("m", driver("d", bus="nobus")))
    with pytest.raises(KernelError) as e:
        k.insmod("m")
    assert e.value.errno == errno.EINVAL and "nobus" in str(e.value) and not k.module("m").loaded
    with pytest.raises(KernelError) as e:
        k.driver_register(driver("d2", bus="nobus")())
    assert e.value.errno == errno.EINVAL


def test_bus_add_driver_and_do_init_module_send_uevents():
    k = kernel(make_module("base", driver("b", ("vsw,x",))))
    k.insmod("base")
    evs = [(e.action, e.devpath, e.subsystem) for e in k.uevents]
    assert evs == [("add", "/bus/platform/drivers/b", "drivers"), ("add", "/module/base", "module")]
    k.rmmod("base")
    evs = [(e.action, e.devpath, e.subsystem) for e in k.uevents[2:]]
    assert evs == [("remove", "/bus/platform/drivers/b", "drivers"), ("remove", "/module/base", "module")]


def test_ref_module_counts_holders_in_refcnt_and_sysfs_shows_them():
    k = kernel(make_module("base", driver("b", ("vsw,x",))), make_module("extra", depends=("base",)))
    k.insmod("extra")
    assert k.sysfs.read("module/base/refcnt") == "1" and k.module("base").holders == ["extra"]
    assert k.sysfs.readlink("module/base/holders/extra") == "module/extra"
    k.module("base").get()
    assert k.sysfs.read("module/base/refcnt") == "2"
    k.module("base").put()
    with pytest.raises(KernelError) as e:
        k.rmmod("base")
    assert e.value.errno == errno.EBUSY and "extra" in str(e.value)
    k.rmmod("extra")
    assert k.sysfs.read("module/base/refcnt") == "0" and "module/base/holders/extra" not in k.sysfs.links()
    k.rmmod("base")


def test_module_add_driver_links_the_driver_and_its_module():
    k = loaded(make_module("base", driver("b", ("vsw,x",))))
    assert k.sysfs.readlink("bus/platform/drivers/b/module") == "module/base"
    assert k.sysfs.readlink("module/base/drivers/platform:b") == "bus/platform/drivers/b"
    assert "module/base/refcnt" in k.sysfs.tree() and "bus/platform/drivers/b/module" not in k.sysfs.tree()
    assert k.sysfs.read("bus/platform/drivers/b/module/refcnt") == "0"       # followed as a link


def test_add_unformed_module_refuses_a_live_module_with_eexist():
    k = loaded(make_module("base", driver("b", ("vsw,x",))))
    n = len(k.uevents)
    with pytest.raises(KernelError) as e:
        k.insmod("base")
    assert e.value.errno == errno.EEXIST and len(k.uevents) == n
    assert k.modprobe("base") == ["base"] and len(k.uevents) == n      # modprobe: loaded already, fine


def test_rmmod_treats_a_dash_as_an_underscore():
    k = loaded(make_module("my_mod", driver("b", ("vsw,x",))))
    k.rmmod("my-mod")
    assert not k.module("my_mod").loaded
    k.insmod("my-mod")
    assert k.module("my_mod").loaded


@pytest.mark.parametrize("call", ["modprobe", "rmmod", "insmod", "module"])
@pytest.mark.parametrize("arg", [0, [], None, b"base", 1.5])
def test_module_calls_refuse_what_is_not_a_name_with_einval(call, arg):
    k = kernel(make_module("base", driver("b", ("vsw,x",))))
    with pytest.raises(VswError) as e:
        getattr(k, call)(arg)
    assert e.value.errno == errno.EINVAL and not k.module("base").loaded


def test_module_init_failure_halfway_leaves_nothing_loaded():
    mod = make_module("half", driver("h1", ("vsw,x",)))

    def init_module(kernel):
        raise KernelError(errno.ENOMEM, "init failed")
    mod.init_module = init_module
    dep = make_module("dep", driver("d1", ("vsw,y",)))
    mod.MODULE_DEPENDS = ("dep",)
    k = kernel(mod, dep)
    with pytest.raises(KernelError) as e:
        k.modprobe("half")
    assert e.value.errno == errno.ENOMEM
    assert not k.module("half").loaded and not k.module("dep").loaded and k.module("dep").holders == []
    assert k.buses["platform"].drivers == {}


# --- notifiers and synthetic uevents -------------------------------------------------------
def test_really_probe_sends_bind_driver_before_probe_and_driver_not_bound_after_a_failure():
    log = []
    k = loaded(make_module("m", driver("good", ("vsw,x",), log=log),
                           driver("bad", ("vsw,y",), outcome="fail", log=log, resources=1)))
    seen = []
    k.notifier_register(lambda event, d: seen.append((event, d.name, len(d.devres), len(log))))
    k.device_add(Device("x0", compatible=["vsw,x"]))
    assert [s[0] for s in seen] == ["add_device", "bind_driver", "bound_driver"]
    assert seen[1][3] == 0                               # BIND_DRIVER before the probe ran
    seen.clear()
    k.device_add(Device("y0", compatible=["vsw,y"]))
    assert [s[0] for s in seen] == ["add_device", "bind_driver", "driver_not_bound"]
    assert seen[2][2] == 1                               # DRIVER_NOT_BOUND before devres is released
    assert ("release", "bad", "y0", 0) in log


def test_kobject_synth_uevent_carries_synth_uuid_and_its_arguments():
    k = kernel()
    k.device_add(Device("x0", compatible=["vsw,x"]))
    k.sysfs.write("devices/platform/x0/uevent", "change\n")
    assert k.uevents[-1].env["SYNTH_UUID"] == "0"
    k.sysfs.write("devices/platform/x0/uevent", f"add {UUID} A=1 Bc2=two")
    ev = k.uevents[-1]
    assert ev.action == "add" and ev.env["SYNTH_UUID"] == UUID
    assert ev.env["SYNTH_ARG_A"] == "1" and ev.env["SYNTH_ARG_Bc2"] == "two"
    assert ev.env["MODALIAS"] == "of:Nx0T<NULL>Cvsw,x"


@pytest.mark.parametrize("text", [f"add {UUID[:-1]}", "add not-a-uuid", f"add {UUID}x", f"add {UUID} A",
                                  f"add {UUID} A=", f"add {UUID}  A=1", f"add {UUID} =1", "add ", f"bogus {UUID}",
                                  f"add {UUID} B_C=1", f"add {UUID} A=x-y", f"add {UUID} A=1 "])
def test_kobject_action_args_refuses_malformed_arguments(text):
    k = kernel()
    k.device_add(Device("x0", compatible=["vsw,x"]))
    n = len(k.uevents)
    with pytest.raises(KernelError) as e:
        k.sysfs.write("devices/platform/x0/uevent", text)
    assert e.value.errno == errno.EINVAL and len(k.uevents) == n


def test_a_module_object_is_never_imported_from_a_name():
    k = kernel(types.ModuleType("plain"))
    with pytest.raises(KernelError) as e:
        k.insmod("os")
    assert e.value.errno == errno.ENOENT


def test_kill_device_wins_over_binds_racing_from_other_threads():
    """Threads bind, probe and write sysfs bind while another deletes the devices:
    once device_del has begun no probe runs on a device, and none stays bound."""
    import threading
    probed_dead = []

    class Watch(Driver):
        name, of_match_table = "watch", ("vsw,x",)

        def probe(self, dev):
            if dev.dead or not dev.registered:
                probed_dead.append(dev.name)
    k = loaded(make_module("m", Watch))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    devs = [k.device_add(Device(f"x{i}", compatible=["vsw,x"])) for i in range(40)]
    drv = k.driver("watch")
    stop = threading.Event()

    def binder():
        while not stop.is_set():
            for d in devs:
                try:
                    k.bind(d, drv)
                except KernelError as e:
                    assert e.errno in (errno.ENODEV, errno.EBUSY)
                k.probe(d)
                try:
                    k.sysfs.write("bus/platform/drivers/watch/unbind", d.name)
                except KernelError as e:
                    assert e.errno == errno.ENODEV

    threads = [threading.Thread(target=binder) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for d in devs:
            k.device_del(d)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert probed_dead == [] and all(d.driver is None and d.dead for d in devs)
    assert k.buses["platform"].devices == {}


@pytest.mark.parametrize("value", [1.5, object(), {"a": 1}])
def test_param_values_from_python_that_are_not_text_numbers_or_bools_are_einval(value):
    from pyvswitch.kernel import ModuleParam
    mod = make_module("m")
    mod.MODULE_PARAMS = (ModuleParam("level", int, 0, 0o644),)
    k = kernel(mod)
    with pytest.raises(KernelError) as e:
        k.modprobe("m", level=value)
    assert e.value.errno == errno.EINVAL and not k.module("m").loaded


def test_kobject_synth_uevent_on_any_text_sends_one_event_or_none():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pyvswitch.kernel.sysfs import SYNTH_ACTIONS
    k = kernel()
    k.device_add(Device("x0", compatible=["vsw,x"]))

    @settings(max_examples=examples(300))
    @given(st.one_of(st.text(max_size=60), st.builds(lambda a, rest: f"{a} {UUID}{rest}",
                                                     st.sampled_from(SYNTH_ACTIONS), st.text(max_size=20))))
    def run(text):
        n = len(k.uevents)
        try:
            k.sysfs.write("devices/platform/x0/uevent", text)
        except KernelError as e:
            assert e.errno == errno.EINVAL and len(k.uevents) == n
        else:
            if text == "":                      # sysfs_kf_write: a write of no bytes does nothing
                assert len(k.uevents) == n
                return
            assert len(k.uevents) == n + 1 and k.uevents[-1].action in SYNTH_ACTIONS
            assert "SYNTH_UUID" in k.uevents[-1].env
    run()


# --- found by attacking part two (each failed before its fix) --------------------
def test_bus_remove_driver_takes_the_driver_off_the_bus_before_driver_detach():
    """klist_remove comes before driver_detach: a device re-probed while its
    driver goes (a udev-like helper writing drivers_probe on the unbind uevent)
    can never bind to the driver being unregistered."""
    log = []
    k = loaded(make_module("m", driver("foo", ("vsw,x",), log=log)))
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))

    def helper(ev):
        if ev.action == "unbind":
            k.sysfs.write("bus/platform/drivers_probe", ev.device)
    k.subscribe(helper)
    k.rmmod("m")
    assert dev.driver is None and probes(log) == ["x0"]
    assert "devices/platform/x0/driver" not in k.sysfs.links()
    k.insmod("m")                                       # and it binds again once the module is back
    assert dev.driver is k.driver("foo") and probes(log) == ["x0", "x0"]


def test_driver_register_sends_the_drivers_add_uevent_after_bus_add_driver_attached():
    """driver_register: bus_add_driver (driver_attach: the binds and their
    uevents) first, then kobject_uevent(KOBJ_ADD) of the driver."""
    k = kernel(make_module("m", driver("foo", ("vsw,x",))))
    k.device_add(Device("x0", compatible=["vsw,x"]))
    n = len(k.uevents)
    k.insmod("m")
    evs = [(e.action, e.devpath) for e in k.uevents[n:]]
    assert evs == [("bind", "/devices/platform/x0"), ("add", "/bus/platform/drivers/foo"), ("add", "/module/m")]


def test_driver_set_override_cuts_at_the_newline_and_refuses_a_page():
    """driver_set_override: the name ends at the first newline (or NUL); a
    lone newline clears it; leading blanks are kept (they are part of a name
    no driver has); a write of a page or more is EINVAL, nothing changed."""
    import mmap
    k = kernel()
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    f = "devices/platform/x0/driver_override"
    k.sysfs.write(f, "foo\nbar")
    assert dev.driver_override == "foo" and k.sysfs.read(f) == "foo"
    k.sysfs.write(f, "\n")
    assert dev.driver_override is None and k.sysfs.read(f) == "(null)"
    k.sysfs.write(f, "foo\0junk")
    assert dev.driver_override == "foo"
    k.sysfs.write(f, " foo")
    assert dev.driver_override == " foo"
    k.sysfs.write(f, "a" * (mmap.PAGESIZE - 2))         # one less than the page: stored
    assert dev.driver_override == "a" * (mmap.PAGESIZE - 2)
    with pytest.raises(KernelError) as e:
        k.sysfs.write(f, "b" * (mmap.PAGESIZE - 1))
    assert e.value.errno == errno.EINVAL and dev.driver_override == "a" * (mmap.PAGESIZE - 2)


def test_sysfs_kf_write_of_nothing_does_nothing():
    """sysfs_kf_write: a write of no bytes never reaches the store."""
    k = loaded(make_module("m", driver("foo", ("vsw,x",))))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    dev.driver_override = "foo"
    n = len(k.uevents)
    for f in ("bus/platform/drivers/foo/bind", "bus/platform/drivers_probe", "devices/platform/x0/uevent",
              "devices/platform/x0/driver_override", "bus/platform/drivers_autoprobe"):
        k.sysfs.write(f, "")
    assert dev.driver_override == "foo" and dev.driver is None and len(k.uevents) == n
    assert k.sysfs.read("bus/platform/drivers_autoprobe") == "0"


@pytest.mark.parametrize("text", [" x0", "x0 ", "x0\n\n", "\nx0", "x0\t"])
def test_bind_store_matches_names_as_sysfs_streq_does(text):
    """bus_find_device_by_name compares with sysfs_streq: the name exactly, or
    with one trailing newline - no other blank is ignored (ENODEV)."""
    k = loaded(make_module("m", driver("foo", ("vsw,x",))))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    for f in ("bus/platform/drivers/foo/bind", "bus/platform/drivers_probe"):
        with pytest.raises(KernelError) as e:
            k.sysfs.write(f, text)
        assert e.value.errno == errno.ENODEV and dev.driver is None
    k.sysfs.write("bus/platform/drivers/foo/bind", "x0\n")
    with pytest.raises(KernelError) as e:
        k.sysfs.write("bus/platform/drivers/foo/unbind", text)
    assert e.value.errno == errno.ENODEV and dev.driver is not None
    k.sysfs.write("bus/platform/drivers/foo/unbind", "x0\0junk")     # a C string ends at its NUL
    assert dev.driver is None


@pytest.mark.parametrize("action", ["online", "offline", "move"])
def test_dev_uevent_adds_the_bus_variables_to_every_action(action):
    """kobject_uevent_env calls the kset's uevent op (dev_uevent, then the
    bus's) whatever the action: a synthetic online/offline/move carries
    MODALIAS and the OF_* variables too."""
    k = loaded(make_module("m", driver("foo", ("vsw,x",))))
    k.device_add(Device("x0", compatible=["vsw,x"]))
    k.sysfs.write("devices/platform/x0/uevent", action)
    env = k.uevents[-1].as_dict()
    assert env["ACTION"] == action and env["MODALIAS"] == "of:Nx0T<NULL>Cvsw,x"
    assert env["OF_COMPATIBLE_0"] == "vsw,x" and env["DRIVER"] == "foo"


def test_device_link_add_makes_a_sync_state_only_link_a_full_one_before_anything_else():
    """device_link_add over a sync-state-only link without that flag clears it
    first (and reorders): a full managed link from then on, holding the
    consumer's probe behind its supplier - even when the new add is stateless
    (no reference is taken then: the link is not stateless)."""
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s, DL_FLAG_SYNC_STATE_ONLY)
    k.device_link_add(c, s, DL_FLAG_STATELESS)
    link = links.link_of(c, s)
    assert link.managed and link.kref == 1 and not link.flags & (DL_FLAG_SYNC_STATE_ONLY | DL_FLAG_STATELESS)
    assert k.probe(c) is False and c.driver is None             # waits for its supplier now
    k.probe(s)
    k.probe(c)
    assert c.driver is not None and link.status == "active"
    k.device_link_del(c, s)                                     # managed: not dropped by a del
    assert links.link_of(c, s) is link


def test_driver_deferred_probe_add_never_keeps_a_deleted_device():
    """A device deleted while a link still names it (a link added to it after
    device_del) is not left on the deferred list when its supplier binds: the
    deferred work takes every device off the list and probes only live ones."""
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_del(c)
    k.device_link_add(c, s, DL_FLAG_AUTOPROBE_CONSUMER)
    k.probe(s)
    assert c not in k.deferred and k.sysfs.read("kernel/debug/devices_deferred") == ""
    assert c.driver is None


def test_drivers_probe_store_gives_the_errors_of_device_attach():
    """drivers_probe_store -> bus_rescan_devices_helper: device_attach's
    negative return is the write's error - EBUSY for resources present before
    probing, EPROBE_DEFER while an enforced supplier is unbound; no driver
    binding (or a probe that failed) is not an error."""
    from pyvswitch.kernel.errors import EPROBE_DEFER
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",)),
                           driver("bad", ("vsw,b",), outcome="fail")))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_add(Device("b0", compatible=["vsw,b"]))
    k.device_add(Device("n0", compatible=["vsw,none"]))
    k.device_link_add(c, s)
    with pytest.raises(KernelError) as e:
        k.sysfs.write("bus/platform/drivers_probe", "c0")
    assert e.value.errno == EPROBE_DEFER and c.driver is None
    s.devm_add_action(lambda: None, "held")
    with pytest.raises(KernelError) as e:
        k.sysfs.write("bus/platform/drivers_probe", "s0\n")
    assert e.value.errno == errno.EBUSY and s.driver is None
    s.devres.release_all()
    k.sysfs.write("bus/platform/drivers_probe", "s0")
    k.sysfs.write("bus/platform/drivers_probe", "c0")
    assert s.driver is not None and c.driver is not None
    k.sysfs.write("bus/platform/drivers_probe", "b0")           # the probe failed: not the write's error
    k.sysfs.write("bus/platform/drivers_probe", "n0")           # no driver: neither
    k.sysfs.write("bus/platform/drivers_probe", "c0")           # bound already: nothing to do


def test___device_release_driver_reentered_from_its_unbind_notifier_releases_once():
    """A BUS_NOTIFY_UNBIND_DRIVER listener that unbinds the device again (in
    Linux it would wait on the device lock, then find no driver): remove()
    runs once, one unbind uevent, no recursion."""
    log = []
    k = loaded(make_module("m", driver("foo", ("vsw,x",), log=log, resources=1)))
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    again = []

    def listener(event, d):
        if event == "unbind_driver" and d is dev:
            k.unbind(d)
            k.sysfs.write("bus/platform/drivers/foo/unbind", "x0")
            again.append(d.driver)
    k.notifier_register(listener)
    n = len(k.uevents)
    k.unbind(dev)
    assert again == [k.driver("foo")] and dev.driver is None
    assert [e for e in log if e[0] in ("remove", "release")] == [("remove", "foo", "x0"), ("release", "foo", "x0", 0)]
    assert [e.action for e in k.uevents[n:]] == ["unbind"]


def _self_removing_module(name="m"):
    """A module whose first driver's probe tries rmmod of its own module."""
    tried = []

    class D1(Driver):
        name, of_match_table = "d1", ("vsw,x",)

        def probe(self, dev):
            try:
                self.kernel.rmmod(name)
                tried.append("unloaded")
            except KernelError as e:
                tried.append(e.errno)

        def remove(self, dev):
            tried.append(("remove", dev.name))

    class D2(Driver):
        name, of_match_table = "d2", ("vsw,y",)

        def probe(self, dev):
            pass
    return make_module(name, D1, D2), tried


def test_delete_module_refuses_a_module_still_coming_with_ebusy():
    """delete_module: "Doing init or already dying?" - a module whose init
    (its drivers' registration, their probes) is still running is not LIVE:
    EBUSY, and the load goes on as if nothing happened."""
    mod, tried = _self_removing_module()
    k = kernel(mod)
    x = k.device_add(Device("x0", compatible=["vsw,x"]))
    y = k.device_add(Device("y0", compatible=["vsw,y"]))
    k.insmod("m")
    assert tried == [errno.EBUSY] and k.module("m").loaded
    assert x.driver is k.driver("d1") and y.driver is k.driver("d2")
    assert k.sysfs.read("module/m/initstate") == "live"
    k.rmmod("m")
    assert x.driver is None and y.driver is None and list(k.bus("platform").drivers) == []


def test_driver_detach_of_a_driver_whose_probe_is_running_unbinds_the_device_once_probed():
    """rmmod from inside a probe of one of the module's drivers (after the
    module is live): driver_detach waits on the device lock until the probe
    is over - the device binds, then unbinds; it is never left bound to a
    driver that is no longer registered."""
    mod, tried = _self_removing_module()
    k = kernel(mod)
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    k.insmod("m")
    x = k.device_add(Device("x0", compatible=["vsw,x"]))
    n = len(k.uevents)
    k.bind(x, k.driver("d1"))
    assert tried == ["unloaded", ("remove", "x0")] and not k.module("m").loaded
    assert x.driver is None and list(k.bus("platform").drivers) == []
    assert [(e.action, e.devpath) for e in k.uevents[n:] if e.subsystem == "platform"] == [
        ("bind", "/devices/platform/x0"), ("unbind", "/devices/platform/x0")]


def test_try_module_get_fails_on_a_going_module():
    """try_module_get: false once the module is going (its exit running) -
    a reference taken then would outlive the module."""
    got = []

    class D(Driver):
        name, of_match_table = "d", ("vsw,x",)

        def probe(self, dev):
            pass

        def remove(self, dev):
            try:
                self.module.get()
                got.append("pinned")
            except KernelError as e:
                got.append(e.errno)
            try:
                self.kernel.rmmod("m")
            except KernelError as e:
                got.append(e.errno)
    k = loaded(make_module("m", D))
    k.device_add(Device("x0", compatible=["vsw,x"]))
    assert k.sysfs.read("module/m/initstate") == "live"
    k.rmmod("m")
    assert got == [errno.ENOENT, errno.EBUSY] and not k.module("m").loaded and k.module("m").refcnt == 0


@pytest.mark.parametrize("call", ["device_del", "unbind"])
def test_device_del_and_unbind_from_inside_a_probe_wait_for_it(call):
    """device_del and an unbind take the device lock the probe holds: they
    wait for it, then unbind (and delete) - the probe's resources are not
    released under it, and a deleted device is never left bound."""
    log = []

    class D(Driver):
        name, of_match_table = "d", ("vsw,x",)

        def probe(self, dev):
            dev.devm_add_action(lambda: log.append("release"), "r")
            getattr(self.kernel, call)(dev)
            log.append(("probe done", len(dev.devres), dev.registered))

        def remove(self, dev):
            log.append("remove")
    k = loaded(make_module("m", D))
    x = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert log == [("probe done", 1, True), "remove", "release"]
    assert x.driver is None and x.registered is (call == "unbind")
    actions = [e.action for e in k.uevents if e.devpath == "/devices/platform/x0"]
    assert actions == ["add", "bind", "unbind"] + (["remove"] if call == "device_del" else [])


#: device adds and deletes racing the readers (it was 2 s of them: ~6,000 here, under load)
def test_try_module_get_and_module_put_are_atomic_against_each_other_and_rmmod():
    """try_module_get / module_put from several threads while another tries
    rmmod: no reference is lost, and rmmod never succeeds while one is held
    (the check and the going state are one step, as delete_module's
    try_stop_module)."""
    import sys
    import threading
    k = loaded(make_module("m", driver("foo", ("vsw,x",))))
    mod = k.module("m")
    held_when_gone, stop = [], threading.Event()

    def user():
        for _ in range(3000):
            try:
                mod.get()
            except KernelError:
                continue                            # not loaded at that moment
            if not mod.loaded or mod.state == "going":     # a reference on a module on its way out
                held_when_gone.append(mod.state)
            mod.put()

    def remover():
        while not stop.is_set():
            try:
                k.rmmod("m")
                k.insmod("m")
            except KernelError:
                pass                                # EBUSY: in use
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    users = [threading.Thread(target=user) for _ in range(3)]
    rm = threading.Thread(target=remover)
    try:
        for t in [*users, rm]:
            t.start()
        for t in users:
            t.join()
    finally:
        stop.set()
        rm.join()
        sys.setswitchinterval(old)
    assert mod.pins == 0 and held_when_gone == []


def test_state_synced_store_refuses_a_device_synced_already_with_einval():
    """state_synced_store: "1" on a device whose state is synced already
    (by the core or an earlier write) is EINVAL, and sync_state does not run again."""
    calls = []

    class Sup(Driver):
        name, of_match_table = "sup", ("vsw,s",)

        def probe(self, dev):
            pass

        def sync_state(self, dev):
            calls.append(dev.name)
    k = loaded(make_module("m", Sup))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    assert calls == ["s0"] and s.state_synced                   # no consumer: synced at bind
    with pytest.raises(KernelError) as e:
        k.sysfs.write("devices/platform/s0/state_synced", "1")
    assert e.value.errno == errno.EINVAL and calls == ["s0"]


def test_remove_nodes_keeps_a_group_not_wholly_inside_the_released_one():
    """devres_release_group over interleaved groups (A opens, B opens, A
    closes, B closes): remove_nodes releases A's span but keeps B's marks -
    B is not wholly inside it - so B can still be released (or closed)."""
    dev = Device("x0")
    order = []
    dev.devres_open_group("A")
    dev.devm_add_action(lambda: order.append("a"), "a")
    dev.devres_open_group("B")
    dev.devm_add_action(lambda: order.append("ab"), "ab")
    dev.devres_close_group("A")
    dev.devm_add_action(lambda: order.append("b"), "b")
    dev.devres_close_group("B")
    dev.devm_add_action(lambda: order.append("after"), "after")
    assert dev.devres_release_group("A") == 2 and order == ["ab", "a"]
    assert dev.devres_release_group("B") == 1 and order == ["ab", "a", "b"]
    assert dev.devres.names() == ["after"]
    dev.devres_open_group("C")                      # an open group inside: wholly in with its open mark
    dev.devm_add_action(lambda: order.append("c"), "c")
    dev.devres_open_group("D")
    dev.devm_add_action(lambda: order.append("d"), "d")
    assert dev.devres_release_group("C") == 2 and order[-2:] == ["d", "c"]
    with pytest.raises(KernelError) as e:
        dev.devres_release_group("D")
    assert e.value.errno == errno.ENOENT and dev.devres.names() == ["after"]


def test_driver_set_override_counts_the_page_in_bytes():
    """driver_set_override's bound is the write's length in bytes: a page of
    two-byte characters is EINVAL long before a page of characters."""
    import mmap
    k = kernel()
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    with pytest.raises(KernelError) as e:
        k.sysfs.write("devices/platform/x0/driver_override", "é" * (mmap.PAGESIZE // 2))
    assert e.value.errno == errno.EINVAL and dev.driver_override is None


@pytest.mark.parametrize("name", ["", None])
def test_kobject_add_internal_refuses_a_driver_without_a_name(name):
    """bus_add_driver's kobject_init_and_add: a driver with an empty name is
    EINVAL, and nothing is registered."""
    drv = driver("placeholder", ("vsw,x",))
    drv.name = name
    k = kernel()
    n = len(k.uevents)
    with pytest.raises(KernelError) as e:
        k.driver_register(drv())
    assert e.value.errno == errno.EINVAL and k.bus("platform").drivers == {} and len(k.uevents) == n


def test_device_links_unbind_consumers_waits_for_a_consumer_still_probing():
    """A supplier unbound while a consumer is probing (from inside that probe):
    device_links_unbind_consumers waits for the probe, then unbinds the
    consumer - it is never left bound with its required supplier unbound."""
    class Con(Driver):
        name, of_match_table = "con", ("vsw,c",)

        def probe(self, dev):
            self.kernel.unbind(self.kernel.device("s0"))
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), Con))
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s)
    k.probe(s)
    k.probe(c)
    assert s.driver is None and c.driver is None and links.link_of(c, s).status == "dormant"


def test_load_module_failure_reports_its_own_error_when_a_dependency_cannot_be_rolled_back():
    """A module whose init pins its dependency and then fails: insmod raises
    the init's error (not the dependency's EBUSY from the roll-back), the
    dependency stays loaded - pinned, as kmod leaves dependencies - with a
    warning, and everything else is rolled back."""
    dep = make_module("dep", driver("d1", ("vsw,y",)))
    top = make_module("top", driver("t1", ("vsw,x",)))
    top.MODULE_DEPENDS = ("dep",)

    def init_module(kernel):
        kernel.module("dep").get()
        raise KernelError(errno.ENOMEM, "init failed")
    top.init_module = init_module
    k = kernel(dep, top)
    with pytest.raises(KernelError) as e:
        k.insmod("top")
    assert e.value.errno == errno.ENOMEM and not k.module("top").loaded
    assert k.module("dep").loaded and k.module("dep").holders == []
    assert any("dep" in line.message and line.level == "warning" for line in k.dmesg)


def test_bus_notify_a_listener_that_raises_leaves_every_operation_whole():
    """A bus listener that raises (the api's vetoes an unbind it cannot save
    contexts for that way) never leaves a device half-way: on add_device or
    del_device the call is refused with nothing changed; bind_driver is a
    failed probe; bound_driver, unbound_driver and removed_device come after
    the fact - the operation completes, uevent included, and the error is
    logged.  (A raising del_device listener left the device dead but
    registered, never to be deleted; a raising add_device one left it on the
    bus unannounced; a raising unbound_driver one, without its uevent.)"""
    log = []
    k = loaded(make_module("m", driver("foo", ("vsw,x",), log=log)))
    failing = set()

    def listener(ev, d):
        if ev in failing:
            raise RuntimeError(f"listener bug at {ev}")
    k.notifier_register(listener)

    def actions():
        return [e.action for e in k.uevents if e.devpath == "/devices/platform/x0"]

    failing.add("add_device")
    dev = Device("x0", compatible=["vsw,x"])
    with pytest.raises(RuntimeError):
        k.device_add(dev)
    assert not dev.registered and "x0" not in k.bus("platform").devices and actions() == []
    failing.clear()
    failing.add("bind_driver")
    k.device_add(dev)
    assert dev.registered and dev.driver is None and "listener bug" in k.probe_errors["x0"]
    failing.clear()
    failing.add("bound_driver")
    assert k.probe(dev) is True
    assert dev.driver is not None and actions() == ["add", "bind"]
    failing.clear()
    failing.add("unbound_driver")
    k.unbind(dev)
    assert dev.driver is None and actions() == ["add", "bind", "unbind"]
    failing.clear()
    k.probe(dev)
    failing.add("del_device")
    with pytest.raises(RuntimeError):
        k.device_del(dev)
    assert dev.registered and not dev.dead and dev.driver is not None and k.device("x0") is dev
    failing.clear()
    failing.add("removed_device")
    k.device_del(dev)
    assert not dev.registered and dev.driver is None and "x0" not in k.bus("platform").devices
    assert actions()[-2:] == ["unbind", "remove"]
    assert sum("listener bug" in line.message for line in k.dmesg) == 4     # the failed probe, the three late ones


def test_an_unbind_vetoed_by_a_listener_puts_its_consumer_links_back():
    """A listener refusing a supplier's unbind (raising on unbind_driver, as
    the api does when it cannot save contexts) leaves the supplier bound and
    its consumer links available again - not stuck in "supplier unbinding",
    where its consumers could never probe again."""
    k = loaded(make_module("m", driver("sup", ("vsw,s",)), driver("con", ("vsw,c",))))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s)
    k.unbind(c)
    k.probe(c)
    assert links.link_of(c, s).status == "active"

    def veto(ev, d):
        if ev == "unbind_driver" and d is s:
            raise KernelError(errno.EBUSY, "contexts still in the store")
    off = k.notifier_register(veto)
    with pytest.raises(KernelError):
        k.unbind(s)
    off()
    assert s.driver is not None and c.driver is None                # the consumer went first, as Linux's would
    assert links.link_of(c, s).status == "available"
    assert k.probe(c) is True and links.link_of(c, s).status == "active"
