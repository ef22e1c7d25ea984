"""pyvswitch's errors, for every layer: OSError subclasses carrying the errno a kernel
would return, and the checks that turn a C return code or a bad integer into one."""
from __future__ import annotations

import errno as _errno
import os


class VswError(OSError):
    """An operation of the emulated hardware failed.

    ``errno`` is what a kernel would return; the message says what was wrong
    and what was expected.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)

    def __str__(self) -> str:
        code = self.errno or 0
        return f"[{_errno.errorcode.get(code, code)}] {self.strerror}"


class UnknownName(VswError, KeyError):
    """A register, group, layout or device name that does not exist (ENOENT), or
    that is not a name at all (EINVAL: not a string).

    Also a KeyError, so mapping idioms (``in``, ``.get``) keep working.
    """

    def __init__(self, message: str, code: int = _errno.ENOENT) -> None:
        VswError.__init__(self, code, message)

    __str__ = VswError.__str__


def check_uint(v: object, what: str, bits: int = 32, minimum: int = 0) -> int:
    """An integer argument C takes as an unsigned ``bits``-bit value: EINVAL for
    anything else (``bool`` too) or below ``minimum``, ERANGE when it does not fit."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise VswError(_errno.EINVAL, f"{what} must be an integer, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise VswError(_errno.EINVAL, f"{what} must be >= {minimum}, got {v}")
    if v >= 1 << bits:
        raise VswError(_errno.ERANGE, f"{what} must be below 2**{bits}, got {v}")
    return v


def check(ret: int, what: str, explain: dict[int, str] | None = None) -> int:
    """Returns ``ret`` when it is >= 0; raises VswError for a -errno.

    ``explain`` maps errnos to the sentence that says, for this call, what was
    wrong and what was expected; others get the C library's text.
    """
    if ret >= 0:
        return ret
    code = -ret
    detail = (explain or {}).get(code) or os.strerror(code)
    raise VswError(code, f"{what}: {detail}")



#: What each errno means when pyvswitch raises it: the one statement of the errors table
#: (the documentation renders it; tests/unit/test_error_contract.py checks every key is an errno).
ERRNO_MEANINGS: dict[str, str] = {
    "ENOENT": "unknown layout, register, group, device, driver, module or platform (`UnknownName` is also "
              "a `KeyError`); a freed slot; a modalias no module matches",
    "EINVAL": "bad argument: zero sizes, a burst size that is not a positive multiple of 8, wrong value "
              "types (`bool` is not a count or an index), a PCPU index outside `0..npcpus-1`, a parameter "
              "beyond its bound",
    "ERANGE": "a value that does not fit its register; a count too large for C (`run(2**64)`); a slot "
              "number beyond the store",
    "EBADF": "anything on a closed `Hypervisor`",
    "EISDIR": "a platform path that is a directory",
    "ESTALE": "(C) a context handle from before a migration; the API retries on the new path",
    "EACCES": "a slot touched with another machine's id",
    "ENOSPC": "MEM is full (`create_vm`); no context in the store can make room (every one pinned or "
              "running); a store smaller than one slot",
    "E2BIG": "mover parameters that cannot keep N and M below the thresholds",
    "EBUSY": "the machine is loaded on another PCPU; `rmmod` of a module in use; binding a bound device",
    "ESRCH": "`frm` is not the machine running on the PCPU; no machine running",
    "EXDEV": "a context that lives behind the other path (migrate it first); a foreign-layout image",
    "EIO": "an injected mover or cache (fetch, write-back) fault; nothing changed",
    "EBADMSG": "a corrupt bank or an image whose CRC32C fails",
    "ENODATA": "a truncated image",
    "EMSGSIZE": "an image whose payload size does not match its layout",
    "ENOEXEC": "an image that is not a pyvswitch context image",
    "EPROTONOSUPPORT": "an image of a newer layout version than this pyvswitch reads",
    "ENODEV": "a driver that does not match the device; no switch path (a PCPU, MEM or the memory bus has "
              "no driver); `open(strict=True)` on a platform whose declared fast path did not come up",
    "EEXIST": "a machine, device, driver or bus name used twice",
    "ELOOP": "a device link that would close a cycle",
    "EPROBE_DEFER": "(517) `ProbeDefer`: a probe waits for something (a supplier, a DMA provider)",
}
