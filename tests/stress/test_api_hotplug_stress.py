"""Hot-unplug under load: unbinding and binding devices while other threads
switch, run and read registers loses nothing (issue: "nothing lost").

Every thread keeps a ledger of what succeeded; at the end each machine's state
must equal ``pyvswitch.replay`` of exactly the steps its successful runs made.
"""
from __future__ import annotations

import errno
import pathlib
import threading
import time
import warnings

import pytest

import pyvswitch
from pyvswitch import VswError
from pyvswitch.hw.stats import stats_c

pytestmark = pytest.mark.slow

from image_header import SIZE as HEADER  # the payload follows the image header
from locations import EXPLICIT  # every parameter written out

PAIRS = 100             # unbind/bind pairs: the lost-work bug showed within 100


class Worker(threading.Thread):
    """Switches two VMs on one PCPU and runs between switches, counting each
    machine's steps from the calls that returned success."""

    def __init__(self, hv: pyvswitch.Hypervisor, pcpu: int, a: pyvswitch.Machine, b: pyvswitch.Machine,
                 stop: threading.Event, allowed: tuple[int, ...] = ()) -> None:
        super().__init__(daemon=True)
        self.hv, self.pcpu, self.a, self.b, self.stop = hv, pcpu, a, b, stop
        self.allowed = allowed
        self.steps = {a.name: 0, b.name: 0}
        self.errors: list[BaseException] = []
        self.refused = 0
        self.on = a

    def run(self) -> None:
        hv, n = self.hv, 0
        while not self.stop.is_set() or n < 50:
            n += 1
            other = self.b if self.on is self.a else self.a
            try:
                hv.switch_context(self.on, other, pcpu=self.pcpu)
                self.on = other
            except VswError as exc:
                if exc.errno not in self.allowed:
                    self.errors.append(exc)
                self.refused += 1
            try:
                hv.run(3, pcpu=self.pcpu)
                self.steps[self.on.name] += 3
            except VswError as exc:
                if exc.errno not in self.allowed:
                    self.errors.append(exc)
                self.refused += 1
            except BaseException as exc:        # noqa: BLE001 - any other type breaks the contract
                self.errors.append(exc)


class Reader(threading.Thread):
    """Reads every machine's registers and snapshots while the others switch."""

    def __init__(self, hv: pyvswitch.Hypervisor, stop: threading.Event, allowed: tuple[int, ...] = ()) -> None:
        super().__init__(daemon=True)
        self.hv, self.stop, self.allowed = hv, stop, allowed
        self.errors: list[BaseException] = []
        self.reads = 0

    def run(self) -> None:
        vms = self.hv.vms
        while not self.stop.is_set():
            for m in vms:
                try:
                    m.regs["rip"]
                    m.snapshot()
                    m.pcpu
                    self.reads += 1
                except VswError as exc:
                    if exc.errno not in self.allowed:
                        self.errors.append(exc)
                except BaseException as exc:    # noqa: BLE001
                    self.errors.append(exc)


def _start(hv: pyvswitch.Hypervisor, allowed: tuple[int, ...] = ()) -> tuple[threading.Event, list[Worker], Reader]:
    stop = threading.Event()
    workers = []
    for i in (1, 2):
        a, b = hv.create_vm(f"a{i}"), hv.create_vm(f"b{i}")
        hv.switch_context(None, a, pcpu=i)
        workers.append(Worker(hv, i, a, b, stop, allowed))
    reader = Reader(hv, stop, allowed)
    for t in [*workers, reader]:
        t.start()
    return stop, workers, reader


def _finish(hv: pyvswitch.Hypervisor, stop: threading.Event, workers: list[Worker], reader: Reader) -> None:
    stop.set()
    for t in [*workers, reader]:
        t.join(60)
        assert not t.is_alive(), "a thread hung"
    for w in workers:
        assert not w.errors, w.errors[:3]
        # each PCPU runs what its thread last switched in; every successful step is there
        assert hv.running(w.pcpu) is w.on
        for m in (w.a, w.b):
            assert m.state() == pyvswitch.replay(w.steps[m.name], hv.layout), f"{m.name} lost or gained work"
    assert not reader.errors, reader.errors[:3]
    assert hv.running(0) is hv.host


@pytest.mark.parametrize("device,driver", [("mover0", "vsw-mover"), ("store0", "vsw-store"),
                                           ("sbus0", "vsw-sbus")])
def test_unbind_bind_of_an_invention_device_under_load_loses_nothing(device, driver):
    with pyvswitch.open("datacenter") as hv:
        stop, workers, reader = _start(hv)
        bus = "vsw-storage" if device == "store0" else "platform"
        paths = {"store"}
        for _ in range(PAIRS):
            hv.kernel.sysfs.write(f"bus/{bus}/drivers/{driver}/unbind", device)  # never fails because one raced
            paths.add(hv.path)
            hv.kernel.sysfs.write(f"bus/{bus}/drivers/{driver}/bind", device)
            if device == "sbus0":
                hv.kernel.sysfs.write("bus/vsw-storage/drivers/vsw-store/bind", "store0") \
                    if hv.kernel.device("store0").driver is None else None
            paths.add(hv.path)
        _finish(hv, stop, workers, reader)
        assert paths == {"store", "memory"} and hv.path == "store"
        assert len(hv.migrations) >= 2 * PAIRS and all(m.contexts == 5 for m in hv.migrations)


@pytest.mark.parametrize("device,driver", [("pcpu3", "vsw-pcpu"), ("mem0", "vsw-mem"),
                                           ("membus0", "vsw-membus")])
