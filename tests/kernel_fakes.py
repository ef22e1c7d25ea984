"""Fake driver modules for driver-core tests: drivers that record what happens."""
from __future__ import annotations

import errno
import types

from pyvswitch.kernel import DeviceId, Driver, KernelError, ProbeDefer


def make_module(name: str, *drivers: type[Driver], depends: tuple[str, ...] = ()) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.MODULE_NAME = name
    mod.DRIVERS = drivers
    mod.MODULE_DEPENDS = depends
    return mod


def driver(name: str, compatible: tuple[str, ...] = (), ids: tuple[DeviceId, ...] = (), bus: str = "platform",
           outcome: str = "bind", log: list | None = None, resources: int = 0) -> type[Driver]:
    """A driver class whose probe does ``outcome``: bind, defer, enodev, enxio, fail or crash,
    taking ``resources`` devres entries first; every call is appended to ``log``."""
    record = log if log is not None else []

    class Fake(Driver):
        of_match_table = compatible
        id_table = ids

        def probe(self, dev):
            record.append(("probe", self.name, dev.name))
            for i in range(resources):
                dev.devm_add_action(lambda i=i: record.append(("release", self.name, dev.name, i)), f"res{i}")
            mode = dev.resources.get("force_outcome", outcome)
            if mode == "defer":
                raise ProbeDefer(f"{self.name} waits")
            if mode == "enodev":
                raise KernelError(errno.ENODEV, "not mine")
            if mode == "enxio":
                raise KernelError(errno.ENXIO, "not mine either")
            if mode == "fail":
                raise KernelError(errno.EIO, "hardware said no")
            if mode == "crash":
                raise RuntimeError("driver bug")
            dev.driver_data = self.name

        def remove(self, dev):
            record.append(("remove", self.name, dev.name))

    Fake.name = name
    Fake.bus = bus
    Fake.__name__ = f"Fake_{name}"
    return Fake
