"""A hypothesis state machine drives the driver core at random; its invariants
are the kernel's own (drivers/base)."""
import errno

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from kernel_fakes import make_module

from pyvswitch.kernel import (
    PROBE_PREFER_ASYNCHRONOUS,
    Device,
    Driver,
    Kernel,
    KernelError,
    ModuleParam,
    ProbeDefer,
    links,
)

pytestmark = pytest.mark.slow

NAMES = [f"d{i}" for i in range(6)] + ["gate"]
KINDS = ["vsw,x", "vsw,y", "vsw,w", "vsw,gate"]


class X(Driver):
    name, of_match_table = "dx", ("vsw,x",)

    def probe(self, dev):
        dev.devm_add_action(lambda: None, "x-res")


class Y(Driver):
    """Probes on the worker pool, and syncs its state once its consumers probed."""
    name, of_match_table = "dy", ("vsw,y",)
    probe_type = PROBE_PREFER_ASYNCHRONOUS
    synced: list = []       # (device, bound_seq, every tracked consumer bound then)

    def probe(self, dev):
        dev.devm_add_action(lambda: None, "y-res-1")
        dev.devm_add_action(lambda: None, "y-res-2")

    def sync_state(self, dev):
        ok = all(c.driver is not None for c in dev.consumers
                 if not c.supplier_links[dev].flags & links.DL_FLAG_STATELESS)
        Y.synced.append((dev.name, dev.bound_seq, ok))


class W(Driver):
    """Waits for the gate device to be bound, as a driver waits for a resource."""
    name, of_match_table = "dw", ("vsw,w",)

    def probe(self, dev):
        dev.devm_add_action(lambda: None, "w-res")
        gate = self.kernel.buses["platform"].devices.get("gate")
        if gate is None or gate.driver is None:
            raise ProbeDefer("waiting for the gate")


class Gate(Driver):
    name, of_match_table = "dgate", ("vsw,gate",)

    def probe(self, dev):
        pass


MX = make_module("mx", X)
MX.MODULE_PARAMS = (ModuleParam("level", int, 0, 0o644),)
MODULES = {"mx": MX, "my": make_module("my", Y), "mw": make_module("mw", W),
           "mgate": make_module("mgate", Gate)}


