"""Driver-core errors: OSError subclasses with the errno the kernel would return."""
from __future__ import annotations

import errno

from ..errors import UnknownName, VswError

__all__ = ["KernelError", "ProbeDefer", "UnknownName", "VswError"]

EPROBE_DEFER = 517  # the kernel's internal errno for "try again later"


class KernelError(VswError):
    """A driver-core operation was refused."""


class ProbeDefer(KernelError):
    """Raised by a probe that needs something not there yet (EPROBE_DEFER).

    The device is parked on the deferred list with ``reason`` and tried again
    after every successful bind.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(EPROBE_DEFER, reason)
        self.reason = reason


def no_device(message: str) -> KernelError:
    """A probe's "not mine" answer (ENODEV): the next driver may try, silently."""
    return KernelError(errno.ENODEV, message)
