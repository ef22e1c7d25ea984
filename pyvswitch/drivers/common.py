"""Helpers the drivers share: supplier lookup and managed hardware objects."""
from __future__ import annotations

import errno
import math
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..hw import Store
from ..kernel import Device, KernelError, ProbeDefer, VswError
from ..kernel.links import DL_FLAG_AUTOPROBE_CONSUMER
from ..kernel.module import ModuleParam
from ..schema import KINDS as SCHEMA
from ..schema import Param


class Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=Closable)


def require_suppliers(dev: Device, names: list[str] | tuple[str, ...]) -> list[Device]:
    """The named supplier devices, bound, each linked to ``dev`` (so they
    unbind after it, and it probes again when they come back:
    DL_FLAG_AUTOPROBE_CONSUMER); ProbeDefer while one is absent or unbound."""
    assert dev.kernel is not None
    found = []
    for name in names:
        try:
            sup = dev.kernel.device(name)
        except VswError:
            raise ProbeDefer(f"waiting for {name} to appear") from None
        if sup.driver is None:
            raise ProbeDefer(f"waiting for supplier {name}")
        dev.kernel.device_link_add(dev, sup, DL_FLAG_AUTOPROBE_CONSUMER)   # back when the supplier is
        found.append(sup)
    return found


def devm_hw(dev: Device, obj: T, what: str) -> T:
    """Hands a hardware model's lifetime to the device: closed when the driver unbinds."""
    dev.devm_add_action(obj.close, f"{what} {dev.name}")
    return obj


def param(dev: Device, key: str) -> Any:
    """A parameter of the device, as a driver reads it: the device's own property
    when the platform sets it (it describes this device), else the driver
    module's parameter (modprobe vsw_mover max_burst=4096: the default for every
    device it drives), else the schema's default - the more specific wins, as a
    driver that reads a device property and falls back to its module_param."""
    if key in dev.resources.get("given", ()):
        return dev.resources[key]
    mod = dev.driver.module if dev.driver is not None else None
    if mod is not None and key in mod.params:
        return mod.values[key]
    return dev.resources[key]


@dataclass(frozen=True)
class SchemaParam(ModuleParam):
    """A module parameter that stands for a schema parameter: a value outside the
    schema's bounds (type, range, multiple, choices) is refused when it is given -
    by modprobe or a sysfs write - with EINVAL, as a platform file's would be, and
    the parameter keeps its value."""

    bounds: Param | None = None

    def parse(self, module: str, text: object) -> object:
        if self.bounds is not None and self.bounds.type is float and not isinstance(text, (int, float)):
            try:
                value: object = float(str(text).strip())
            except ValueError:
                value = text
        else:
            value = super().parse(module, text)
        if self.bounds is not None and not (self.bounds.accepts(value) and (
                not isinstance(value, float) or math.isfinite(value))):
            raise KernelError(errno.EINVAL, f"module {module}: parameter {self.name} is {self.bounds.expected()}, "
                                            f"got {str(text)[:40]!r}")
        return value


def module_params(kind: str, *names: str) -> tuple[ModuleParam, ...]:
    """The module parameters of a driver for ``kind``: these of the kind's
    schema parameters, writable (0644: a new value applies from the next probe),
    bounded as the schema bounds them."""
    k = SCHEMA[kind]
    return tuple(SchemaParam(n, k.param(n).type, k.param(n).default, 0o644, k.param(n).source, k.param(n))
                 for n in names)


def store_of(dev: Device, what: str) -> Store:
    """The context slots a device holds (MEM and the context store alike): a
    Store of the platform's layout and the device's capacity, closed on unbind."""
    return devm_hw(dev, Store(param(dev, "layout"), param(dev, "capacity_bytes")), what)
