"""A dmaengine-shaped framework (drivers/dma/dmaengine.c): providers register
DMA devices with channels; clients request a channel, prepare a descriptor,
submit it for a cookie, issue pending work and poll completion.

A held channel pins its provider's module (rmmod refuses with EBUSY).  When a
provider goes away its channels are revoked and each client's callback runs
before the provider's resources are released.
"""
from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import KernelError, ProbeDefer

if TYPE_CHECKING:
    from .device import Device

COMPLETE, IN_PROGRESS, ERROR = "complete", "in_progress", "error"


@dataclass
class Descriptor:
    """A prepared transfer; ``run`` does it and returns its result."""

    run: Callable[[], Any]
    cookie: int = 0
    status: str = IN_PROGRESS
    result: Any = None
    error: BaseException | None = None


@dataclass
class Channel:
    """One channel of a DMA device, held by at most one client."""

    provider: "DmaDevice"
    index: int
    client: str | None = None
    on_revoke: Callable[["Channel"], None] | None = None
    _cookie: int = 0
    _queue: list[Descriptor] = field(default_factory=list)
    _done: dict[int, Descriptor] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.provider.name}chan{self.index}"

    @property
    def context(self) -> Any:
        """What the provider exposes to the client (the mover: its C path)."""
        return self.provider.context

    def _check(self) -> None:
        if self.client is None:
            raise KernelError(errno.ENODEV, f"channel {self.name} is released or revoked")

    def prep(self, run: Callable[[], Any]) -> Descriptor:
        self._check()
        return Descriptor(run)

    def submit(self, desc: Descriptor) -> int:
        """Queues the descriptor; returns its cookie (increasing per channel)."""
        self._check()
        self._cookie += 1
        desc.cookie = self._cookie
        self._queue.append(desc)
        return desc.cookie

    def issue_pending(self) -> None:
        """Starts the queued descriptors, in order."""
        self._check()
        queue, self._queue = self._queue, []
        for desc in queue:
            try:
                desc.result = desc.run()
                desc.status = COMPLETE
            except Exception as exc:  # the error is the transfer's status
                desc.status, desc.error = ERROR, exc
            self._done[desc.cookie] = desc
            if len(self._done) > 1024:
                self._done.pop(next(iter(self._done)))

    def status(self, cookie: int) -> str:
        """complete, in_progress (submitted, not issued) or error."""
        if cookie in self._done:
            return self._done[cookie].status
        if any(d.cookie == cookie for d in self._queue):
            return IN_PROGRESS
        raise KernelError(errno.EINVAL, f"channel {self.name}: unknown cookie {cookie}")

    def result(self, cookie: int) -> Any:
        desc = self._done.get(cookie)
        if desc is None:
            raise KernelError(errno.EINVAL, f"channel {self.name}: cookie {cookie} is not complete")
        if desc.error is not None:
            raise desc.error
        return desc.result

    def release(self) -> None:
        """dma_release_channel(): unpins the provider's module."""
        if self.client is None:
            return
        self.client = None
        self.on_revoke = None
        if self.provider.dev.driver is not None and self.provider.dev.driver.module is not None:
            self.provider.dev.driver.module.put()


class DmaDevice:
    """A provider: a device whose driver offers channels for a purpose (``cap``)."""

    def __init__(self, dev: "Device", cap: str, channels: int = 1, context: Any = None) -> None:
        self.dev, self.cap, self.context = dev, cap, context
        self.name = dev.name
        self.channels = [Channel(self, i) for i in range(channels)]


class DmaEngine:
    """The per-kernel registry of DMA devices."""

    def __init__(self) -> None:
        self.devices: list[DmaDevice] = []

    def register(self, dma: DmaDevice) -> None:
        self.devices.append(dma)

    def unregister(self, dma: DmaDevice) -> None:
        """Revokes the device's channels (clients hear first), then forgets it."""
        for chan in dma.channels:
            if chan.client is not None:
                cb = chan.on_revoke
                chan.release()
                if cb is not None:
                    cb(chan)
        if dma in self.devices:
            self.devices.remove(dma)

    def request_channel(self, cap: str, client: str, on_revoke: Callable[[Channel], None] | None = None) -> Channel:
        """dma_request_chan(): a free channel for ``cap``; ProbeDefer while no provider offers one."""
        providers = [d for d in self.devices if d.cap == cap]
        if not providers:
            raise ProbeDefer(f"no DMA provider for {cap!r} yet")
        for dma in providers:
            for chan in dma.channels:
                if chan.client is None:
                    drv = dma.dev.driver
                    if drv is not None and drv.module is not None:
                        drv.module.get()
                    chan.client, chan.on_revoke = client, on_revoke
                    return chan
        raise KernelError(errno.EBUSY, f"every {cap!r} channel is in use")
