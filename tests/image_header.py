"""The context image's header as the C core lays it out (``struct vsw_image_header``
in csrc/vsw.h): tests read and write its fields by name, never by restated offsets."""
from __future__ import annotations

from pyvswitch.hw import ffi, lib

#: bytes before the payload
SIZE: int = lib.VSW_IMAGE_HEADER_SIZE
_FIELDS = dict(ffi.typeof("struct vsw_image_header").fields)


def span(name: str) -> slice:
    """Where the header field ``name`` lies in an image."""
    f = _FIELDS[name]
    return slice(f.offset, f.offset + ffi.sizeof(f.type))


def get(img: bytes, name: str) -> int:
    return int.from_bytes(img[span(name)], "little")


def put(img: bytes, name: str, value: int) -> bytes:
    """``img`` with the field ``name`` set to ``value`` (nothing else changed, the CRC neither)."""
    s = span(name)
    return img[:s.start] + value.to_bytes(s.stop - s.start, "little") + img[s.stop:]
