"""Module parameters as the kernel parses them (kernel/params.c over lib/kstrtox.c).

``kstrtobool``, ``kstrtoull``/``kstrtoll`` and the fixed-width ``kstrto*`` with
their ranges (base 0: ``0x`` hexadecimal, a leading ``0`` octal), the
``param_set_*`` of each type (``charp`` up to 1024 bytes of UTF-8, ``bool`` with no
value meaning "1"), ``param_array`` (comma-separated, at least one and at most
``max`` elements), ``param_get_*`` for sysfs (``Y``/``N`` for bools), and
``VERIFY_OCTAL_PERMISSIONS`` for a parameter's mode.

Errors are those the kernel returns: EINVAL for what does not parse, ERANGE for
a number that does not fit its type, ENOSPC for a string that is too long.
"""
from __future__ import annotations

import errno
import string

from .errors import KernelError

#: param_set_charp: longer strings are refused (ENOSPC).
CHARP_MAX = 1024

#: module_param types: (minimum, maximum) of the C type behind each.
INT_TYPES: dict[str, tuple[int, int]] = {
    "byte": (0, (1 << 8) - 1), "short": (-(1 << 15), (1 << 15) - 1), "ushort": (0, (1 << 16) - 1),
    "int": (-(1 << 31), (1 << 31) - 1), "uint": (0, (1 << 32) - 1),
    "long": (-(1 << 63), (1 << 63) - 1), "ulong": (0, (1 << 64) - 1),
    "llong": (-(1 << 63), (1 << 63) - 1), "ullong": (0, (1 << 64) - 1),
}
TYPES = (*INT_TYPES, "bool", "invbool", "charp")


def _einval(what: str) -> KernelError:
    return KernelError(errno.EINVAL, what)


def kstrtobool(s: str) -> bool:
    """lib/kstrtox.c: y/Y/1 true, n/N/0 false, on/ON true, of/OF false - by the
    first one or two characters only; anything else (an empty string too) EINVAL."""
    if not isinstance(s, str) or not s:
        raise _einval(f"kstrtobool: {s!r} is not a boolean; expected y/n, 1/0 or on/off")
    c = s[0]
    if c in "yY1":
        return True
    if c in "nN0":
        return False
    if c in "oO" and len(s) > 1:
        if s[1] in "nN":
            return True
        if s[1] in "fF":
            return False
    raise _einval(f"kstrtobool: {s!r} is not a boolean; expected y/n, 1/0 or on/off")


def _fixup_radix(s: str, base: int) -> tuple[str, int]:
    """_parse_integer_fixup_radix: base 0 is 16 after "0x" followed by a hex digit, 8 after "0", else 10."""
    if base == 0:
        if s[:1] == "0":
            base = 16 if s[1:2] in ("x", "X") and s[2:3] != "" and s[2] in string.hexdigits else 8
        else:
            base = 10
    if base == 16 and s[:1] == "0" and s[1:2] in ("x", "X"):
        s = s[2:]
    return s, base


def _kstrtoull(s: str, base: int) -> int:
    """_kstrtoull: digits of the base, then at most one newline; no digits or
    anything after them EINVAL, more than 64 bits ERANGE."""
    orig = s
    s, base = _fixup_radix(s, base)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    n = 0
    while n < len(s) and s[n].lower() in digits:
        n += 1
    rest = s[n:]
    if rest[:1] == "\n":
        rest = rest[1:]
    if n == 0 or rest:
        raise _einval(f"{orig!r} is not a base-{base} number")
    value = int(s[:n], base)
    if value >= 1 << 64:
        raise KernelError(errno.ERANGE, f"{orig!r} does not fit in 64 bits")
    return value


def kstrtoull(s: str, base: int = 0) -> int:
    """kstrtoull: an optional "+", then _kstrtoull."""
    if not isinstance(s, str):
        raise _einval(f"{s!r} is not text")
    return _kstrtoull(s[1:] if s[:1] == "+" else s, base)


def kstrtoll(s: str, base: int = 0) -> int:
    """kstrtoll: a "-" negates; the result must fit in a signed 64 bits (ERANGE)."""
    if not isinstance(s, str):
        raise _einval(f"{s!r} is not text")
    if s[:1] == "-":
        v = -_kstrtoull(s[1:], base)
        if v < -(1 << 63):
            raise KernelError(errno.ERANGE, f"{s!r} does not fit in a signed 64 bits")
        return v
    v = kstrtoull(s, base)
    if v >= 1 << 63:
        raise KernelError(errno.ERANGE, f"{s!r} does not fit in a signed 64 bits")
    return v


