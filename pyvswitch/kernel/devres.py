"""devres (drivers/base/devres.c): resources a device holds are released LIFO
when its probe fails, when its driver unbinds, and when it is deleted (taken
outside a probe too); and a device that holds any before a probe is refused
(EBUSY: "Resources present before probing").  Groups as Linux has them:
``open_group`` marks where one starts, ``close_group`` where it ends,
``release_group`` releases what is inside (newest first), ``remove_group``
drops the marks and keeps the resources.
"""
from __future__ import annotations

import errno
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import KernelError

log = logging.getLogger("pyvswitch.kernel")
_group_ids = itertools.count(1)


@dataclass
class Devres:
    name: str
    release: Callable[[], None]


@dataclass(eq=False)
class _Mark:
    """A group's open (``close`` False) or close mark."""

    gid: object
    close: bool


class DevresList:
    """The managed resources of one device, with group marks between them."""

    def __init__(self) -> None:
        self._items: list[Devres | _Mark] = []
        self._lock = threading.Lock()

    def add(self, name: str, release: Callable[[], None]) -> None:
        with self._lock:
            self._items.append(Devres(name, release))

    @staticmethod
    def _run(taken: list[Devres]) -> list[str]:
        """release_nodes: newest first; a failing release is logged, the rest still run."""
        released = []
        for res in reversed(taken):
            try:
                res.release()
            except Exception:
                log.exception("devres %s: release failed", res.name)
            released.append(res.name)
        return released

    def release_all(self) -> list[str]:
        """devres_release_all: every resource, newest first, the group marks
        dropped; returns the resources' names in that order."""
        with self._lock:
            taken = [r for r in self._items if isinstance(r, Devres)]
            self._items = []
        return self._run(taken)

    # --- groups --------------------------------------------------------------
    def _find_open(self, gid: object) -> int | None:
        """find_group: the newest group with that id, or (``gid`` None) the newest still open."""
        closed = {m.gid for m in self._items if isinstance(m, _Mark) and m.close}
        for i in range(len(self._items) - 1, -1, -1):
            m = self._items[i]
            if isinstance(m, _Mark) and not m.close and (m.gid == gid if gid is not None else m.gid not in closed):
                return i
        return None

    def open_group(self, gid: object = None) -> object:
        """devres_open_group: a new group (id ``gid``, or a fresh one); returns its id."""
        gid = gid if gid is not None else f"group{next(_group_ids)}"
        with self._lock:
            self._items.append(_Mark(gid, False))
        return gid

    def close_group(self, gid: object = None) -> None:
        """devres_close_group: the group (the newest open one for None) ends here; ENOENT if there is none."""
        with self._lock:
            i = self._find_open(gid)
            if i is None:
                raise KernelError(errno.ENOENT, f"devres: no open group {gid!r}")
            m = self._items[i]
            assert isinstance(m, _Mark)
            self._items.append(_Mark(m.gid, True))

    def _span(self, gid: object) -> tuple[int, int]:
        i = self._find_open(gid)
        if i is None:
            raise KernelError(errno.ENOENT, f"devres: no group {gid!r}")
        m = self._items[i]
        assert isinstance(m, _Mark)
        end = next((j for j in range(i + 1, len(self._items))
                    if isinstance(self._items[j], _Mark) and self._items[j].gid == m.gid and self._items[j].close),
                   None)
        return i, (len(self._items) - 1 if end is None else end)

    def remove_group(self, gid: object = None) -> None:
        """devres_remove_group: the group's marks go, its resources stay (in the enclosing one)."""
        with self._lock:
            i, end = self._span(gid)
            close = self._items[end]
            if isinstance(close, _Mark) and close.close and end != i and close.gid == self._items[i].gid:  # type: ignore[union-attr]
                del self._items[end]
            del self._items[i]

    def release_group(self, gid: object = None) -> int:
        """devres_release_group: releases the resources from the group's open
        mark to its close mark (to the end while it is open), nested groups
        included, newest first; returns how many.  ENOENT for no such group.
        A group that only overlaps the span keeps its marks (remove_nodes)."""
        with self._lock:
            i, end = self._span(gid)
            span = self._items[i:end + 1]
            self._items[i:end + 1] = [m for m in span if isinstance(m, _Mark) and not self._wholly_in(m.gid, span)]
        return len(self._run([r for r in span if isinstance(r, Devres)]))

    def _wholly_in(self, gid: object, span: list[Devres | _Mark]) -> bool:
        """remove_nodes' colouring: a group goes with a released span only when
        wholly inside it - both marks of a closed group, the open mark of an
        open one; the marks of any other group stay where they are."""
        def has(items: list[Devres | _Mark], close: bool) -> bool:
            return any(isinstance(m, _Mark) and m.close is close and m.gid == gid for m in items)
        return has(span, False) and (has(span, True) or not has(self._items, True))

    def names(self) -> list[str]:
        return [r.name for r in self._items if isinstance(r, Devres)]

    def __len__(self) -> int:
        return len(self.names())
