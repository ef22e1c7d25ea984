"""The context store (and the prior art's MEM region): slots of saved contexts."""
from __future__ import annotations

import errno
import threading
from dataclasses import dataclass

from ..errors import VswError, bytes_of, check, check_uint
from ..schema import KINDS as SCHEMA
from ._ffi import ffi, lib
from .cparams import c_value, refused
from .layout import Layout, RegisterView

IMAGE_ERRORS = {
    errno.ENODATA: "the image is truncated",
    errno.ENOEXEC: "not a pyvswitch context image (bad magic or header size)",
    errno.EMSGSIZE: "the image's payload size does not match",
    errno.EBADMSG: "the image is corrupt: its CRC32C does not match its contents",
    errno.EXDEV: "the image holds a different register layout",
    errno.EPROTONOSUPPORT: "the image was written by an unsupported (newer) layout version",
    errno.EINVAL: "the image's valid-group mask names groups the layout does not have",
}


#: What each layout version changed, for the message that refuses an older image.
LAYOUT_CHANGES = {("x86_64", 2): "version 2 holds every MSR KVM lists that a guest can write, and the local APIC"}


def describe_image_error(code: int, info: object, layout: Layout, length: int) -> str:
    """What was wrong with an image and what was expected, from the C check's findings."""
    want = layout.image_size
    if code == errno.ENODATA:
        return f"the image is truncated: {length} bytes, expected {want} for layout {layout.name}"
    if code == errno.ENOEXEC:
        return f"not a pyvswitch context image: magic {info.magic:#010x}, expected {lib.VSW_IMAGE_MAGIC:#010x}"  # type: ignore[attr-defined]
    if code == errno.EMSGSIZE:
        return (f"size mismatch: {length} bytes with a {info.payload_size}-byte payload; layout {layout.name} "  # type: ignore[attr-defined]
                f"images are {want} bytes")
    if code == errno.EBADMSG:
        return (f"the image is corrupt: CRC32C {info.crc_computed:#010x} over its contents, "  # type: ignore[attr-defined]
                f"{info.crc_stored:#010x} stored")  # type: ignore[attr-defined]
    if code == errno.EXDEV:
        return f"the image holds layout id {info.layout}, expected {layout.id} ({layout.name})"  # type: ignore[attr-defined]
    if code == errno.EPROTONOSUPPORT:
        v = info.version  # type: ignore[attr-defined]
        why = ("written by a newer pyvswitch" if v > layout.version else
               f"from before version {layout.version} of the layout ({LAYOUT_CHANGES.get((layout.name, layout.version), 'its groups changed')}); "
               "take it again with this build")
        return f"the image is layout {layout.name} version {v}, this build reads version {layout.version}: {why}"
    return IMAGE_ERRORS.get(code, "invalid image")


@dataclass(frozen=True)
class SlotInfo:
    owner: int
    generation: int
    valid_mask: int
    bank_mask: int
    resident: bool


class Store:
    """Owner of a C store model: fixed capacity, one double-banked slot per machine."""

    def __init__(self, layout: "str | Layout", capacity_bytes: int) -> None:
        self.layout = Layout.get(layout)
        capacity = c_value("uint64_t", capacity_bytes, "context-store", "capacity_bytes", "store")
        out = ffi.new("struct vsw_store **")
        check(lib.vsw_store_create(self.layout.id, capacity, out), "store create", {
            **refused([(SCHEMA["context-store"].param("capacity_bytes"), capacity_bytes)]),
            errno.ENOSPC: f"{capacity_bytes} bytes cannot hold one slot of layout {self.layout.name}",
            errno.E2BIG: f"capacity_bytes {capacity_bytes} is more slots of {self.layout.name} contexts than the "
                         "store model holds; expected a smaller store"})
        self._h = ffi.gc(out[0], lib.vsw_store_destroy)
        self.capacity_bytes = capacity_bytes
        self._lock = threading.Lock()   # slot allocation and release
        self._owners: set[int] = set()  # one slot per machine (C leaves this to us: O(1) alloc)
        self.policy = "lru"             # which context it gives up when it caches them (hw/cache.py)

    @property
    def handle(self) -> object:
        if self._h is None:
            raise VswError(errno.EBADF, "this store is closed")
        return self._h

    @property
    def slot_bytes(self) -> int:
        return int(lib.vsw_store_slot_bytes(self.handle))

    @property
    def capacity_slots(self) -> int:
        return int(lib.vsw_store_capacity_slots(self.handle))

    @property
    def used_slots(self) -> int:
        return int(lib.vsw_store_used_slots(self.handle))

    def alloc(self, owner: int) -> "Slot":
        """A slot for machine ``owner`` (non-zero), holding the layout's reset state."""
        if not isinstance(owner, int) or not 0 < owner < 1 << 64:
            raise VswError(errno.EINVAL, f"a machine id is a non-zero 64-bit integer, got {owner!r}")
        with self._lock:
            if owner in self._owners:
                raise VswError(errno.EEXIST, f"slot alloc: machine {owner} already has a slot in this store")
            n = check(lib.vsw_store_alloc(self.handle, owner), "slot alloc", {
                errno.ENOSPC: f"the store is full: {self.capacity_slots} slots of {self.slot_bytes} bytes "
                              f"in {self.capacity_bytes} bytes",
                errno.EEXIST: f"machine {owner} already has a slot in this store"})
            self._owners.add(owner)
        return Slot(self, n, owner)

    def close(self) -> None:
        if self._h is not None:
            ffi.release(self._h)
            self._h = None


