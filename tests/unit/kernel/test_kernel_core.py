"""The driver core follows Linux's drivers/base, rule by rule."""
import errno

import pytest
from kernel_fakes import driver, make_module

from pyvswitch.kernel import Device, DeviceId, IdBus, Kernel, KernelError
from pyvswitch.kernel.links import DL_FLAG_AUTOPROBE_CONSUMER


def kernel(*mods):
    return Kernel(modules=mods, use_entry_points=False)


def test_add_sends_the_add_uevent_before_probing():
    log = []
    k = kernel(make_module("m", driver("foo", ("vsw,foo",), log=log)))
    k.insmod("m")
    seen = []
    k.subscribe(lambda ev: seen.append((ev.action, len(log))))
    k.device_add(Device("foo0", compatible=["vsw,foo"]))
    assert seen == [("add", 0), ("bind", 1)]
    add = k.uevents[-2]
    assert add.env["MODALIAS"] == "of:Nfoo0T<NULL>Cvsw,foo" and add.subsystem == "platform"
    assert add.devpath == "/devices/platform/foo0" and k.uevents[-1].env["DRIVER"] == "foo"


def test_registering_a_driver_attaches_it_to_existing_devices_in_order():
    log = []
    k = kernel(make_module("a", driver("first", ("vsw,x",), log=log)), make_module("b", driver("second", ("vsw,x",), log=log)))
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert dev.driver is None
    k.insmod("b")
    k.insmod("a")
    assert dev.driver.name == "second"      # registered first, bound first
    other = k.device_add(Device("x1", compatible=["vsw,x"]))
    assert other.driver.name == "second"    # tried in registration order


def test_probe_outcomes():
    log = []
    k = kernel(make_module("m", driver("nodev", ("vsw,x",), outcome="enodev", log=log),
                           driver("nxio", ("vsw,x",), outcome="enxio", log=log),
                           driver("broken", ("vsw,x",), outcome="fail", log=log),
                           driver("buggy", ("vsw,x",), outcome="crash", log=log),
                           driver("good", ("vsw,x",), log=log)))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert dev.driver.name == "good"
    assert [e[1] for e in log if e[0] == "probe"] == ["nodev", "nxio", "broken", "buggy", "good"]
    messages = " ".join(line.message for line in k.dmesg)
    assert "broken failed with error 5" in messages and "buggy raised RuntimeError" in messages
    assert "nodev" not in messages and "nxio" not in messages   # "not mine" is silent


def test_defer_parks_the_device_with_a_reason_and_retries_after_each_bind():
    log = []
    k = kernel(make_module("m", driver("waiter", ("vsw,w",), outcome="defer", log=log)),
               make_module("n", driver("other", ("vsw,o",), log=log)))
    k.insmod("m")
    w = k.device_add(Device("w0", compatible=["vsw,w"]))
    assert w.driver is None and k.deferred[w] == "waiter: waiter waits"
    assert "w0\twaiter: waiter waits" in k.sysfs.read("kernel/debug/devices_deferred")
    w.resources["force_outcome"] = "bind"
    k.insmod("n")
    k.device_add(Device("o0", compatible=["vsw,o"]))      # a successful bind retries the deferred
    assert w.driver is not None and w not in k.deferred
    assert [e[2] for e in log if e[0] == "probe"].count("w0") == 2


def test_devres_released_lifo_on_probe_failure_and_on_unbind():
    log = []
    k = kernel(make_module("m", driver("bad", ("vsw,x",), outcome="fail", resources=3, log=log),
                           driver("good", ("vsw,x",), resources=2, log=log)))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert [e[3] for e in log if e[0] == "release" and e[1] == "bad"] == [2, 1, 0]
    assert len(dev.devres) == 2
    k.unbind(dev)
    assert [e for e in log if e[1] == "good" and e[0] in ("remove", "release")] == [
        ("remove", "good", "x0"), ("release", "good", "x0", 1), ("release", "good", "x0", 0)]
    assert len(dev.devres) == 0 and dev.driver is None and dev.driver_data is None


