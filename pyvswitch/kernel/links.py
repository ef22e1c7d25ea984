"""Device links (drivers/base/core.c): a consumer probes only after its
suppliers are bound and unbinds before them; cycles are refused.

Flags as Linux names them (include/linux/device.h).  STATELESS links are the
driver's own business: the core neither holds the consumer's probe nor
unbinds it for them, and each device_link_add of one takes a reference that
device_link_del drops (the link goes with the last).  Any other link is
managed (DL_FLAG_MANAGED): the core deletes it - device_link_del leaves it
alone while its consumer is registered.  AUTOPROBE_CONSUMER: once the
supplier binds, the consumer is queued to probe (again).  SYNC_STATE_ONLY
links only hold the supplier's sync_state, not probes, and are dropped once
the consumer binds.  AUTOREMOVE_CONSUMER / AUTOREMOVE_SUPPLIER: the link
goes when the consumer / the supplier unbinds (both given: the supplier, the
longer lifetime).  PM_RUNTIME and RPM_ACTIVE are accepted and mean nothing
here (no runtime PM).

A managed link has a state, as Linux's enum device_link_state: DORMANT
(the supplier is not bound), AVAILABLE (the supplier is bound; a consumer
bound before the link came stays in this state), CONSUMER_PROBE (the
consumer is probing), ACTIVE (the consumer bound with the supplier there),
SUPPLIER_UNBIND (the supplier is unbinding).  Only ACTIVE consumers are
unbound when their supplier unbinds.
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
    """One link: ``consumer`` depends on ``supplier``.  ``managed`` is
    DL_FLAG_MANAGED; ``kref`` the references device_link_add took."""

    consumer: "Device"
    supplier: "Device"
    flags: int
    state: str = DORMANT
    managed: bool = True
    kref: int = 1

    @property
    def name(self) -> str:
        """As /sys/class/devlink names it: <bus>:<supplier>--<bus>:<consumer>."""
        return f"{self.supplier.bus_name}:{self.supplier.name}--{self.consumer.bus_name}:{self.consumer.name}"

    @property
    def enforced(self) -> bool:
        """Whether the core holds the consumer's probe behind the supplier's bind
        (managed, and not only for sync_state)."""
        return self.managed and not self.flags & DL_FLAG_SYNC_STATE_ONLY

    @property
    def status(self) -> str:
        """status_show."""
        return self.state if self.managed else NONE

    @property
    def auto_remove_on(self) -> str:
        """auto_remove_on_show."""
        return ("supplier unbind" if self.flags & DL_FLAG_AUTOREMOVE_SUPPLIER else
                "consumer unbind" if self.flags & DL_FLAG_AUTOREMOVE_CONSUMER else "never")


def link_of(consumer: "Device", supplier: "Device") -> DeviceLink | None:
    return consumer.supplier_links.get(supplier)


def managed(consumer: "Device", supplier: "Device") -> bool:
    """Whether a link holds the consumer's probe behind the supplier (see DeviceLink.enforced)."""
    link = link_of(consumer, supplier)
    return link is not None and link.enforced


def required(consumer: "Device", supplier: "Device") -> bool:
    """Whether the consumer may be bound only while the supplier is: an
    enforced link that is not dormant (a consumer bound while its supplier was
    not - its link added then - stays bound with a dormant link)."""
    link = link_of(consumer, supplier)
    return link is not None and link.enforced and link.state not in (DORMANT, NONE)


def _depends_on(dev: "Device", target: "Device") -> bool:
    """device_is_dependent: whether ``dev`` is ``target`` or below it - a child,
    or a consumer (but for sync-state-only links), transitively."""
    seen, todo = set(), [target]
    while todo:
        d = todo.pop()
        if d is dev:
            return True
        if id(d) not in seen:
            seen.add(id(d))
            todo.extend(d.children)
            todo.extend(c for c in d.consumers if not c.supplier_links[d].flags & DL_FLAG_SYNC_STATE_ONLY)
    return False


MANAGED_FLAGS = DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER | DL_FLAG_AUTOPROBE_CONSUMER | \
    DL_FLAG_SYNC_STATE_ONLY


def _check_flags(consumer: "Device", supplier: "Device", flags: int) -> None:
    """device_link_add's refusals: unknown flags, STATELESS with a managed-link
    flag, AUTOPROBE_CONSUMER with an AUTOREMOVE, SYNC_STATE_ONLY with anything."""
    autoremove = DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER
    if not isinstance(flags, int) or isinstance(flags, bool) or flags & ~FLAGS or flags < 0:
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: unknown flags {flags!r}")
    if ((flags & DL_FLAG_STATELESS and flags & MANAGED_FLAGS) or
            (flags & DL_FLAG_AUTOPROBE_CONSUMER and flags & autoremove) or
            (flags & DL_FLAG_SYNC_STATE_ONLY and flags != DL_FLAG_SYNC_STATE_ONLY)):
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: flags {flags:#x} do not "
                                        "go together (device_link_add refuses them)")


