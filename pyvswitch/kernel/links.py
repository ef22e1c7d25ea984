"""Device links (drivers/base/core.c): a consumer probes only after its
suppliers are bound and unbinds before them; cycles are refused.

Flags as Linux names them (include/linux/device.h); a link's flags live on
its consumer (``link_flags[supplier]``).  STATELESS links are the driver's own
business: the core neither holds the consumer's probe nor unbinds it for
them.  AUTOPROBE_CONSUMER: once the supplier binds, the consumer is queued to
probe (again).  SYNC_STATE_ONLY links only order sync_state, not probes.
AUTOREMOVE_CONSUMER / AUTOREMOVE_SUPPLIER: the link goes when the consumer /
supplier unbinds.  PM_RUNTIME is accepted and means nothing here.
"""
from __future__ import annotations

import errno
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


def required(consumer: "Device", supplier: "Device") -> bool:
    """Whether the consumer may be bound only while the supplier is: a managed
    link that was not dormant when the consumer bound."""
    return managed(consumer, supplier) and supplier not in consumer.dormant


def managed(consumer: "Device", supplier: "Device") -> bool:
    """Whether the core keeps the consumer's probe behind the supplier's bind."""
    return not consumer.link_flags.get(supplier, 0) & (DL_FLAG_STATELESS | DL_FLAG_SYNC_STATE_ONLY)


def link_add(consumer: "Device", supplier: "Device", flags: int = 0) -> None:
    """device_link_add: refused (EINVAL) for an unknown flag, an unregistered
    supplier, a supplier that depends on the consumer (a child of it, or one of
    its consumers: a cycle); a second link between the same devices adds its
    flags to the first.  A link whose consumer is bound and supplier is not is
    dormant: the consumer stays bound."""
    if flags & ~FLAGS:
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: unknown flags {flags:#x}")
    autoremove = DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER
    if ((flags & DL_FLAG_STATELESS and flags & (autoremove | DL_FLAG_AUTOPROBE_CONSUMER)) or
            flags & autoremove == autoremove or (flags & DL_FLAG_AUTOPROBE_CONSUMER and flags & autoremove) or
            (flags & DL_FLAG_SYNC_STATE_ONLY and flags != DL_FLAG_SYNC_STATE_ONLY)):
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: flags {flags:#x} do not "
                                        "go together (device_link_add refuses them)")
    if consumer is supplier or not supplier.registered:
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: the supplier is not a "
                                        "registered device")
    if supplier in consumer.suppliers:
        consumer.link_flags[supplier] |= flags
        return
    if _depends_on(supplier, consumer):
        raise KernelError(errno.ELOOP, f"device link {consumer.name} -> {supplier.name} would close a cycle "
                                       f"({supplier.name} depends on {consumer.name})")
    consumer.suppliers.append(supplier)
    consumer.link_flags[supplier] = flags
    supplier.consumers.append(consumer)
    if consumer.driver is not None and supplier.driver is None:
        consumer.dormant.add(supplier)      # DL_STATE_DORMANT: until one of them (re)binds


def link_del(consumer: "Device", supplier: "Device") -> None:
    """device_link_del."""
    if supplier in consumer.suppliers:
        consumer.suppliers.remove(supplier)
        consumer.link_flags.pop(supplier, None)
        consumer.dormant.discard(supplier)
        supplier.consumers.remove(consumer)
