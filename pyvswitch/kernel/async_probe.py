"""Asynchronous probing (drivers/base/dd.c with kernel/async.c): drivers that
prefer it are probed on a small worker pool, so bringing many devices up does
not wait on each slow probe in turn; ``wait_for_device_probe()`` waits until
no probe is queued or running.  And the deferred-probe timeout: once it has
passed, what is still deferred is reported ("deferred probe pending"), and
``deferred_probe_check_state`` tells drivers to stop waiting for optional
suppliers (-ETIMEDOUT instead of -EPROBE_DEFER).

Ordering is kept: an asynchronous probe takes the kernel's lock as every
probe does, checks its suppliers' links like any other, and defers the same
way; a sysfs bind or drivers_probe is always synchronous (as in Linux, only
the initial binding after a device or driver registers may be asynchronous).
"""
from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .errors import EPROBE_DEFER, KernelError

if TYPE_CHECKING:
    from .core import Kernel
    from .device import Device

PROBE_DEFAULT_STRATEGY = "default"
PROBE_PREFER_ASYNCHRONOUS = "prefer-asynchronous"
PROBE_FORCE_SYNCHRONOUS = "force-synchronous"
WORKERS = 2


class AsyncProbe:
    """The pool, what is queued or running on it, and the deferred-probe timeout."""

    def __init__(self, kernel: "Kernel", deferred_probe_timeout: float | None = None) -> None:
        self.kernel = kernel
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        self._idle = threading.Condition()
        self.timed_out = False
        self._timer: threading.Timer | None = None
        if deferred_probe_timeout is not None:
            if deferred_probe_timeout < 0:
                raise KernelError(errno.EINVAL, f"deferred_probe_timeout is seconds >= 0, got {deferred_probe_timeout}")
            self._timer = threading.Timer(deferred_probe_timeout, self._timeout)
            self._timer.daemon = True
            self._timer.start()

    def schedule(self, work: Callable[[], None]) -> None:
        """async_schedule_dev: runs ``work`` on the pool, under the kernel's lock."""
        with self._idle:
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="vsw-async-probe")
        self._pool.submit(self._run, work)

    def _run(self, work: Callable[[], None]) -> None:
        try:
            with self.kernel.lock:
                work()
        except Exception as exc:        # a probe's own errors are handled inside; this is a core bug
            self.kernel.printk("error", f"asynchronous probe failed: {type(exc).__name__}: {exc}")
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """wait_for_device_probe: until nothing is queued or running (False if
        ``timeout`` seconds passed first).  EDEADLK from a thread holding the
        kernel's lock: the probes it would wait for need that lock."""
        if self.kernel.lock._is_owned():    # type: ignore[attr-defined]  # RLock: held by this thread
            raise KernelError(errno.EDEADLK, "wait_for_device_probe: called with the kernel's lock held; "
                                             "the probes it waits for need it")
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def _timeout(self) -> None:
        """deferred_probe_timeout_work_func: report what still waits, and retry."""
        with self.kernel.lock:
            self.timed_out = True
            for dev, reason in list(self.kernel.deferred.items()):
                self.kernel.printk("info", f"{dev.name}: deferred probe pending: {reason}")
            self.kernel.trigger_deferred()

    def check_state(self, dev: "Device") -> int:
        """driver_deferred_probe_check_state: -EPROBE_DEFER while waiting still
        makes sense, -ETIMEDOUT once the timeout passed (go on without it)."""
        return -errno.ETIMEDOUT if self.timed_out else -EPROBE_DEFER

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