def _dev_status(dev: "Device") -> str:
    """dev->links.status: probing, bound, unbinding or no driver."""
    if dev.probing:
        return "probing"
    if getattr(dev, "unbinding", False):
        return "unbinding"
    return "bound" if dev.driver is not None else "no driver"


def _init_state(consumer: "Device", supplier: "Device") -> str:
    """device_link_init_status."""
    sup, con = _dev_status(supplier), _dev_status(consumer)
    if sup == "probing":
        return CONSUMER_PROBE if con == "probing" else DORMANT
    if sup == "bound":
        return CONSUMER_PROBE if con == "probing" else ACTIVE if con == "bound" else AVAILABLE
    if sup == "unbinding":
        return SUPPLIER_UNBIND
    return DORMANT


def link_add(consumer: "Device", supplier: "Device", flags: int = 0) -> DeviceLink:
    """device_link_add: refused (EINVAL) for unknown flags or flags that do not
    go together, an unregistered supplier or a sync-state-only link to a
    consumer that has probed; (ELOOP) a supplier that depends on the consumer.
    A second add of the same link turns a sync-state-only link into a full
    managed one and does nothing else (whatever the new flags, STATELESS
    too); otherwise it takes a reference if stateless, makes it managed if
    it was not, and keeps the longer of the two lifetimes."""
    _check_flags(consumer, supplier, flags)
    if consumer is supplier or not supplier.registered or supplier.dead:
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: the supplier is not a "
                                        "registered device")
    if not flags & DL_FLAG_SYNC_STATE_ONLY and _depends_on(supplier, consumer):
        raise KernelError(errno.ELOOP, f"device link {consumer.name} -> {supplier.name} would close a cycle "
                                       f"({supplier.name} depends on {consumer.name})")
    if flags & DL_FLAG_SYNC_STATE_ONLY and _dev_status(consumer) not in ("no driver", "probing"):
        raise KernelError(errno.EINVAL, f"device link {consumer.name} -> {supplier.name}: a sync-state-only link "
                                        "is useless once the consumer has probed")
    if flags & DL_FLAG_AUTOREMOVE_SUPPLIER:
        flags &= ~DL_FLAG_AUTOREMOVE_CONSUMER
    link = link_of(consumer, supplier)
    if link is not None:
        if link.flags & DL_FLAG_SYNC_STATE_ONLY and not flags & DL_FLAG_SYNC_STATE_ONLY:
            link.flags &= ~DL_FLAG_SYNC_STATE_ONLY      # a full managed link now, and nothing else changes
            return link
        if flags & DL_FLAG_PM_RUNTIME:
            link.flags |= DL_FLAG_PM_RUNTIME
        if flags & DL_FLAG_STATELESS:
            link.kref += 1
            link.flags |= DL_FLAG_STATELESS
            return link
        if flags & DL_FLAG_AUTOREMOVE_SUPPLIER:     # the longer lifetime wins
            if link.flags & DL_FLAG_AUTOREMOVE_CONSUMER:
                link.flags = link.flags & ~DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER
        elif not flags & DL_FLAG_AUTOREMOVE_CONSUMER:
            link.flags &= ~(DL_FLAG_AUTOREMOVE_CONSUMER | DL_FLAG_AUTOREMOVE_SUPPLIER)
        if not link.managed:
            link.kref += 1
            link.managed = True
            link.flags |= flags & MANAGED_FLAGS
            link.state = _init_state(consumer, supplier)
        return link
    managed_link = not flags & DL_FLAG_STATELESS
    link = DeviceLink(consumer, supplier, flags, _init_state(consumer, supplier) if managed_link else NONE,
                      managed_link)
    consumer.suppliers.append(supplier)
    consumer.supplier_links[supplier] = link
    supplier.consumers.append(consumer)
    return link


def _del(link: DeviceLink) -> None:
    """__device_link_del."""
    consumer, supplier = link.consumer, link.supplier
    if consumer.supplier_links.get(supplier) is link:
        del consumer.supplier_links[supplier]
        consumer.suppliers.remove(supplier)
        supplier.consumers.remove(consumer)


def _put(link: DeviceLink) -> None:
    link.kref -= 1
    if link.kref <= 0:
        _del(link)


def drop_managed(link: DeviceLink) -> None:
    """device_link_drop_managed: no longer managed; its reference dropped."""
    link.managed = False
    link.state = NONE
    _put(link)


