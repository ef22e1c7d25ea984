"""The kernel's device lists walked while threads add and delete devices (from
tests/unit/kernel/test_kernel_linux_more.py: a race needs thousands of adds with a
1 us switch interval to mean anything, seconds of CPU)."""
from __future__ import annotations

from effort import effort
from kernel_fakes import driver, make_module

from pyvswitch.errors import VswError
from pyvswitch.kernel import Device, Kernel


def loaded(*modules):
    k = Kernel(modules=modules, use_entry_points=False)
    for m in modules:
        k.insmod(m.MODULE_NAME)
    return k


WALK_RACE_ADDS = effort(20_000, 1_500)


def test_bus_for_each_dev_walks_are_safe_with_threads_adding_and_deleting():
    """The device lists (Kernel.devices, Driver.devices, k.device, a sysfs
    listing) are walked under the kernel's lock, as bus_for_each_dev walks the
    klist: a thread adding and deleting devices never breaks a reader."""
    import sys
    import threading
    k = loaded(make_module("m", driver("foo", ("vsw,x",))))
    errors, stop = [], threading.Event()

    def writer():
        try:
            for i in range(WALK_RACE_ADDS):
                if stop.is_set():
                    return
                try:
                    k.device_add(Device(f"x{i % 40}", compatible=["vsw,x"]))
                    k.device_del(k.device(f"x{(i * 7) % 40}"))
                except VswError:
                    pass                            # EEXIST / ENOENT: another name's turn
        finally:
            stop.set()

    def reader():
        while not stop.is_set():
            try:
                k.devices
                k.driver("foo").devices
                k.sysfs.ls("bus/platform/devices")
                k.device("x1")
            except VswError:
                pass
            except Exception as exc:                # RuntimeError: dictionary changed size during iteration
                errors.append(repr(exc))
                stop.set()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        threads[0].join()                           # the writer's adds and deletes, or a reader's failure
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(old)
    assert errors == []
