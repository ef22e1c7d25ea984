"""A platform's TOML, parsed and validated into device descriptions.

Every parameter is checked against the schema (``pyvswitch.schema``): its type,
bounds and multiple; every reference between devices resolves; the storage bus
carries only the context store.  Errors name the file, the device and the key,
and say what was expected.
"""
from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MAX_PLATFORM_BYTES, VswError, decode_text, read_regular_file
from ..hw import layout_names
from ..kernel.links import FLAG_NAMES
from ..schema import (
    DEVICE_CONTEXT_STORE,
    INVENTION,
    KINDS,
    REQUIRED,
    VENDOR_VSW,
    kind_of,
)

_DEVICE_KEYS = {"name", "compatible", "vendor", "device", "bus", "parent", "suppliers", "link_flags", "params"}
#: A supplier's link without link_flags: managed, the consumer probing again when the supplier comes back.
DEFAULT_LINK_FLAGS = ("autoprobe-consumer",)


@dataclass
class DeviceSpec:
    """One device of a platform description."""

    name: str
    compatible: tuple[str, ...]
    kind: str | None
    vendor: int | None = None
    device: int | None = None
    bus: str | None = None              # None: the platform bus; else the storage-bus device it sits on
    parent: str | None = None
    suppliers: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    link_flags: dict[str, tuple[str, ...]] = field(default_factory=dict)   # per supplier: DL_FLAG_* names
    given: frozenset[str] = frozenset()     # the parameters the file sets (the rest are the schema's defaults)

    def link_flags_of(self, supplier: str) -> int:
        """The DL_FLAG_* bits of the link to ``supplier`` (default: autoprobe-consumer)."""
        return sum(FLAG_NAMES[n] for n in self.link_flags.get(supplier, DEFAULT_LINK_FLAGS))

    @property
    def invention(self) -> bool:
        return self.kind in INVENTION


def read_text(path: str) -> str:
    """A platform file's text (a regular file of at most MAX_PLATFORM_BYTES), or a
    VswError that says why it cannot be read."""
    data = read_regular_file(path, "platform TOML file", MAX_PLATFORM_BYTES)
    return decode_text(data, os.fsdecode(path), "platform TOML file")


def parse(doc: dict[str, Any], source: str) -> "tuple[str, str, list[DeviceSpec]]":
    def bad(where: str, what: str) -> VswError:
        return VswError(errno.EINVAL, f"{source}: {where}: {what}")

    meta = doc.get("platform", {})
    if not isinstance(meta, dict):
        raise bad("[platform]", "expected a table with name and description")
    unknown = set(doc) - {"platform", "device", "calibration"}     # calibration: bench/calibrate.py
    if unknown:
        raise bad(f"key {sorted(unknown)[0]!r}", "unknown top-level key; expected [platform] and [[device]]")
    raw = doc.get("device")
    if not isinstance(raw, list) or not raw:
        raise bad("[[device]]", "expected at least one [[device]] table")
    specs = [_device(d, f"device #{i + 1}" + (f" ({d.get('name')!r})" if isinstance(d, dict) and "name" in d else ""),
                     bad) for i, d in enumerate(raw)]
    _check_topology(specs, bad)
    name = meta.get("name", Path(source).stem if not source.startswith("<") else "platform")
    return str(name), str(meta.get("description", "")), specs


def _device(d: Any, where: str, bad: Any) -> DeviceSpec:
    """One [[device]] table, checked key by key."""
    if not isinstance(d, dict):
        raise bad(where, "expected a table")
    extra = set(d) - _DEVICE_KEYS
    if extra:
        raise bad(f"{where}, key {sorted(extra)[0]!r}", f"unknown key; expected one of {', '.join(sorted(_DEVICE_KEYS))}")
    name = d.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise bad(f"{where}, key 'name'", f"expected a device name of letters, digits, '_', '.', '-', got {name!r}")
    comp = d.get("compatible", [])
    if isinstance(comp, str):
        comp = [comp]
    if not isinstance(comp, list) or not all(isinstance(c, str) and c for c in comp):
        raise bad(f"{where}, key 'compatible'", f"expected a list of strings, got {comp!r}")
    ids = {}
    for key in ("vendor", "device"):
        v = d.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 32):
            raise bad(f"{where}, key {key!r}", f"expected a 32-bit id such as 0x{VENDOR_VSW:04x}, got {v!r}")
        ids[key] = v
    sup = d.get("suppliers", [])
    if not isinstance(sup, list) or not all(isinstance(s, str) for s in sup):
        raise bad(f"{where}, key 'suppliers'", f"expected a list of device names, got {sup!r}")
    for key in ("bus", "parent"):
        if d.get(key) is not None and not isinstance(d.get(key), str):
            raise bad(f"{where}, key {key!r}", f"expected a device name, got {d.get(key)!r}")
    kind = kind_of(tuple(comp))
    params = _params(d.get("params", {}), kind, f"{where}, params", bad)
    return DeviceSpec(name, tuple(comp), kind, ids["vendor"], ids["device"], d.get("bus"), d.get("parent"),
                      tuple(sup), params, _link_flags(d, sup, where, bad),
                      frozenset(d.get("params", {})) if kind else frozenset())


