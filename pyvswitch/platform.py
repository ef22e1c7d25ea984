"""The machine description: TOML (stdlib tomllib) -> devices in a kernel.

A platform lists devices of the invention and around it - PCPUs, MEM, the
memory bus, the storage bus, the context store, the mover - each with its
compatible strings (most specific first), optional vendor/device ids, parent,
suppliers and parameters.  ``Platform.load(None)`` is the built-in reference
platform; more ship beside it (``Platform.builtin_names()``).

Nothing in a platform file is ever imported or executed: drivers come only
from registered modules, matched by the modaliases the devices announce.
"""
from __future__ import annotations

import errno
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import defaults
from .hw import Layout, VswError, layout_names
from .kernel import Device, Kernel

#: The invention's identifiers and those of the parts around it (DESIGN.md).
KINDS = ("pcpu", "mem", "memory-bus", "storage-bus", "context-store", "mover")
INVENTION = ("storage-bus", "context-store", "mover")
STORAGE_BUS_TYPE = "vsw-storage"
VENDOR_VSW = 0x5653          # "VS": the emulator's vendor id on the storage bus
DEVICE_CONTEXT_STORE = 0x0001

_INT, _FLOAT, _STR = "a non-negative integer", "a number", "a string"


def _param_schema() -> dict[str, dict[str, tuple[str, Any]]]:
    sb, mb, mv = defaults.STORAGE_BUS, defaults.MEMORY_BUS, defaults.MOVER
    return {
        "pcpu": {"layout": (_STR, "x86_64"), "cpu_mhz": (_INT, defaults.CPU_MHZ),
                 "exit_entry_cycles": (_INT, defaults.EXIT_ENTRY_CYCLES),
                 # for a vsw,pcpu-kvm: the KVM device and the guest memory all its machines share
                 # (reserved, not committed: each guest touches what it uses)
                 "kvm_device": (_STR, "/dev/kvm"), "guest_memory_bytes": (_INT, 2 << 30)},
        "mem": {"capacity_bytes": (_INT, defaults.MEM_BYTES)},
        "memory-bus": {"width_bytes": (_INT, mb.width_bytes), "clock_mhz": (_INT, mb.clock_mhz),
                       "setup_cycles": (_INT, mb.setup_cycles), "utilisation": (_FLOAT, mb.utilisation),
                       "other_bytes": (_INT, mb.other_bytes), "seed": (_INT, mb.seed)},
        "storage-bus": {"width_bytes": (_INT, sb.width_bytes), "clock_mhz": (_INT, sb.clock_mhz),
                        "setup_cycles": (_INT, sb.setup_cycles)},
        "context-store": {"capacity_bytes": (_INT, defaults.STORE_BYTES)},
        "mover": {"max_burst": (_INT, mv.max_burst), "write_threshold": (_INT, mv.write_threshold),
                  "read_threshold": (_INT, mv.read_threshold), "channels": (_INT, 1)},
    }


SCHEMA = _param_schema()
#: Upper bounds (inclusive) of parameters: what the C models take (32-bit
#: fields), or what a sane allocation is (channels, capacities, guest memory).
_U32 = (1 << 32) - 1
MAXIMUM = {"cpu_mhz": _U32, "exit_entry_cycles": _U32, "width_bytes": _U32, "clock_mhz": _U32,
           "setup_cycles": _U32, "other_bytes": _U32, "seed": (1 << 64) - 1, "max_burst": _U32,
           "write_threshold": _U32, "read_threshold": _U32, "channels": 64,
           "capacity_bytes": 1 << 40,
           "guest_memory_bytes": 3 << 30}       # guest-physical memory stays below the device registers at 3 GiB
_POSITIVE = {"guest_memory_bytes", "cpu_mhz", "capacity_bytes", "width_bytes", "clock_mhz", "max_burst", "write_threshold",
             "read_threshold", "channels", "other_bytes"}
_DEVICE_KEYS = {"name", "compatible", "vendor", "device", "bus", "parent", "suppliers", "params"}


#: Variants of a kind: vsw,pcpu-kvm is a PCPU that is a real KVM vCPU.
VARIANTS = {"pcpu-kvm": "pcpu"}


def kind_of(compatible: tuple[str, ...]) -> str | None:
    """The device kind of the first compatible string we know: vsw,<kind>,
    vsw,<kind>-v<N> or a variant such as vsw,pcpu-kvm."""
    for c in compatible:
        m = re.fullmatch(r"vsw,([a-z-]+?)(?:-v\d+)?", c)
        if m:
            kind = VARIANTS.get(m.group(1), m.group(1))
            if kind in KINDS:
                return kind
    return None


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

    @property
    def invention(self) -> bool:
        return self.kind in INVENTION


