"""Register-context layouts, read from the C tables: nothing is listed twice."""
from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache

from ..errors import UnknownName, VswError, bytes_of, check
from ._ffi import ffi, lib


@dataclass(frozen=True)
class Group:
    """A unit of dirty tracking and of transfer: one KVM struct or XSAVE component
    in the first ``used`` bytes of a 64-byte-aligned span of ``size`` bytes."""

    index: int
    name: str
    offset: int
    size: int
    vector: bool
    used: int

    @property
    def mask(self) -> int:
        return 1 << self.index


@dataclass(frozen=True)
class Field:
    """One register: its name, group, byte offset in the register file and width."""

    name: str
    group: int
    offset: int
    size: int

    @property
    def bits(self) -> int:
        return self.size * 8


@dataclass(frozen=True, eq=False)
class Layout:
    """A register-context layout of the C core (``x86_64`` or ``aarch64``)."""

    id: int
    name: str
    version: int
    size: int
    groups: tuple[Group, ...]
    fields: Mapping[str, Field]
    uapi_checked: bool

    @staticmethod
    def get(name: "str | Layout") -> "Layout":
        """The layout called ``name``; UnknownName lists the ones that exist."""
        if isinstance(name, Layout):
            return name
        if not isinstance(name, str):
            raise VswError(errno.EINVAL, f"a layout is named by a string, not {type(name).__name__} {name!r}")
        return _load(name)

    @property
    def all_groups(self) -> int:
        return (1 << len(self.groups)) - 1

    def __repr__(self) -> str:
        return f"<Layout {self.name} v{self.version}: {self.size} bytes, {len(self.groups)} groups, {len(self.fields)} registers>"

    def group(self, name: str) -> Group:
        _check_name(name, "group")
        for g in self.groups:
            if g.name == name:
                return g
        raise UnknownName(f"layout {self.name} has no group {name!r}; groups: {', '.join(g.name for g in self.groups)}")

    def mask(self, groups: "Iterator[str] | list[str] | tuple[str, ...]") -> int:
        """Bit mask of the named groups."""
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
            raise VswError(errno.EINVAL, f"mask takes group names (a list), not {type(groups).__name__}")
        m = 0
        for name in groups:
            m |= self.group(name).mask
        return m

    def field(self, name: str) -> Field:
        _check_name(name, "register")
        try:
            return self.fields[name]
        except KeyError:
            raise UnknownName(
                f"layout {self.name} has no register {name!r} (e.g. {', '.join(list(self.fields)[:6])}, ...)"
            ) from None

    def reset_state(self) -> bytes:
        """The layout's reset register file (zeros plus structural constants)."""
        buf = bytearray(self.size)
        check(lib.vsw_layout_reset(self.id, ffi.from_buffer(buf), self.size), "layout reset")
        return bytes(buf)

    @property
    def image_size(self) -> int:
        return int(lib.vsw_image_size(self.id))


def layout_names() -> list[str]:
    """Names of the layouts the C core knows."""
    names = []
    for lid in range(1, 16):
        info = ffi.new("struct vsw_layout_info *")
        if lib.vsw_layout_info(lid, info) == 0:
            names.append(ffi.string(info.name).decode())
    return names


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str):
        raise UnknownName(f"a {what} is named by a string, not {type(name).__name__} {name!r}", errno.EINVAL)


