"""Per-switch statistics, and the switch from Python (pyvswitch._fastpath).

A :class:`SwitchStats` holds ``struct vsw_switch_stats`` inline, in an
extension type (csrc/fastpath.c): its fields are read by member descriptors
and C getters, and C writes a switch's stats straight into it.  Every switch returns a new SwitchStats,
unless the caller hands one in (``out=``) to be filled again: reuse is
explicit, and a caller that keeps a SwitchStats keeps its values.

:class:`Switcher` is the switch a hypervisor's PCPUs make from Python: one
extension call keeping the GIL (the C switch never blocks, and dropping and
re-taking the GIL would cost a third as much again).  It is handed the
addresses of ``vsw_switch`` and ``vsw_pcpu_owner`` by cffi's documented
``ffi.addressof``; no cffi internals are touched.
"""
from __future__ import annotations

import errno
from typing import Any

import pyvswitch._fastpath as _fastpath
from ._ffi import ffi, lib
from ..errors import VswError
from .cache import RESULTS
from .path import PATH_NAMES

_STATS = ffi.typeof("struct vsw_switch_stats *")
_PCPU = ffi.typeof("struct vsw_pcpu *")
_CTX = ffi.typeof("struct vsw_ctx *")
if _fastpath.STATS_SIZE != ffi.sizeof(_STATS.item):
    raise ImportError("pyvswitch._fastpath was built against another struct vsw_switch_stats than pyvswitch._vsw: "
                      "rebuild both (python setup.py build_ext --inplace)")


def _address(c: object) -> int:
    return int(ffi.cast("uintptr_t", c))


def _handle_address(c: object, ctype: Any, what: str) -> int:
    """The address of cffi handle ``c``, a non-NULL ``ctype``: the extension
    dereferences it, so anything else (an int, a buffer, NULL) is refused here."""
    if not isinstance(c, ffi.CData) or ffi.typeof(c) is not ctype or c == ffi.NULL:
        raise VswError(errno.EINVAL, f"{what} is a non-NULL cffi '{ctype.cname}', not {c!r}")
    return _address(c)


_SWITCH = _address(ffi.addressof(lib, "vsw_switch"))
_OWNER = _address(ffi.addressof(lib, "vsw_pcpu_owner"))


#: What one switch did and what it would cost: ``struct vsw_switch_stats`` held
#: inline by an extension type (its docstring lists the fields).
SwitchStats = _fastpath.SwitchStats


def stats_c(stats: "SwitchStats") -> Any:
    """``stats`` as cffi's ``struct vsw_switch_stats *``, sharing its memory (for
    the hw owners' cffi calls; alive while ``stats`` is)."""
    return ffi.from_buffer(_STATS, stats, require_writable=True)


def _names_agree() -> bool:
    """Whether the extension names paths and cache results as hw.path and hw.cache do."""
    s = SwitchStats()
    c = stats_c(s)
    for table, field in ((PATH_NAMES, "path"), (RESULTS, "cache")):
        for k, name in table.items():
            setattr(c, field, k)
            if getattr(s, field) != name:
                return False
    return True


if not _names_agree():
    raise ImportError("pyvswitch._fastpath names paths or cache results unlike hw.path.PATH_NAMES / hw.cache.RESULTS")


#: The base of a machine: its context handle as the Switcher takes it.
ContextHandle = _fastpath.Handle

#: ``SwitchMethod(doc)``, a method of a class whose instances have a ``_switcher``
#: and a ``_switch_slow(frm, to, pcpu, r, out)``: ``obj.m(frm, to, pcpu=None, *,
#: out=None)`` is ``obj._switcher.switch(frm, to, pcpu, out)`` in one vectorcall,
#: handing an int result (0 or -errno) to ``_switch_slow`` (Hypervisor.switch_context).
SwitchMethod = _fastpath.SwitchMethod

#: ``SwitchRunning(doc, fallback)``: ``f(frm, to, *, out=None)`` is the switch on the
#: PCPU ``frm`` was last loaded onto (through the Switcher its handle is bound for),
#: handing an int result to ``fallback(frm, to, r, out)`` (pyvswitch.switch_context).
SwitchRunning = _fastpath.SwitchRunning


class Switcher(_fastpath.Switcher):
    """The switch on the PCPUs of one bring-up of a hypervisor (``Switcher(handles)``,
    the PCPUs' cffi handles, kept alive by it).

    ``switch(frm, to, pcpu, out)`` and ``switch_running(frm, to, out)`` return the
    switch's SwitchStats (``out`` itself when given), ``-errno`` when C refused the
    switch (nothing changed), or ``0`` when the arguments are not ones it takes -
    the caller's slow path then checks them and says what is wrong.  ``frm`` and
    ``to`` are ContextHandles bound for this Switcher (``bind``) or None.
    ``owner(i)`` is the machine running on PCPU ``i``."""

    __slots__ = ()

    def __new__(cls, handles: "list[Any] | tuple[Any, ...]" = ()) -> "Switcher":
        hs = tuple(handles)
        addrs = tuple(_handle_address(h, _PCPU, "a PCPU handle") for h in hs)
        return super().__new__(cls, _SWITCH, _OWNER, addrs, hs)

    def bind(self, m: Any, c: Any) -> None:
        """Binds ContextHandle ``m`` to the cffi context handle ``c`` (None: unbinds it)."""
        if c is None:
            m._bind(None, 0, None)
        else:
            m._bind(c, _handle_address(c, _CTX, "a context handle"), self)


__all__ = ["ContextHandle", "SwitchMethod", "SwitchRunning", "Switcher", "SwitchStats", "stats_c"]