def _read_text(path: str) -> str:
    """A platform file's text, or a VswError that says why it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise VswError(errno.EISDIR, f"{path}: is a directory; expected a platform TOML file") from None
    except OSError as exc:
        raise VswError(exc.errno or errno.EIO, f"{path}: cannot read the platform file: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VswError(errno.EINVAL, f"{path}: not UTF-8 text (byte {exc.start}); expected a platform TOML file") from None


class Platform:
    """A parsed, validated machine description."""

    def __init__(self, name: str, description: str, source: str, devices: list[DeviceSpec]) -> None:
        self.name, self.description, self.source, self.devices = name, description, source, devices
        self._by_name = {s.name: s for s in devices}

    # --- loading --------------------------------------------------------------
    @staticmethod
    def builtin_names() -> list[str]:
        return sorted(p.name[:-5] for p in resources.files("pyvswitch.platforms").iterdir()
                      if p.name.endswith(".toml"))

    @classmethod
    def load(cls, spec: "str | os.PathLike[str] | None" = None) -> "Platform":
        """None: the built-in reference platform; a built-in name; a path to a
        TOML file; or TOML text."""
        if spec is None:
            spec = "reference"
        if isinstance(spec, os.PathLike) or (isinstance(spec, str) and "\n" not in spec and "=" not in spec):
            text_spec = os.fspath(spec)
            if os.path.exists(text_spec):
                return cls.from_text(_read_text(text_spec), text_spec)
            if text_spec in cls.builtin_names():
                res = resources.files("pyvswitch.platforms") / f"{text_spec}.toml"
                return cls.from_text(res.read_text(), f"<built-in {text_spec}>")
            raise VswError(errno.ENOENT, f"no platform file or built-in platform named {text_spec!r} "
                                         f"(built-in: {', '.join(cls.builtin_names())})")
        if not isinstance(spec, str):
            raise VswError(errno.EINVAL, f"a platform is None, a name, a path or TOML text, not {type(spec).__name__}")
        return cls.from_text(spec, "<TOML text>")

    @classmethod
    def from_text(cls, text: str, source: str) -> "Platform":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise VswError(errno.EINVAL, f"{source}: not valid TOML: {exc}") from None
        return cls._parse(doc, source)

    @classmethod
    def _parse(cls, doc: dict[str, Any], source: str) -> "Platform":
        def bad(where: str, what: str) -> VswError:
            return VswError(errno.EINVAL, f"{source}: {where}: {what}")

        meta = doc.get("platform", {})
        if not isinstance(meta, dict):
            raise bad("[platform]", "expected a table with name and description")
        unknown = set(doc) - {"platform", "device"}
        if unknown:
            raise bad(f"key {sorted(unknown)[0]!r}", "unknown top-level key; expected [platform] and [[device]]")
        raw = doc.get("device")
        if not isinstance(raw, list) or not raw:
            raise bad("[[device]]", "expected at least one [[device]] table")
        specs: list[DeviceSpec] = []
        for i, d in enumerate(raw):
            where = f"device #{i + 1}" + (f" ({d.get('name')!r})" if isinstance(d, dict) and "name" in d else "")
            if not isinstance(d, dict):
                raise bad(where, "expected a table")
            extra = set(d) - _DEVICE_KEYS
            if extra:
                raise bad(f"{where}, key {sorted(extra)[0]!r}",
                          f"unknown key; expected one of {', '.join(sorted(_DEVICE_KEYS))}")
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
            params = cls._params(d.get("params", {}), kind, f"{where}, params", bad)
            specs.append(DeviceSpec(name, tuple(comp), kind, ids["vendor"], ids["device"], d.get("bus"),
                                    d.get("parent"), tuple(sup), params))
        cls._check_topology(specs, bad)
        name = meta.get("name", Path(source).stem if not source.startswith("<") else "platform")
        return Platform(str(name), str(meta.get("description", "")), source, specs)

    @staticmethod
    def _params(raw: Any, kind: str | None, where: str, bad: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise bad(where, f"expected a table of parameters, got {raw!r}")
        if kind is None:
            return dict(raw)        # a device we have no model for: kept as it is
        schema = SCHEMA[kind]
        out = {k: default for k, (_, default) in schema.items()}
        for key, value in raw.items():
            if key not in schema:
                raise bad(f"{where}, key {key!r}", f"unknown parameter for a {kind}; expected one of "
                                                   f"{', '.join(schema)}")
            want = schema[key][0]
            if want == _INT:
                top = MAXIMUM.get(key)
                ok = (isinstance(value, int) and not isinstance(value, bool) and value >= (1 if key in _POSITIVE else 0)
                      and (top is None or value <= top))
                want = "a positive integer" if key in _POSITIVE else want
            elif want == _FLOAT:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok = isinstance(value, str)
            if not ok:
                top = MAXIMUM.get(key)
                limit = f" (at most {top:#x})" if top and top >= 1 << 20 else f" (at most {top})" if top else ""
                raise bad(f"{where}, key {key!r}", f"expected {want}, got {value!r}{limit if want != _STR else ''}")
            out[key] = value
        if kind == "pcpu" and out["layout"] not in layout_names():
            raise bad(f"{where}, key 'layout'", f"expected one of {', '.join(layout_names())}, got {out['layout']!r}")
        if kind == "pcpu" and out["guest_memory_bytes"] % (2 << 20):
            raise bad(f"{where}, key 'guest_memory_bytes'", f"expected a multiple of 2 MiB, got {out['guest_memory_bytes']}")
        if kind == "memory-bus" and not 0.0 <= out["utilisation"] < 1.0:
            raise bad(f"{where}, key 'utilisation'", f"expected a fraction in [0, 1), got {out['utilisation']!r}")
        if kind == "mover" and out["max_burst"] % 8:
            raise bad(f"{where}, key 'max_burst'", f"expected a multiple of 8 bytes, got {out['max_burst']}")
        return out

    @staticmethod
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
        for need in ("pcpu", "mem", "memory-bus"):
            if need not in kinds:
                raise bad("[[device]]", f"a platform needs a vsw,{need} device (the prior-art path needs it)")
        for once in ("mem", "memory-bus", "storage-bus", "context-store", "mover"):
            if kinds.count(once) > 1:
                raise bad("[[device]]", f"at most one vsw,{once} device is supported, found {kinds.count(once)}")
        layouts = {s.params["layout"] for s in specs if s.kind == "pcpu"}
        if len(layouts) > 1:
            raise bad("[[device]]", f"every PCPU must use the same register layout, found {sorted(layouts)}")

    # --- queries --------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout.get(next(s.params["layout"] for s in self.devices if s.kind == "pcpu"))

    def summary(self) -> dict[str, Any]:
        """What a reader wants first: PCPUs, layout, and how many contexts the store
        and MEM hold (computed from their capacities and the layout's slot size)."""
        from .hw import Store
        slot = Store(self.layout, 1 << 20).slot_bytes

        def contexts(kind: str) -> int | None:
            specs = self.of_kind(kind)
            return specs[0].params["capacity_bytes"] // slot if specs else None

        return {"name": self.name, "pcpus": len(self.of_kind("pcpu")), "layout": self.layout.name,
                "kvm": any("vsw,pcpu-kvm" in s.compatible for s in self.of_kind("pcpu")),
                "store_contexts": contexts("context-store"), "mem_contexts": contexts("mem"),
                "mover": bool(self.of_kind("mover")), "description": self.description}

    def of_kind(self, kind: str) -> list[DeviceSpec]:
        return [s for s in self.devices if s.kind == kind]

    def spec(self, name: str) -> DeviceSpec:
        s = self.find(name)
        if s is None:
            raise VswError(errno.ENOENT, f"platform {self.name} has no device {name!r}")
        return s

    def find(self, name: str) -> DeviceSpec | None:
        return self._by_name.get(name)

    @property
    def declares_fast_path(self) -> bool:
        """Whether the description means the fast path to work: it has a mover, or a
        device with a vsw, compatible we do not know (a typo must not pass unseen).
        A platform without a mover (``no-mover``) declares the prior-art path."""
        return any(s.kind == "mover" or (s.kind is None and any(c.startswith("vsw,") for c in s.compatible))
                   for s in self.devices)

    def children_of(self, bus_device: str) -> list[DeviceSpec]:
        """The devices that sit on a storage bus (its driver enumerates them)."""
        return [s for s in self.devices if s.bus == bus_device]

    def resources(self, s: DeviceSpec) -> dict[str, Any]:
        """What a driver reads from its device: the parameters, the platform's
        layout, and for a storage bus the descriptions of its children."""
        res = dict(s.params)
        res["layout"] = self.layout.name
        res["suppliers"] = list(s.suppliers)
        if s.kind == "storage-bus":
            res["children"] = self.children_of(s.name)
            res["bus_type"] = STORAGE_BUS_TYPE
        return res

    def make_device(self, s: DeviceSpec, parent: Device | None = None) -> Device:
        return Device(s.name, STORAGE_BUS_TYPE if s.bus else "platform", parent=parent, compatible=s.compatible,
                      vendor=s.vendor, device=s.device, resources=self.resources(s))

    def populate(self, kernel: Kernel) -> None:
        """Adds the platform bus's devices (the storage bus's own come when its
        driver enumerates them), then the device links the suppliers name."""
        added: dict[str, Device] = {}
        for s in self.devices:
            if s.bus is None:
                parent = added.get(s.parent) if s.parent else None
                added[s.name] = kernel.device_add(self.make_device(s, parent))
        self.link(kernel)

    def link(self, kernel: Kernel) -> None:
        """Creates the device links between devices present in the kernel (again
        after the storage bus enumerates its children)."""
        for s in self.devices:
            for sup in s.suppliers:
                try:
                    consumer, supplier = kernel.device(s.name), kernel.device(sup)
                except VswError:
                    continue
                kernel.device_link_add(consumer, supplier)