def link_put(consumer: "Device", supplier: "Device") -> str | None:
    """device_link_del / device_link_remove (device_link_put_kref): a stateless
    link loses a reference; a managed one goes only if its consumer is not
    registered - otherwise nothing changes and the warning is returned."""
    link = link_of(consumer, supplier)
    if link is None:
        return None
    if link.flags & DL_FLAG_STATELESS:
        _put(link)
    elif not consumer.registered:
        _del(link)
    else:
        return f"device link {link.name}: unable to drop a managed device link reference"
    return None


def purge(dev: "Device") -> None:
    """device_links_purge: every link of a device that is going, to and from it."""
    for link in reversed(list(dev.supplier_links.values())):
        _del(link)
    for consumer in reversed(list(dev.consumers)):
        _del(consumer.supplier_links[dev])


# --- state changes, as drivers/base/core.c's device_links_* make them ---------
def check_suppliers(dev: "Device") -> list[str]:
    """device_links_check_suppliers: the suppliers an enforced link waits for
    (not AVAILABLE); none: every managed link goes to CONSUMER_PROBE."""
    waiting = [s.name for s, link in dev.supplier_links.items() if link.enforced and link.state != AVAILABLE]
    if not waiting:
        for link in dev.supplier_links.values():
            if link.managed:
                link.state = CONSUMER_PROBE
    return waiting


def driver_bound(dev: "Device") -> list["Device"]:
    """device_links_driver_bound: as a supplier, its dormant links become
    AVAILABLE (even where the consumer is bound already: it bound without the
    link); as a consumer, its sync-state-only links are dropped and the rest
    become ACTIVE.  Returns the consumers to queue for probing
    (AUTOPROBE_CONSUMER) - and the suppliers whose sync_state is due are the
    caller's: taken before this call."""
    queue = []
    for consumer in dev.consumers:
        link = consumer.supplier_links[dev]
        if not link.managed or link.state in (CONSUMER_PROBE, ACTIVE):
            continue
        link.state = AVAILABLE
        if link.flags & DL_FLAG_AUTOPROBE_CONSUMER:
            queue.append(consumer)
    for link in list(dev.supplier_links.values()):
        if not link.managed:
            continue
        if link.flags & DL_FLAG_SYNC_STATE_ONLY:
            drop_managed(link)
        else:
            link.state = ACTIVE
    return queue


def _no_driver(dev: "Device") -> None:
    """__device_links_no_driver: links that go with the consumer's unbind go;
    the rest that were probing or active are AVAILABLE again (DORMANT while
    the supplier is unbound)."""
    for link in reversed(list(dev.supplier_links.values())):
        if not link.managed:
            continue
        if link.flags & DL_FLAG_AUTOREMOVE_CONSUMER:
            drop_managed(link)
            continue
        if link.state not in (CONSUMER_PROBE, ACTIVE):
            continue
        link.state = AVAILABLE if _dev_status(link.supplier) == "bound" else DORMANT


def no_driver(dev: "Device") -> None:
    """device_links_no_driver (a probe failed): links consumers added while it
    probed are dormant; then its own supplier links as above."""
    for consumer in dev.consumers:
        link = consumer.supplier_links[dev]
        if link.managed and link.state in (CONSUMER_PROBE, ACTIVE):
            link.state = DORMANT
    _no_driver(dev)


def busy(dev: "Device") -> list["Device"]:
    """device_links_busy + device_links_unbind_consumers: every enforced link
    to a consumer goes to SUPPLIER_UNBIND; returns the consumers that were
    ACTIVE - those alone are unbound before the supplier.  A consumer still
    probing (this unbind comes from inside its probe) is unbound once its
    probe ends, as Linux waits for it."""
    active = []
    for consumer in dev.consumers:
        link = consumer.supplier_links[dev]
        if not link.enforced:
            continue
        if link.state == ACTIVE:
            active.append(consumer)
        elif link.state == CONSUMER_PROBE and consumer.probing:
            consumer.waiting.add("unbind")      # it waits for the probe, then unbinds the consumer
        link.state = SUPPLIER_UNBIND
    return active


def unbind_refused(dev: "Device") -> None:
    """The unbind ``busy`` began did not happen (a notifier listener refused
    it): the links it moved to SUPPLIER_UNBIND are AVAILABLE again."""
    for consumer in dev.consumers:
        link = consumer.supplier_links[dev]
        if link.managed and link.state == SUPPLIER_UNBIND:
            link.state = AVAILABLE


def driver_cleanup(dev: "Device") -> None:
    """device_links_driver_cleanup (after the unbind): links to consumers go
    DORMANT, those that go with the supplier's unbind go; then its own
    supplier links as after any unbind."""
    for consumer in list(dev.consumers):
        link = consumer.supplier_links[dev]
        if not link.managed:
            continue
        if link.state == SUPPLIER_UNBIND and link.flags & DL_FLAG_AUTOREMOVE_SUPPLIER:
            drop_managed(link)
        link.state = DORMANT if link.managed else NONE
    _no_driver(dev)
