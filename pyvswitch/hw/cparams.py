"""Device parameters on their way into C: the bounds are decided once, by C.

A parameter's bound is checked where it matters - in the C model (``csrc/``), which
returns -errno - and this module only turns what C (or C's type, through cffi) says
into the schema's words: which parameter, what it was, what was expected
(``pyvswitch.schema.Param.expected``).  Nothing here re-checks a bound; the platform
file's validation states the same bounds early, and tests/unit/test_one_fact.py probes C
at every edge of every bounded parameter to keep the two in step.
"""
from __future__ import annotations

import errno
from collections.abc import Iterable

from ..errors import VswError
from ..schema import KINDS as SCHEMA
from ..schema import Param
from ._ffi import ffi


def c_types(struct: str) -> dict[str, str]:
    """Each field of a C struct and its C type, as cffi read them from csrc/vsw.h."""
    return {name: f.type.cname for name, f in ffi.typeof(struct).fields}


def c_value(ctype: str, value: object, kind: str, name: str, what: str) -> object:
    """``value`` as C's ``ctype`` holds it.  EINVAL for a value of the wrong type (``bool``
    too) or below zero for an unsigned type, ERANGE for one that does not fit - each
    with the schema's words for the parameter ``name`` of device kind ``kind``."""
    p = SCHEMA[kind].param(name)
    ok = (int, float) if p.type is float else int
    if isinstance(value, bool) or not isinstance(value, ok):
        raise VswError(errno.EINVAL, f"{what}: {name} must be {p.expected()}, got {type(value).__name__} {value!r}")
    try:
        return ffi.new(f"{ctype} *", value)[0]
    except OverflowError:
        if value < 0:               # type: ignore[operator]
            raise VswError(errno.EINVAL, f"{what}: {name} must be >= 0 (C's {ctype}), got {value}; "
                                         f"expected {p.expected()}") from None
        raise VswError(errno.ERANGE, f"{what}: {name} must be below 2**{ffi.sizeof(ctype) * 8} (C's {ctype}), "
                                     f"got {value}; expected {p.expected()}") from None


def refused(values: Iterable[tuple[Param, object]], otherwise: str = "") -> dict[int, str]:
    """What to say when C refuses parameters with EINVAL, EDOM or ERANGE (for
    ``pyvswitch.errors.check``): each (schema parameter, value) whose value falls outside
    the schema's bounds, with what was expected - or ``otherwise`` (a rule between
    parameters that no single bound states), or else what C returned."""
    bad = [f"{p.name} {v!r} is out of bounds: expected {p.expected()}" for p, v in values if not p.accepts(v)]
    text = "; ".join(bad) or otherwise
    return {errno.EINVAL: text, errno.EDOM: text, errno.ERANGE: text} if text else {}