def _link_flags(d: dict[str, Any], suppliers: list[str], where: str, bad: Any) -> dict[str, tuple[str, ...]]:
    """link_flags = { <supplier> = [<flag>, ...] }: the flags of the device's link to each supplier."""
    flags = d.get("link_flags", {})
    if not isinstance(flags, dict) or not all(
            isinstance(v, list) and all(isinstance(f, str) and f in FLAG_NAMES for f in v) for v in flags.values()):
        raise bad(f"{where}, key 'link_flags'", "expected a table of supplier = [flag, ...] with flags from "
                                               f"{', '.join(FLAG_NAMES)}, got {flags!r}")
    for name in flags:
        if name not in suppliers:
            raise bad(f"{where}, key 'link_flags'", f"{name!r} is not one of its suppliers {suppliers}")
    return {k: tuple(v) for k, v in flags.items()}


def _params(raw: Any, kind: str | None, where: str, bad: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad(where, f"expected a table of parameters, got {raw!r}")
    if kind is None:
        return dict(raw)        # a device we have no model for: kept as it is
    schema = KINDS[kind]
    out = schema.defaults()
    for key, value in raw.items():
        if key not in out:
            raise bad(f"{where}, key {key!r}", f"unknown parameter for a {kind}; expected one of "
                                               f"{', '.join(out)}")
        p = schema.param(key)
        if not p.accepts(value):
            if p.type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                raise bad(f"{where}, key {key!r}", f"expected a fraction in [{p.minimum:g}, {p.maximum:g}), got {value!r}")
            if p.multiple_of > 1 and isinstance(value, int) and not isinstance(value, bool) and value >= p.minimum \
                    and (p.maximum is None or value <= p.maximum):
                raise bad(f"{where}, key {key!r}", f"expected a multiple of {p.multiple_of}, got {value}")
            raise bad(f"{where}, key {key!r}", f"expected {p.expected()}, got {value!r}")
        out[key] = value
    if kind == "pcpu" and out["layout"] not in layout_names():
        raise bad(f"{where}, key 'layout'", f"expected one of {', '.join(layout_names())}, got {out['layout']!r}")
    return out


def _check_topology(specs: list[DeviceSpec], bad: Any) -> None:
    names: dict[str, DeviceSpec] = {}
    for s in specs:
        if s.name in names:
            raise bad(f"device {s.name!r}", "the name is used twice")
        names[s.name] = s
    for s in specs:
        for ref, key in [(s.bus, "bus"), (s.parent, "parent")] + [(x, "suppliers") for x in s.suppliers]:
            if ref is not None and ref not in names:
                raise bad(f"device {s.name!r}, key {key!r}", f"no device named {ref!r}")
        if s.bus is not None and names[s.bus].kind != "storage-bus":
            raise bad(f"device {s.name!r}, key 'bus'", f"{s.bus!r} is not a storage bus (vsw,storage-bus)")
        if s.bus is not None and s.kind != "context-store":
            raise bad(f"device {s.name!r}, key 'bus'", f"the storage bus connects only the context store and "
                                                       f"the PCPU; a {s.kind or 'device of unknown kind'} "
                                                       f"cannot sit on it")
        if s.kind == "context-store":
            if s.bus is None:
                raise bad(f"device {s.name!r}, key 'bus'", "a context store sits on a storage bus: name it")
            if s.vendor is None or s.device is None:
                raise bad(f"device {s.name!r}", "a device on the storage bus needs numeric 'vendor' and 'device' "
                                                 f"ids (the context store: 0x{VENDOR_VSW:04x} / "
                                                 f"0x{DEVICE_CONTEXT_STORE:04x})")
    kinds = [s.kind for s in specs]
    for need in REQUIRED:
        if need not in kinds:
            raise bad("[[device]]", f"a platform needs a vsw,{need} device (the prior-art path needs it)")
    for once in (k for k in KINDS if KINDS[k].only_one):
        if kinds.count(once) > 1:
            raise bad("[[device]]", f"at most one vsw,{once} device is supported, found {kinds.count(once)}")
    layouts = {s.params["layout"] for s in specs if s.kind == "pcpu"}
    if len(layouts) > 1:
        raise bad("[[device]]", f"every PCPU must use the same register layout, found {sorted(layouts)}")