@cache
def _load(name: str) -> Layout:
    if not isinstance(name, str):
        raise VswError(errno.EINVAL, f"a layout is named by a string, not {type(name).__name__}")
    lid = lib.vsw_layout_by_name(name.encode())
    if lid < 0:
        raise UnknownName(f"unknown register layout {name!r}; known layouts: {', '.join(layout_names())}")
    info = ffi.new("struct vsw_layout_info *")
    check(lib.vsw_layout_info(lid, info), f"layout {name}")
    gi = ffi.new("struct vsw_group_info *")
    groups = []
    for i in range(info.ngroups):
        check(lib.vsw_layout_group(lid, i, gi), "layout group")
        groups.append(Group(i, ffi.string(gi.name).decode(), gi.offset, gi.size, bool(gi.flags & lib.VSW_GROUP_VECTOR),
                            gi.used))
    fi = ffi.new("struct vsw_field_info *")
    fields = {}
    for i in range(info.nfields):
        check(lib.vsw_layout_field(lid, i, fi), "layout field")
        f = Field(ffi.string(fi.name).decode(), fi.group, fi.offset, fi.size)
        fields[f.name] = f
    return Layout(lid, name, info.version, info.size, tuple(groups), fields, bool(info.uapi_checked))


class RegisterView(Mapping[str, int]):
    """Registers by name over some backing register file.

    Reads give ints (vectors too; use :meth:`get_bytes` for raw bytes); writes
    take an int that fits the register's width or bytes of exactly its size.
    ``read(offset, size)`` and ``write(offset, data)`` reach the backing store.
    """

    __slots__ = ("_layout", "_read", "_write")

    def __init__(self, layout: Layout, read: Callable[[int, int], bytes], write: Callable[[int, bytes], None]):
        self._layout = layout
        self._read = read
        self._write = write

    @property
    def layout(self) -> Layout:
        return self._layout

    def __getitem__(self, name: str) -> int:
        f = self._layout.field(name)
        return int.from_bytes(self._read(f.offset, f.size), "little")

    def get_bytes(self, name: str) -> bytes:
        f = self._layout.field(name)
        return bytes(self._read(f.offset, f.size))

    def __setitem__(self, name: str, value: "int | bytes | bytearray | memoryview") -> None:
        f = self._layout.field(name)
        self._write(f.offset, encode(f, value))

    def update(self, values: Mapping[str, "int | bytes"]) -> None:
        """Writes several registers; every value is checked before any is written."""
        if not isinstance(values, Mapping):
            raise VswError(errno.EINVAL, f"update takes a mapping of register names to values, not "
                                         f"{type(values).__name__}")
        data = [(f, encode(f, v)) for f, v in ((self._layout.field(n), v) for n, v in values.items())]
        for f, d in data:
            self._write(f.offset, d)

    def __delitem__(self, name: str) -> None:
        raise VswError(errno.EPERM, f"a register cannot be deleted (the register file has every one); "
                                    f"write 0 to clear {name!r} instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout.fields)

    def __len__(self) -> int:
        return len(self._layout.fields)

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except UnknownName as exc:
            raise AttributeError(str(exc)) from None

    def __setattr__(self, name: str, value: "int | bytes | bytearray | memoryview") -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        try:
            self[name] = value
        except UnknownName as exc:
            raise AttributeError(str(exc)) from None

    def __delattr__(self, name: str) -> None:
        if name.startswith("_"):
            object.__delattr__(self, name)
            return
        del self[name]

    def __repr__(self) -> str:
        return f"<RegisterView {self._layout.name}: {len(self)} registers>"


def encode(f: Field, value: "int | bytes | bytearray | memoryview") -> bytes:
    """The little-endian bytes of ``value`` for register ``f``, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, bytes, bytearray, memoryview)):
        raise VswError(errno.EINVAL, f"register {f.name} takes an int or {f.size} bytes, not {type(value).__name__}")
    if isinstance(value, int):
        if not 0 <= value < (1 << f.bits):
            raise VswError(errno.ERANGE, f"register {f.name} is {f.bits}-bit: {value:#x} is out of range 0..{(1 << f.bits) - 1:#x}")
        return value.to_bytes(f.size, "little")
    data = bytes_of(value, f"register {f.name}'s value")
    if len(data) != f.size:
        raise VswError(errno.EINVAL, f"register {f.name} is {f.size} bytes wide, got {len(data)} bytes")
    return data
