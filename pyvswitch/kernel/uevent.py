"""Uevents: what the kernel tells userspace when devices come, go, bind and unbind."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("pyvswitch.kernel")


@dataclass(frozen=True)
class UEvent:
    """One uevent, with the environment the kernel would send (ACTION, DEVPATH,
    SUBSYSTEM, SEQNUM, and MODALIAS / DRIVER where they apply)."""

    action: str
    devpath: str
    subsystem: str
    seqnum: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def device(self) -> str:
        return self.devpath.rsplit("/", 1)[-1]

    def as_dict(self) -> dict[str, str]:
        return {"ACTION": self.action, "DEVPATH": self.devpath, "SUBSYSTEM": self.subsystem,
                "SEQNUM": str(self.seqnum), **self.env}


Subscriber = Callable[[UEvent], None]


class UEventBus:
    """History plus subscribers; SEQNUM strictly increases per kernel."""

    def __init__(self, keep: int = 100000) -> None:
        self.history: list[UEvent] = []
        self._subscribers: list[Subscriber] = []
        self._seqnum = 0
        self._keep = keep

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Calls ``callback`` for every later uevent; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)
        return unsubscribe

    def emit(self, action: str, devpath: str, subsystem: str, **env: str) -> UEvent:
        self._seqnum += 1
        ev = UEvent(action, devpath, subsystem, self._seqnum, {k: v for k, v in env.items() if v})
        self.history.append(ev)
        if len(self.history) > self._keep:
            del self.history[: len(self.history) - self._keep]
        for cb in list(self._subscribers):
            try:
                cb(ev)
            except Exception:  # a listener's bug must not break the kernel
                log.exception("uevent subscriber %r failed on %s %s", cb, action, devpath)
        return ev
