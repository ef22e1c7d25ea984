"""Device links (drivers/base/core.c): a consumer probes only after its
suppliers are bound and unbinds before them; cycles are refused.

Flags as Linux names them (include/linux/device.h).  STATELESS links are the
driver's own business: the core neither holds the consumer's probe nor
unbinds it for them.  AUTOPROBE_CONSUMER: once the supplier binds, the
consumer is queued to probe (again).  SYNC_STATE_ONLY links only hold the
supplier's sync_state, not probes.  AUTOREMOVE_CONSUMER / AUTOREMOVE_SUPPLIER:
the link goes when the consumer / the supplier unbinds.  PM_RUNTIME and
RPM_ACTIVE are accepted and mean nothing here (no runtime PM).

A managed link has a state, as Linux's enum device_link_state: DORMANT
(neither side needs the other now), AVAILABLE (the supplier is bound),
CONSUMER_PROBE (the consumer is probing), ACTIVE (both bound),
SUPPLIER_UNBIND (the supplier is unbinding).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import KernelError

if TYPE_CHECKING:
    from .device import Device

DL_FLAG_STATELESS = 1 << 0
DL_FLAG_AUTOREMOVE_CONSUMER = 1 << 1
DL_FLAG_PM_RUNTIME = 1 << 2
DL_FLAG_RPM_ACTIVE = 1 << 3
DL_FLAG_AUTOREMOVE_SUPPLIER = 1 << 4
DL_FLAG_AUTOPROBE_CONSUMER = 1 << 5
DL_FLAG_SYNC_STATE_ONLY = 1 << 7
FLAGS = (DL_FLAG_STATELESS | DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_PM_RUNTIME | DL_FLAG_RPM_ACTIVE |
         DL_FLAG_AUTOREMOVE_SUPPLIER | DL_FLAG_AUTOPROBE_CONSUMER | DL_FLAG_SYNC_STATE_ONLY)
FLAG_NAMES = {"stateless": DL_FLAG_STATELESS, "autoremove-consumer": DL_FLAG_AUTOREMOVE_CONSUMER,
              "autoremove-supplier": DL_FLAG_AUTOREMOVE_SUPPLIER, "autoprobe-consumer": DL_FLAG_AUTOPROBE_CONSUMER,
              "pm-runtime": DL_FLAG_PM_RUNTIME, "sync-state-only": DL_FLAG_SYNC_STATE_ONLY}

DORMANT, AVAILABLE, CONSUMER_PROBE, ACTIVE, SUPPLIER_UNBIND, NONE = (
    "dormant", "available", "consumer probing", "active", "supplier unbinding", "not tracked")


@dataclass(eq=False)
class DeviceLink:
    """One link: ``consumer`` depends on ``supplier``."""

    consumer: "Device"
    supplier: "Device"
    flags: int
    state: str = DORMANT

    @property
    def name(self) -> str:
        """As /sys/class/devlink names it: <bus>:<supplier>--<bus>:<consumer>."""
        return f"{self.supplier.bus_name}:{self.supplier.name}--{self.consumer.bus_name}:{self.consumer.name}"

    @property
    def managed(self) -> bool:
        """Whether the core holds the consumer's probe behind the supplier's bind."""
        return not self.flags & (DL_FLAG_STATELESS | DL_FLAG_SYNC_STATE_ONLY)

    @property
    def status(self) -> str:
        return NONE if self.flags & DL_FLAG_STATELESS else self.state

    @property
    def auto_remove_on(self) -> str:
        return ("consumer unbind" if self.flags & DL_FLAG_AUTOREMOVE_CONSUMER else
                "supplier unbind" if self.flags & DL_FLAG_AUTOREMOVE_SUPPLIER else "never")


def link_of(consumer: "Device", supplier: "Device") -> DeviceLink | None:
    return consumer.supplier_links.get(supplier)


def managed(consumer: "Device", supplier: "Device") -> bool:
    link = link_of(consumer, supplier)
    return link is not None and link.managed


def required(consumer: "Device", supplier: "Device") -> bool:
    """Whether the consumer may be bound only while the supplier is: a managed
    link that is not dormant (one added while the consumer was bound and the
    supplier was not)."""
    link = link_of(consumer, supplier)
    return link is not None and link.managed and link.state != DORMANT


def _depends_on(dev: "Device", target: "Device") -> bool:
    """device_is_dependent: whether ``dev`` is ``target`` or below it - a child,
    or a consumer, transitively."""
    seen, todo = set(), [target]
    while todo:
        d = todo.pop()
        if d is dev:
            return True
        if id(d) not in seen:
            seen.add(id(d))
            todo.extend(d.children)
            todo.extend(d.consumers)
    return False


def _check_flags(consumer: "Device", supplier: "Device", flags: int) -> None:
    autoremove = DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER
    if flags & ~FLAGS:
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: unknown flags {flags:#x}")
    if ((flags & DL_FLAG_STATELESS and flags & (autoremove | DL_FLAG_AUTOPROBE_CONSUMER)) or
            flags & autoremove == autoremove or (flags & DL_FLAG_AUTOPROBE_CONSUMER and flags & autoremove) or
            (flags & DL_FLAG_SYNC_STATE_ONLY and flags != DL_FLAG_SYNC_STATE_ONLY)):
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: flags {flags:#x} do not "
                                        "go together (device_link_add refuses them)")


def _init_state(consumer: "Device", supplier: "Device") -> str:
    """device_link_init_status, for devices that are bound or not (probes here
    are not observed halfway but for the consumer's own)."""
    if supplier.driver is None:
        return DORMANT
    if consumer.probing:
        return CONSUMER_PROBE
    return ACTIVE if consumer.driver is not None else AVAILABLE


def link_add(consumer: "Device", supplier: "Device", flags: int = 0) -> DeviceLink:
    """device_link_add: refused (EINVAL) for unknown flags or flags that do not
    go together, an unregistered supplier, and (ELOOP) a supplier that depends
    on the consumer (a child of it, or one of its consumers); a second link
    between the same devices adds its flags to the first (and a managed one
    makes a stateless link managed).  A link whose
    consumer is bound and supplier is not is dormant: the consumer stays bound."""
    _check_flags(consumer, supplier, flags)
    if consumer is supplier or not supplier.registered:
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: the supplier is not a "
                                        "registered device")
    link = link_of(consumer, supplier)
    if link is not None:
        if link.flags & DL_FLAG_STATELESS and not flags & DL_FLAG_STATELESS:
            link.flags &= ~DL_FLAG_STATELESS        # a managed request makes the link managed too
            link.state = _init_state(consumer, supplier)
        link.flags |= flags if link.flags & DL_FLAG_STATELESS else flags & ~DL_FLAG_STATELESS   # managed stays managed
        return link
    if _depends_on(supplier, consumer):
        raise KernelError(errno.ELOOP, f"device link {consumer.name} -> {supplier.name} would close a cycle "
                                       f"({supplier.name} depends on {consumer.name})")
    link = DeviceLink(consumer, supplier, flags, _init_state(consumer, supplier))
    consumer.suppliers.append(supplier)
    consumer.supplier_links[supplier] = link
    supplier.consumers.append(consumer)
    return link


