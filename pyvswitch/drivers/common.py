"""Helpers the drivers share: supplier lookup and managed hardware objects."""
from __future__ import annotations

from typing import Any, Protocol, TypeVar

from ..hw import Store
from ..kernel import Device, ProbeDefer, VswError
from ..kernel.links import DL_FLAG_AUTOPROBE_CONSUMER


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
    return dev.resources[key]


def store_of(dev: Device, what: str) -> Store:
    """The context slots a device holds (MEM and the context store alike): a
    Store of the platform's layout and the device's capacity, closed on unbind."""
    return devm_hw(dev, Store(param(dev, "layout"), param(dev, "capacity_bytes")), what)