class DriverCore(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.k = Kernel(modules=MODULES.values(), use_entry_points=False)
        self.explicitly_unbound = set()
        self.binds_at_del = -1      # device_del triggers no deferred probe: the next bind does
        self.level = 0              # the last value written to mx's parameter
        Y.synced = []

    def devices(self):
        return self.k.buses["platform"].devices

    def settle(self):
        """wait_for_device_probe, after every rule: the invariants look at a kernel at rest."""
        assert self.k.wait_for_device_probe(timeout=10)
        assert not self.k.async_probe.busy and not any(d.probing for d in self.devices().values())

    @rule(name=st.sampled_from(NAMES), kind=st.sampled_from(KINDS), supplier=st.sampled_from([None] + NAMES),
          flags=st.sampled_from([0, links.DL_FLAG_AUTOPROBE_CONSUMER, links.DL_FLAG_STATELESS,
                                 links.DL_FLAG_AUTOREMOVE_CONSUMER]))
    def add_device(self, name, kind, supplier, flags):
        if name in self.devices():
            return
        if name == "gate":
            kind = "vsw,gate"
        dev = self.k.device_add(Device(name, compatible=[kind]))
        if supplier and supplier in self.devices() and supplier != name:
            try:
                self.k.device_link_add(dev, self.devices()[supplier], flags)
            except KernelError as e:
                assert e.errno == errno.ELOOP
        self.settle()

    @rule(level=st.integers(0, 1000))
    def set_module_parameter(self, level):
        if self.k.module("mx").loaded:
            self.k.sysfs.write("module/mx/parameters/level", str(level))
            self.level = level

    @rule(name=st.sampled_from(NAMES))
    def remove_device(self, name):
        if name in self.devices():
            self.k.device_del(self.devices()[name])
            self.explicitly_unbound.discard(name)
            self.binds_at_del = self.k.binds

    @rule(mod=st.sampled_from(sorted(MODULES)))
    def insmod(self, mod):
        self.k.insmod(mod)

    @rule(mod=st.sampled_from(sorted(MODULES)))
    def rmmod(self, mod):
        try:
            self.k.rmmod(mod)
        except KernelError as e:
            assert e.errno == errno.ENOENT       # not loaded; nothing pins these

    @rule(name=st.sampled_from(NAMES))
    def modprobe_device(self, name):
        if name in self.devices():
            try:
                self.k.modprobe(self.devices()[name].modalias)
            except KernelError as e:
                assert e.errno == errno.ENOENT

    @rule(name=st.sampled_from(NAMES), drv=st.sampled_from(["dx", "dy", "dw", "dgate"]))
    def sysfs_bind(self, name, drv):
        if drv not in self.k.buses["platform"].drivers:
            return
        try:
            self.k.sysfs.write(f"bus/platform/drivers/{drv}/bind", name)
            self.explicitly_unbound.discard(name)
        except OSError as e:
            # bind_store: no match ENODEV, bound EBUSY, a deferring probe EAGAIN (the fakes fail no other way)
            assert e.errno in (errno.ENODEV, errno.EBUSY, errno.EAGAIN)

    @rule(name=st.sampled_from(NAMES))
    def sysfs_unbind(self, name):
        dev = self.devices().get(name)
        if dev is not None and dev.driver is not None:
            self.k.sysfs.write(f"bus/platform/drivers/{dev.driver.name}/unbind", name)
            self.explicitly_unbound.add(name)

    @invariant()
    def module_parameters_keep_their_value_until_unloaded(self):
        self.settle()
        mod = self.k.module("mx")
        if mod.loaded:
            assert self.k.sysfs.read("module/mx/parameters/level") == str(self.level)
        else:
            self.level = 0                  # an unloaded module's next load starts from the default
            assert mod.values["level"] == 0

    @invariant()
    def sync_state_once_per_bind_and_after_all_consumers(self):
        self.settle()
        assert all(ok for _, _, ok in Y.synced), Y.synced
        per_bind = [(name, seq) for name, seq, _ in Y.synced]
        assert len(per_bind) == len(set(per_bind)), per_bind

    @invariant()
    def at_most_one_driver_and_it_matches(self):
        self.settle()
        bus = self.k.buses["platform"]
        for dev in bus.devices.values():
            owners = [d for d in bus.drivers.values() if dev in d.devices]
            assert len(owners) == (1 if dev.driver else 0)
            if dev.driver:
                assert bus.match(dev, dev.driver)
                # a consumer is never bound while a supplier it requires is not (a link added while it
                # was bound and its supplier was not is dormant: device_link_init_status)
                assert all(s.driver is not None for s in dev.suppliers if links.required(dev, s)), \
                    f"{dev.name} bound before a supplier"

    @invariant()
    def no_devres_left_after_unbind(self):
        self.settle()
        for dev in self.devices().values():
            if dev.driver is None:
                assert len(dev.devres) == 0

    @invariant()
    def seqnum_strictly_increases(self):
        self.settle()
        seq = [e.seqnum for e in self.k.uevents]
        assert all(a < b for a, b in zip(seq, seq[1:]))

    @invariant()
    def nothing_stays_deferred_once_what_it_waits_for_is_bound(self):
        self.settle()
        if self.binds_at_del == self.k.binds:
            return              # a device went since the last bind: Linux retries at the next bind, not now
        drivers = self.k.buses["platform"].drivers
        gate = self.devices().get("gate")
        for dev in self.k.deferred:
            suppliers_ok = all(s.driver is not None for s in dev.suppliers)
            kind = dev.compatible[0]
            drv = {"vsw,x": "dx", "vsw,y": "dy", "vsw,w": "dw", "vsw,gate": "dgate"}[kind]
            ready = kind != "vsw,w" or (gate is not None and gate.driver is not None)
            assert not (suppliers_ok and drv in drivers and ready), f"{dev.name} left deferred: {self.k.deferred[dev]}"


TestDriverCore = DriverCore.TestCase
TestDriverCore.settings = settings(max_examples=200, stateful_step_count=50)
