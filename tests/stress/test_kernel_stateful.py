"""A hypothesis state machine drives the driver core at random; its invariants
are the kernel's own (drivers/base): devices added and deleted bound or not,
with resources taken outside a probe; links added and deleted with every flag;
modules inserted and removed with their dependencies; parameters written as
text, good and bad.  Among them: a deleted device is never probed."""
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
from pyvswitch.schema import Param

pytestmark = pytest.mark.slow

NAMES = [f"d{i}" for i in range(6)] + ["gate"]
KINDS = ["vsw,x", "vsw,y", "vsw,w", "vsw,gate"]
#: Every device a driver probed once it had been deleted (must stay empty).
PROBED_DEAD: list = []
#: Every flag device_link_add takes, alone and in the pairs it takes or refuses.
F = links
LINK_FLAGS = [0, F.DL_FLAG_STATELESS, F.DL_FLAG_AUTOREMOVE_CONSUMER, F.DL_FLAG_AUTOREMOVE_SUPPLIER,
              F.DL_FLAG_AUTOPROBE_CONSUMER, F.DL_FLAG_SYNC_STATE_ONLY, F.DL_FLAG_PM_RUNTIME,
              F.DL_FLAG_PM_RUNTIME | F.DL_FLAG_RPM_ACTIVE, F.DL_FLAG_STATELESS | F.DL_FLAG_PM_RUNTIME,
              F.DL_FLAG_AUTOREMOVE_CONSUMER | F.DL_FLAG_AUTOREMOVE_SUPPLIER,
              F.DL_FLAG_STATELESS | F.DL_FLAG_AUTOREMOVE_CONSUMER,           # refused: EINVAL
              F.DL_FLAG_AUTOPROBE_CONSUMER | F.DL_FLAG_AUTOREMOVE_SUPPLIER,  # refused
              F.DL_FLAG_SYNC_STATE_ONLY | F.DL_FLAG_AUTOPROBE_CONSUMER, 1 << 9]
LEVEL = Param("level", int, 0, "", 0, 1000)


def _check_alive(dev):
    if dev.dead or dev.kernel is None:
        PROBED_DEAD.append(dev.name)


class X(Driver):
    """A device's ``in_probe`` resource makes its probe hostile: it deletes or
    unbinds its own device, or removes its own module, from inside."""
    name, of_match_table = "dx", ("vsw,x",)

    def probe(self, dev):
        _check_alive(dev)
        dev.devm_add_action(lambda: None, "x-res")
        what = dev.resources.get("in_probe")
        if what == "del":
            self.kernel.device_del(dev)
        elif what == "unbind":
            self.kernel.unbind(dev)
        elif what == "rmmod":
            try:
                self.kernel.rmmod("mx")
            except KernelError as e:
                assert e.errno == errno.EBUSY, e        # coming, or held by a module that depends on it


class Y(Driver):
    """Probes on the worker pool, and syncs its state once its consumers probed."""
    name, of_match_table = "dy", ("vsw,y",)
    probe_type = PROBE_PREFER_ASYNCHRONOUS
    synced: list = []       # (device, bound_seq, every tracked consumer bound then)

    def probe(self, dev):
        _check_alive(dev)
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
        _check_alive(dev)
        dev.devm_add_action(lambda: None, "w-res")
        gate = self.kernel.buses["platform"].devices.get("gate")
        if gate is None or gate.driver is None:
            raise ProbeDefer("waiting for the gate")


class Gate(Driver):
    name, of_match_table = "dgate", ("vsw,gate",)

    def probe(self, dev):
        _check_alive(dev)


MX = make_module("mx", X)
MX.MODULE_PARAMS = (ModuleParam("level", int, 0, 0o644, bounds=LEVEL),)
MODULES = {"mx": MX, "my": make_module("my", Y, depends=("mx",)), "mw": make_module("mw", W, depends=("my",)),
           "mgate": make_module("mgate", Gate)}