def test_device_links_order_probe_and_unbind_and_refuse_cycles():
    log = []
    k = kernel(make_module("m", driver("sup", ("vsw,s",), log=log), driver("con", ("vsw,c",), log=log)))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s, DL_FLAG_AUTOPROBE_CONSUMER)
    with pytest.raises(KernelError) as e:
        k.device_link_add(s, c)
    assert e.value.errno == errno.ELOOP
    k.insmod("m")       # registers sup then con; con waits for sup if it comes first
    assert s.driver and c.driver
    log.clear()
    k.unbind(s)
    assert [x[:3] for x in log if x[0] == "remove"] == [("remove", "con", "c0"), ("remove", "sup", "s0")]
    assert c.driver is None and c not in k.deferred     # not queued while its supplier is away
    k.bind(s, k.driver("sup"))
    assert c.driver is not None          # came back with its supplier: DL_FLAG_AUTOPROBE_CONSUMER


def test_consumer_waits_for_its_supplier():
    k = kernel(make_module("m", driver("con", ("vsw,c",))), make_module("n", driver("sup", ("vsw,s",))))
    s = k.device_add(Device("s0", compatible=["vsw,s"]))
    c = k.device_add(Device("c0", compatible=["vsw,c"]))
    k.device_link_add(c, s)
    k.insmod("m")
    assert c.driver is None and k.deferred[c] == "waiting for supplier s0"
    k.insmod("n")
    assert s.driver is not None and c.driver is not None


def test_drivers_autoprobe_and_explicit_probe():
    k = kernel(make_module("m", driver("foo", ("vsw,foo",))))
    k.insmod("m")
    k.sysfs.write("bus/platform/drivers_autoprobe", "0")
    dev = k.device_add(Device("foo0", compatible=["vsw,foo"]))
    assert dev.driver is None and k.sysfs.read("bus/platform/drivers_autoprobe") == "0"
    k.sysfs.write("bus/platform/drivers_probe", "foo0")
    assert dev.driver is not None
    k.sysfs.write("bus/platform/drivers_autoprobe", "yes")       # drivers_autoprobe_store: not '0' is 1
    assert k.sysfs.read("bus/platform/drivers_autoprobe") == "1"


def test_sysfs_bind_unbind_and_driver_override():
    k = kernel(make_module("m", driver("a", ("vsw,x",)), driver("b", ("vsw,x",))))
    k.insmod("m")
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    base = "bus/platform/devices/x0"
    assert k.sysfs.readlink(f"{base}/driver") == "bus/platform/drivers/a"
    assert k.sysfs.read(f"{base}/modalias") == "of:Nx0T<NULL>Cvsw,x"
    assert "DRIVER=a" in k.sysfs.read(f"{base}/uevent") and "MODALIAS=of:Nx0T<NULL>Cvsw,x" in k.sysfs.read(f"{base}/uevent")
    with pytest.raises(KernelError) as e:
        k.sysfs.write("bus/platform/drivers/b/bind", "x0")
    assert e.value.errno == errno.EBUSY
    k.sysfs.write("bus/platform/drivers/a/unbind", "x0")
    with pytest.raises(KernelError) as e:
        k.sysfs.readlink(f"{base}/driver")
    assert e.value.errno == errno.EINVAL
    k.sysfs.write(f"{base}/driver_override", "b")
    assert k.sysfs.read(f"{base}/driver_override") == "b"
    with pytest.raises(KernelError) as e:
        k.sysfs.write("bus/platform/drivers/a/bind", "x0")   # override allows only b
    assert e.value.errno == errno.ENODEV
    k.sysfs.write("bus/platform/drivers/b/bind", "x0")
    assert dev.driver.name == "b"
    with pytest.raises(KernelError) as e:
        k.sysfs.write("bus/platform/drivers/a/unbind", "x0")
    assert e.value.errno == errno.ENODEV
    for path, code in (("bus/nope/x", errno.ENOENT), (f"{base}/modalias", errno.EACCES)):
        with pytest.raises(KernelError) as e:
            k.sysfs.write(path, "1")
        assert e.value.errno == code
    with pytest.raises(KernelError) as e:
        k.sysfs.read("bus/platform/drivers/a/bind")
    assert e.value.errno == errno.EACCES
    assert "bus/platform/drivers/a/bind" in k.sysfs.tree()
    assert k.sysfs.ls("bus/platform") == ["devices", "drivers", "drivers_autoprobe", "drivers_probe"]


