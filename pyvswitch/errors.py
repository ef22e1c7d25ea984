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
