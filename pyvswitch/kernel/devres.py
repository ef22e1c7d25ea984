"""devres: resources a probe takes are released LIFO when the probe fails or
the driver unbinds, so a driver cannot leak them."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("pyvswitch.kernel")


@dataclass
class Devres:
    name: str
    release: Callable[[], None]


class DevresList:
    """The managed resources of one device."""

    def __init__(self) -> None:
        self._items: list[Devres] = []

    def add(self, name: str, release: Callable[[], None]) -> None:
        self._items.append(Devres(name, release))

    def release_all(self) -> list[str]:
        """Releases every resource, newest first; returns their names in that order."""
        released = []
        while self._items:
            res = self._items.pop()
            try:
                res.release()
            except Exception:
                log.exception("devres %s: release failed", res.name)
            released.append(res.name)
        return released

    def names(self) -> list[str]:
        return [r.name for r in self._items]

    def __len__(self) -> int:
        return len(self._items)