class Slot:
    """One machine's slot: readable, writable and exportable while not loaded on a PCPU."""

    __slots__ = ("store", "index", "owner")

    def __init__(self, store: Store, index: int, owner: int) -> None:
        self.store, self.index, self.owner = store, index, owner

    def _errors(self) -> dict[int, str]:
        return {
            errno.EBUSY: f"machine {self.owner}'s context is loaded on a PCPU; it lives in the register file now",
            errno.EACCES: f"slot {self.index} does not belong to machine {self.owner}",
            errno.ENOENT: f"slot {self.index} was freed",
            errno.ERANGE: f"slot {self.index} is beyond the store's {self.store.capacity_slots} slots",
        }

    def info(self) -> SlotInfo:
        i = ffi.new("struct vsw_slot_info *")
        check(lib.vsw_store_slot_info(self.store.handle, self.index, self.owner, i), "slot info", self._errors())
        return SlotInfo(i.owner, i.generation, i.valid_mask, i.bank_mask, bool(i.resident))

    def read(self, offset: int, size: int) -> bytes:
        buf = bytearray(size)
        check(lib.vsw_store_read(self.store.handle, self.index, self.owner, offset, ffi.from_buffer(buf), size),
              "slot read", {**self._errors(), errno.EINVAL: f"bytes {offset}..{offset + size} are outside the "
                                                            f"{self.store.layout.size}-byte context"})
        return bytes(buf)

    def write(self, offset: int, data: bytes) -> None:
        check(lib.vsw_store_write(self.store.handle, self.index, self.owner, offset, data, len(data)),
              "slot write", {**self._errors(), errno.EINVAL: f"bytes {offset}..{offset + len(data)} are outside "
                                                             f"the {self.store.layout.size}-byte context"})

    @property
    def regs(self) -> RegisterView:
        """The saved registers by name; a write commits atomically."""
        return RegisterView(self.store.layout, self.read, self.write)

    def export(self) -> bytes:
        """The committed context as a self-checking image."""
        buf = bytearray(self.store.layout.image_size)
        n = check(lib.vsw_store_export(self.store.handle, self.index, self.owner, ffi.from_buffer(buf), len(buf)),
                  "slot export", self._errors())
        return bytes(buf[:n])

    def import_(self, image: "bytes | bytearray | memoryview") -> None:
        """Replaces the context with an image; validated whole first, so a bad image changes nothing."""
        data = bytes_of(image, "an image")
        info = ffi.new("struct vsw_image_info *")
        r = lib.vsw_store_import(self.store.handle, self.index, self.owner, data, len(data), info)
        if r < 0:
            code = -r
            if code in IMAGE_ERRORS:
                raise VswError(code, "image import: " + describe_image_error(code, info, self.store.layout, len(data)))
            check(r, "image import", self._errors())

    def corrupt(self, group: int, byte: int = 0) -> None:
        """Fault injection: damages the committed bank of ``group``; the next load must refuse it."""
        check_uint(group, "group")
        check_uint(byte, "byte")
        check(lib.vsw_store_corrupt(self.store.handle, self.index, group, byte), "corrupt",
              {errno.ERANGE: f"group {group} byte {byte} is outside the layout"})

    def free(self) -> None:
        with self.store._lock:
            check(lib.vsw_store_free(self.store.handle, self.index, self.owner), "slot free", self._errors())
            self.store._owners.discard(self.owner)

    def __repr__(self) -> str:
        return f"<Slot {self.index} of machine {self.owner}>"