def test_unbind_bind_of_a_part_every_switch_needs_parks_and_comes_back(device, driver):
    """Without a PCPU, MEM or the memory bus there is no switch path: the contexts
    are parked and operations fail with ENODEV (changing nothing) until it binds."""
    with pyvswitch.open("datacenter") as hv:
        stop, workers, reader = _start(hv, allowed=(errno.ENODEV,))
        for _ in range(PAIRS // 4):
            seen = sum(w.refused for w in workers)
            hv.kernel.sysfs.write(f"bus/platform/drivers/{driver}/unbind", device)
            assert hv.path == "none"
            for _ in range(1000):                   # let the workers meet the parked window (bounded)
                if sum(w.refused for w in workers) > seen:
                    break
                time.sleep(0.001)
            with pytest.raises(VswError) as e:
                hv.run(1, pcpu=0)
            assert e.value.errno == errno.ENODEV and device in str(e.value)
            hv.kernel.sysfs.write(f"bus/platform/drivers/{driver}/bind", device)
            assert hv.path == "store"
        _finish(hv, stop, workers, reader)
        assert sum(w.refused for w in workers) > 0      # the parked windows were seen, and changed nothing


def test_register_access_never_reaches_another_machine():
    """Reading and writing a machine while another thread switches it in and out
    sees that machine's state, never the other's; the switch is never refused."""
    with pyvswitch.open("datacenter") as hv:
        a, b = hv.create_vm("a"), hv.create_vm("b")
        a.regs["rax"], b.regs["rax"] = 0xAAAA, 0xBBBB
        hv.switch_context(None, a, pcpu=1)
        stop = threading.Event()
        errors: list[BaseException] = []

        def switcher() -> None:
            on = a
            while not stop.is_set():
                try:
                    nxt = b if on is a else a
                    hv.switch_context(on, nxt, pcpu=1)
                    on = nxt
                except BaseException as exc:    # noqa: BLE001
                    errors.append(exc)
                    return

        t = threading.Thread(target=switcher, daemon=True)
        t.start()
        seen, written = set(), 0
        for i in range(3000):
            seen.add(a.regs["rax"])
            seen.add(b.regs["rax"])
            a.regs["rbx"] = written = i
            img = b.snapshot()
            off = hv.layout.field("rax").offset + HEADER
            seen.add(int.from_bytes(img[off:off + 8], "little") | 0x10000)
        stop.set()
        t.join(10)
        assert not errors, errors[:3]
        assert seen == {0xAAAA, 0xBBBB, 0x1BBBB}
        assert a.regs["rbx"] == written and b.regs["rbx"] == 0


def test_a_late_handle_is_refused_as_stale_never_let_into_a_gone_path():
    """A context handle a thread still holds when its path goes is refused by C
    (ESTALE) before it touches that path; the API then retries on the new one."""
    with pyvswitch.open() as hv:
        vm = hv.create_vm("vm")
        old = vm._c
        hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/unbind", "mover0")
        stats = pyvswitch.hw.SwitchStats()
        assert pyvswitch.hw.lib.vsw_switch(hv.pcpu(0).handle, hv.host._c, old, stats_c(stats)) == -errno.ESTALE
        assert stats.as_dict() == pyvswitch.hw.SwitchStats().as_dict()     # a refused switch writes nothing
        assert hv.switch_context(hv.host, vm).path == "memory"


def test_destroy_while_another_thread_switches_is_atomic():
    with pyvswitch.open("datacenter") as hv:
        vms = [hv.create_vm(f"v{i}") for i in range(4)]
        hv.switch_context(None, vms[0], pcpu=1)
        stop = threading.Event()
        errors: list[BaseException] = []

        def switcher() -> None:
            on, i = vms[0], 0
            while not stop.is_set():
                i += 1
                nxt = vms[i % 2]
                try:
                    hv.switch_context(on, nxt, pcpu=1)
                    on = nxt
                except VswError as exc:
                    if exc.errno != errno.EALREADY:
                        errors.append(exc)

        t = threading.Thread(target=switcher, daemon=True)
        t.start()
        busy = 0
        for _ in range(200):
            try:
                hv.destroy_vm(vms[0])
                break
            except VswError as exc:
                assert exc.errno == errno.EBUSY
                busy += 1
        stop.set()
        t.join(10)
        errors = [e for e in errors if not (e.errno == errno.ENOENT and "destroyed" in str(e))]
        assert not errors, errors[:3]


def test_open_strict_and_fallback_warning_name_each_device_and_why():
    base = EXPLICIT.read_text()
    cases = {
        "typo": (base.replace('compatible = ["vsw,mover"]', 'compatible = ["vsw,movr"]'),
                 "no matching module for vsw,movr (did you mean 'vsw,mover'?)"),
        "vendor": (base.replace("vendor = 0x5653", "vendor = 0x5654"), "did you mean '5653:0001'"),
        "threshold": (base.replace("write_threshold = 16", "write_threshold = 1"), "probe refused: vsw-mover: [E2BIG]"),
        "tiny store": (base.replace("capacity_bytes = 8388608", "capacity_bytes = 4096"),
                       "store0 (context-store): probe refused"),
    }
    for name, (text, why) in cases.items():
        assert text != base, name
        with pytest.raises(VswError) as e:
            pyvswitch.open(text, strict=True)
        assert e.value.errno == errno.ENODEV and why in str(e.value), (name, str(e.value))
        with pytest.warns(pyvswitch.FallbackWarning, match="memory path") as w:
            with pyvswitch.open(text) as hv:
                assert hv.path == "memory" and any(why in r for r in hv.fallback_reasons())
        assert why in str(w[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pyvswitch.open("no-mover", strict=True).close()     # never declared a mover: no warning