def test_uevent_file_write_synthesizes_an_event():
    k = kernel()
    k.device_add(Device("x0", compatible=["vsw,x"]))
    k.sysfs.write("bus/platform/devices/x0/uevent", "change")
    assert k.uevents[-1].action == "change"
    with pytest.raises(KernelError):
        k.sysfs.write("bus/platform/devices/x0/uevent", "explode")


def test_modprobe_loads_every_match_and_rmmod_respects_use():
    k = kernel(make_module("base", driver("b", ("vsw,x",))),
               make_module("extra", driver("e", ("vsw,y",)), depends=("base",)),
               make_module("also", driver("x2", ("vsw,x",))))
    assert sorted(k.modprobe("of:NzT<NULL>Cvsw,x")) == ["also", "base"]
    with pytest.raises(KernelError) as e:
        k.modprobe("of:NzT<NULL>Cvsw,unknown")
    assert e.value.errno == errno.ENOENT
    k.insmod("extra")
    with pytest.raises(KernelError) as e:
        k.rmmod("base")
    assert e.value.errno == errno.EBUSY and "extra" in str(e.value)
    mod = k.module("also")
    mod.get()
    with pytest.raises(KernelError) as e:
        k.rmmod("also")
    assert e.value.errno == errno.EBUSY
    assert k.sysfs.read("module/also/refcnt") == "1"
    mod.put()
    dev = k.device_add(Device("x0", compatible=["vsw,x"]))
    assert dev.driver.name == "b"
    k.rmmod("extra")
    k.rmmod("base")                         # unloading unbinds its devices
    assert dev.driver is None and dev not in k.deferred
    k.sysfs.write("bus/platform/drivers_probe", "x0")   # as in Linux, a probe finds the next driver
    assert dev.driver.name == "x2"
    with pytest.raises(KernelError) as e:
        k.rmmod("base")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(KernelError) as e:
        k.insmod("../../etc/passwd")       # names are looked up, never imported
    assert e.value.errno == errno.ENOENT


def test_id_bus_matching_and_aliases():
    k = kernel(make_module("idm", driver("idd", ids=(DeviceId(0x5653, 0x0001),), bus="vsw-storage")))
    with pytest.raises(KernelError) as e:
        k.insmod("idm")                  # driver_register: the bus type is not there yet
    assert e.value.errno == errno.EINVAL and not k.module("idm").loaded
    k.bus_register(IdBus("vsw-storage"))
    k.insmod("idm")
    dev = k.device_add(Device("s0", "vsw-storage", vendor=0x5653, device=0x0001))
    other = k.device_add(Device("s1", "vsw-storage", vendor=0x5653, device=0x0002))
    assert dev.modalias == "vsw:v00005653d00000001" and dev.driver is not None and other.driver is None
    assert k.modules.lookup("vsw:v00005653d00000001")[0].name == "idm"
    assert k.sysfs.read("bus/vsw-storage/devices/s0/vendor") == "0x00005653"


def test_seqnum_strictly_increases_and_kernels_are_independent():
    k1, k2 = kernel(), kernel()
    for i in range(5):
        k1.device_add(Device(f"d{i}", compatible=["vsw,x"]))
    k2.device_add(Device("d0", compatible=["vsw,x"]))
    seq = [e.seqnum for e in k1.uevents]
    assert seq == sorted(set(seq)) and k2.uevents[0].seqnum == 1
    assert "d1" not in k2.buses["platform"].devices


def test_duplicate_names_and_unknown_buses_are_refused():
    k = kernel()
    k.device_add(Device("d0", compatible=["vsw,x"]))
    with pytest.raises(KernelError) as e:
        k.device_add(Device("d0", compatible=["vsw,x"]))
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        k.device_add(Device("d1", "nobus"))
    assert e.value.errno == errno.ENOENT


def test_bind_defer_is_reported_to_the_caller():
    """device_driver_attach: a probe that defers is EAGAIN to the caller."""
    k = kernel(make_module("m", driver("w", ("vsw,w",), outcome="defer")))
    k.insmod("m")
    dev = k.device_add(Device("w0", compatible=["vsw,w"]))
    with pytest.raises(KernelError) as e:
        k.bind(dev, k.driver("w"))
    assert e.value.errno == errno.EAGAIN
