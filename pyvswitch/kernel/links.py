"""Device links (drivers/base/core.c): a consumer probes only after its
suppliers are bound and unbinds before them; cycles are refused."""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from .errors import KernelError

if TYPE_CHECKING:
    from .device import Device


def _reaches(start: "Device", target: "Device") -> bool:
    """Whether target is start or a supplier of start, transitively."""
    seen, todo = set(), [start]
    while todo:
        d = todo.pop()
        if d is target:
            return True
        if id(d) not in seen:
            seen.add(id(d))
            todo.extend(d.suppliers)
    return False


def link_add(consumer: "Device", supplier: "Device") -> None:
    if supplier in consumer.suppliers:
        return
    if _reaches(supplier, consumer):
        raise KernelError(errno.ELOOP, f"device link {consumer.name} -> {supplier.name} would close a cycle")
    consumer.suppliers.append(supplier)
    supplier.consumers.append(consumer)


def link_del(consumer: "Device", supplier: "Device") -> None:
    if supplier in consumer.suppliers:
        consumer.suppliers.remove(supplier)
        supplier.consumers.remove(consumer)