def kstrto(ctype: str, s: str, base: int = 0) -> int:
    """kstrtoint, kstrtouint, kstrtou8 ...: the signed or unsigned parse, then ERANGE outside the type."""
    lo, hi = INT_TYPES[ctype]
    v = kstrtoll(s, base) if lo < 0 else kstrtoull(s, base)
    if not lo <= v <= hi:
        raise KernelError(errno.ERANGE, f"{s!r} is out of range for {ctype} ({lo}..{hi})")
    return v


def kstrtoint(s: str, base: int = 0) -> int:
    return kstrto("int", s, base)


def kstrtouint(s: str, base: int = 0) -> int:
    return kstrto("uint", s, base)


def _cstr(val: str) -> str:
    """The value as the kernel reads it, a C string: up to its first NUL."""
    return val.split("\0", 1)[0]


def param_set(ctype: str, val: str | None) -> object:
    """param_set_<type>: ``val`` None is a name given without "=value"; a
    value is read as a C string (up to a NUL)."""
    if val is not None:
        val = _cstr(val)
    if ctype in ("bool", "invbool"):
        b = kstrtobool("1" if val is None else val)      # param_set_bool: no value means "1"
        return (not b) if ctype == "invbool" else b
    if val is None:                         # parse_one: only KERNEL_PARAM_OPS_FL_NOARG types take no value
        raise _einval("a value is required (name=value)")
    if ctype == "charp":
        size = len(val.encode("utf-8", "surrogatepass"))        # strnlen: bytes, as the kernel is given them
        if size > CHARP_MAX:
            raise KernelError(errno.ENOSPC, f"string parameter too long ({size} > {CHARP_MAX} bytes)")
        return val
    return kstrto(ctype, val, 0)


def param_array(ctype: str, val: str | None, max_elems: int) -> tuple[object, ...]:
    """param_array: comma-separated values, each parsed by the element's type;
    more than ``max_elems`` or fewer than one EINVAL."""
    if val is None:
        raise _einval("a value is required (name=v1,v2,...)")
    val = _cstr(val)
    out = []
    for part in val.split(","):
        if len(out) == max_elems:
            raise _einval(f"can only take {max_elems} arguments")
        out.append(param_set(ctype, part))
    return tuple(out)


_SPACE = " \t\n\v\f\r"       # C's isspace


def next_arg(args: str) -> tuple[str, str | None, str]:
    """kernel/params.c next_arg: the first parameter of ``args`` as (name,
    value or None without "=", the rest).  Blanks separate parameters except
    inside double quotes; the value starts after the first "="; a quote
    opening the value or the whole parameter, and the one closing it, are
    not part of it."""
    quoted = in_quote = args[:1] == '"'
    if quoted:
        args = args[1:]
    equals = i = 0
    while i < len(args):
        c = args[i]
        if c in _SPACE and not in_quote:
            break
        if equals == 0 and c == "=":
            equals = i
        if c == '"':
            in_quote = not in_quote
        i += 1
    token, rest = args[:i], args[i + 1:].lstrip(_SPACE)
    closing = token.endswith('"')       # args[i-1] = '\0': the last character goes, once
    if not equals:
        name, val = (token[:-1] if quoted and closing else token), None
    else:
        name, val = token[:equals], token[equals + 1:]
        if val.startswith('"') or quoted:
            if val.startswith('"'):
                val = val[1:]
            if closing and val:
                val = val[:-1]
    return name, val, rest


def parse_args(args: str) -> list[tuple[str, str | None]]:
    """parse_args' walk over an options string: every (name, value) in order."""
    out = []
    args = args.lstrip(_SPACE)
    while args:
        name, val, args = next_arg(args)
        out.append((name, val))
    return out


def param_get(ctype: str, value: object) -> str:
    """param_get_<type>: what the sysfs file shows (bools Y/N, charp "(null)" when unset)."""
    if ctype in ("bool", "invbool"):
        return "Y" if (not value if ctype == "invbool" else value) else "N"
    if ctype == "charp":
        return "(null)" if value is None else str(value)
    return str(value)


def verify_octal_permissions(perm: int) -> None:
    """VERIFY_OCTAL_PERMISSIONS: 0..0777, user >= group >= other readable,
    user >= group writable, never writable by others (EINVAL)."""
    ok = (isinstance(perm, int) and not isinstance(perm, bool) and 0 <= perm <= 0o777
          and (perm >> 6) & 4 >= (perm >> 3) & 4 >= perm & 4
          and (perm >> 6) & 2 >= (perm >> 3) & 2 and not perm & 2)
    if not ok:
        raise _einval(f"permission {perm!r} is not one module_param takes: octal 0..0777, user >= group >= other "
                      "readable, user >= group writable, never writable by others")