class DriverCore(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.k = Kernel(modules=MODULES.values(), use_entry_points=False)
        self.explicitly_unbound = set()
        self.binds_at_del = -1      # device_del triggers no deferred probe: the next bind does
        self.level = 0              # the last value written to mx's parameter
        self.deleted = []           # Device objects device_del removed
        self.outside = {}           # device name -> resources taken outside a probe, not yet released
        self.released = []          # names of those the core released
        Y.synced = []
        PROBED_DEAD.clear()

    def devices(self):
        return self.k.buses["platform"].devices

    def settle(self):
        """wait_for_device_probe, after every rule: the invariants look at a kernel at rest."""
        assert self.k.wait_for_device_probe(timeout=10)
        assert not self.k.async_probe.busy and not any(d.probing for d in self.devices().values())

    @rule(name=st.sampled_from(NAMES), kind=st.sampled_from(KINDS), supplier=st.sampled_from([None] + NAMES),
          flags=st.sampled_from(LINK_FLAGS))
    def add_device(self, name, kind, supplier, flags):
        if name in self.devices():
            return
        if name == "gate":
            kind = "vsw,gate"
        dev = self.k.device_add(Device(name, compatible=[kind]))
        if supplier and supplier in self.devices() and supplier != name:
            self.add_link(name, supplier, flags)
        self.settle()

    @rule(consumer=st.sampled_from(NAMES), supplier=st.sampled_from(NAMES), flags=st.sampled_from(LINK_FLAGS))
    def add_link(self, consumer, supplier, flags):
        devs = self.devices()
        if consumer not in devs or supplier not in devs:
            return
        c, s = devs[consumer], devs[supplier]
        had = links.link_of(c, s)
        kref = had.kref if had else 0
        try:
            link = self.k.device_link_add(c, s, flags)
        except KernelError as e:
            bad = (flags & ~links.FLAGS or (flags & links.DL_FLAG_STATELESS and flags & links.MANAGED_FLAGS)
                   or (flags & links.DL_FLAG_AUTOPROBE_CONSUMER and flags & (links.DL_FLAG_AUTOREMOVE_CONSUMER |
                                                                            links.DL_FLAG_AUTOREMOVE_SUPPLIER))
                   or (flags & links.DL_FLAG_SYNC_STATE_ONLY and flags != links.DL_FLAG_SYNC_STATE_ONLY))
            sso_late = flags == links.DL_FLAG_SYNC_STATE_ONLY and c.driver is not None
            assert (e.errno == errno.EINVAL and (bad or c is s or sso_late)) or e.errno == errno.ELOOP, e
            assert links.link_of(c, s) is had and (had is None or had.kref == kref)   # a refusal changes nothing
            return
        link = links.link_of(c, s)
        sso = had is not None and had.flags & links.DL_FLAG_SYNC_STATE_ONLY
        if sso and not flags & links.DL_FLAG_SYNC_STATE_ONLY:
            assert link.kref == kref and link.managed and not link.flags & links.DL_FLAG_SYNC_STATE_ONLY  # full now
        elif flags & links.DL_FLAG_STATELESS or (had is not None and not had.managed):
            assert link.kref == kref + 1                # each stateless add, and managed over stateless, a ref
        self.settle()

    @rule(consumer=st.sampled_from(NAMES), supplier=st.sampled_from(NAMES))
    def del_link(self, consumer, supplier):
        devs = self.devices()
        if consumer not in devs or supplier not in devs:
            return
        c, s = devs[consumer], devs[supplier]
        link = links.link_of(c, s)
        self.k.device_link_del(c, s)
        if link is None:
            return
        if link.flags & links.DL_FLAG_STATELESS:
            assert (links.link_of(c, s) is None) == (link.kref == 0)
        else:
            assert links.link_of(c, s) is link      # managed: the core's, not deleted while c is registered

    @rule(text=st.one_of(st.tuples(st.integers(-5, 1005), st.sampled_from(["{}", "{:#x}", "0{:o}", "+{}"])),
                         st.sampled_from(["\n", "1_0", "ten", " 5", "5 ", "0x", "09", "2147483648", "5\n"])))
    def set_module_parameter(self, text):
        """Through sysfs, as text: kstrtoint base 0, then the bounds; a refusal changes nothing."""
        if isinstance(text, tuple):
            value, fmt = text
            text = ("-" + fmt.format(-value)) if value < 0 and fmt != "+{}" else fmt.format(value)
            ok = 0 <= value <= 1000 and not (value < 0 and fmt == "+{}")
        else:
            value, ok = (5, True) if text == "5\n" else (None, False)
        if not self.k.module("mx").loaded:
            return
        try:
            self.k.sysfs.write("module/mx/parameters/level", text)
        except KernelError as e:
            assert not ok and e.errno in (errno.EINVAL, errno.ERANGE), (text, e)
            return
        assert ok, text
        self.level = value

    @rule(name=st.sampled_from(NAMES), n=st.integers(1, 2))
    def devres_outside_a_probe(self, name, n):
        """Resources on an unbound device (devm_add_action outside any probe)."""
        dev = self.devices().get(name)
        if dev is None or dev.driver is not None:
            return
        for i in range(n):
            tag = f"{name}-out{i}-{len(self.released)}-{self.outside.get(name, 0)}"
            dev.devm_add_action(lambda tag=tag: self.released.append(tag), tag)
            self.outside[name] = self.outside.get(name, 0) + 1

    @rule(name=st.sampled_from(NAMES))
    def release_outside_resources(self, name):
        dev = self.devices().get(name)
        if dev is None or dev.driver is not None:
            return
        before = len(self.released)
        dev.devres.release_all()
        assert len(self.released) - before == self.outside.pop(name, 0)

    @rule(name=st.sampled_from(NAMES[:-1]), what=st.sampled_from(["del", "unbind", "rmmod"]))
    def add_hostile_device(self, name, what):
        """A device whose probe deletes or unbinds it, or removes its driver's
        module: whatever the probe did waits for it to end, and takes effect then."""
        if name in self.devices():
            return
        dev = self.k.device_add(Device(name, compatible=["vsw,x"], resources={"in_probe": what}))
        self.settle()
        if not dev.registered:
            assert what == "del" and dev.driver is None and len(dev.devres) == 0
            self.deleted.append(dev)
            self.binds_at_del = self.k.binds
        elif what != "rmmod" or not self.k.module("mx").loaded:
            assert dev.driver is None

    @rule(name=st.sampled_from(NAMES))
    def remove_device(self, name):
        if name in self.devices():
            dev = self.devices()[name]
            before = len(self.released)
            self.k.device_del(dev)
            assert len(self.released) - before == self.outside.pop(name, 0)   # devres_release_all in device_del
            assert dev.driver is None and not dev.supplier_links and not dev.consumers and len(dev.devres) == 0
            self.deleted.append(dev)
            self.explicitly_unbound.discard(name)
            self.binds_at_del = self.k.binds

    @rule(i=st.integers(0, 50), drv=st.sampled_from(["dx", "dy", "dw", "dgate"]))
    def poke_a_deleted_device(self, i, drv):
        """Every way to probe a device that device_del removed: none binds it."""
        if not self.deleted:
            return
        dev = self.deleted[i % len(self.deleted)]
        assert self.k.probe(dev) is False
        if drv in self.k.buses["platform"].drivers:
            try:
                self.k.bind(dev, self.k.driver(drv))
                raise AssertionError(f"a deleted device {dev.name} bound")
            except KernelError as e:
                assert e.errno == errno.ENODEV
        assert dev.driver is None
    @rule(mod=st.sampled_from(sorted(MODULES)))
    def insmod(self, mod):
        was = {m: self.k.module(m).loaded for m in MODULES}
        try:
            self.k.insmod(mod)
        except KernelError as e:
            assert e.errno == errno.EEXIST and was[mod]     # a live module: init_module refuses
            return
        for dep in MODULES[mod].MODULE_DEPENDS:             # dependencies first
            assert self.k.module(dep).loaded

    @rule(mod=st.sampled_from(sorted(MODULES)))
    def rmmod(self, mod):
        holders = [m for m in MODULES if mod in MODULES[m].MODULE_DEPENDS and self.k.module(m).loaded]
        loaded = self.k.module(mod).loaded
        try:
            self.k.rmmod(mod.replace("_", "-"))
        except KernelError as e:
            # not loaded: ENOENT; held by a module that depends on it: EBUSY
            assert (e.errno == errno.ENOENT and not loaded) or (e.errno == errno.EBUSY and holders), e
            return
        assert loaded and not holders

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
            self.settle()
            # device_links_unbind_consumers: the consumers with an active link go first, the others stay
            active = [c for c in dev.consumers if links.link_of(c, dev).enforced and links.link_of(c, dev).state ==
                      links.ACTIVE]
            stay = [c for c in dev.consumers if c.driver is not None and c not in active and not any(
                links.required(c, s) and s is not dev for s in c.suppliers)]
            self.k.sysfs.write(f"bus/platform/drivers/{dev.driver.name}/unbind", name)
            self.explicitly_unbound.add(name)
            assert all(c.driver is None for c in active) and all(c.driver is not None for c in stay)

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
    def a_deleted_device_is_never_probed(self):
        self.settle()
        assert PROBED_DEAD == []
        for dev in self.deleted:
            assert dev.driver is None and dev not in self.k.deferred and not dev.registered

    @invariant()
    def only_resources_taken_outside_a_probe_stay_after_unbind(self):
        self.settle()
        for dev in self.devices().values():
            if dev.driver is None:
                assert len(dev.devres) == self.outside.get(dev.name, 0)

    @invariant()
    def link_states_follow_their_ends(self):
        """device_links_*: a managed link is dormant exactly while its supplier is
        unbound; active only with both bound; a stateless one is not tracked and
        holds a reference per add."""
        self.settle()
        for dev in self.devices().values():
            for sup, link in dev.supplier_links.items():
                assert sup.registered and dev in sup.consumers
                if not link.managed:
                    assert link.status == links.NONE and link.kref >= 1
                    continue
                assert (link.state == links.DORMANT) == (sup.driver is None), (link.name, link.state)
                if link.state == links.ACTIVE:
                    assert dev.driver is not None
                assert link.state in (links.DORMANT, links.AVAILABLE, links.ACTIVE)

    @invariant()
    def module_refcnt_counts_its_holders(self):
        for name in MODULES:
            mod = self.k.module(name)
            users = sorted(m for m in MODULES if name in MODULES[m].MODULE_DEPENDS and self.k.module(m).loaded)
            assert sorted(mod.holders) == users and mod.refcnt == mod.pins + len(users)
            if mod.loaded:
                assert self.k.sysfs.read(f"module/{name}/refcnt") == str(mod.refcnt)

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