def link_del(consumer: "Device", supplier: "Device") -> None:
    """device_link_del."""
    if consumer.supplier_links.pop(supplier, None) is not None:
        consumer.suppliers.remove(supplier)
        supplier.consumers.remove(consumer)


# --- state changes, as drivers/base/core.c's device_links_* make them ---------
def consumer_probing(dev: "Device") -> None:
    """device_links_check_suppliers passed: the consumer probes."""
    for link in dev.supplier_links.values():
        if link.managed and link.state == AVAILABLE:
            link.state = CONSUMER_PROBE


def driver_bound(dev: "Device") -> None:
    """device_links_driver_bound: as a consumer its links are active; as a
    supplier its links are available (active where the consumer is bound)."""
    for link in dev.supplier_links.values():
        if link.managed and link.state == CONSUMER_PROBE:
            link.state = ACTIVE
    for consumer in dev.consumers:
        link = consumer.supplier_links[dev]
        if link.managed and link.state == DORMANT:
            link.state = ACTIVE if consumer.driver is not None else AVAILABLE


def no_driver(dev: "Device") -> None:
    """device_links_no_driver: the consumer's probe failed or it unbound; links
    that go with the consumer's unbind go."""
    for supplier, link in list(dev.supplier_links.items()):
        if link.flags & DL_FLAG_AUTOREMOVE_CONSUMER:
            link_del(dev, supplier)
        elif link.managed:
            link.state = AVAILABLE if supplier.driver is not None else DORMANT


def supplier_unbinding(dev: "Device") -> None:
    """device_links_busy / unbind_consumers: the supplier is on its way out."""
    for consumer in dev.consumers:
        link = consumer.supplier_links[dev]
        if link.managed:
            link.state = SUPPLIER_UNBIND


def supplier_unbound(dev: "Device") -> None:
    """device_links_driver_cleanup: dormant again; links that go with the
    supplier's unbind go."""
    for consumer in list(dev.consumers):
        link = consumer.supplier_links[dev]
        if link.flags & DL_FLAG_AUTOREMOVE_SUPPLIER:
            link_del(consumer, dev)
        elif link.managed:
            link.state = DORMANT
