"""A platform: a parsed, validated machine description and the questions asked
of it (devices by kind and name, the layout, what the store holds)."""
from __future__ import annotations

import errno
import os
import tomllib
from importlib import resources
from typing import Any

from ..errors import VswError
from ..hw import Layout, Store
from .parse import DeviceSpec, parse, read_text

__all__ = ["DEFAULT_KVM_PLATFORM", "DEFAULT_PLATFORM", "DeviceSpec", "Platform"]

#: The built-in platform ``Platform.load(None)`` (and every verb without --platform) uses.
DEFAULT_PLATFORM = "reference"
#: The built-in platform the KVM verbs (``run``, ``demo --kvm``) use without --platform.
DEFAULT_KVM_PLATFORM = "reference-kvm"


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
            spec = DEFAULT_PLATFORM
        if isinstance(spec, os.PathLike) or (isinstance(spec, str) and "\n" not in spec and (
                "=" not in spec or os.path.exists(spec))):        # a file named a=b.toml is a file
            text_spec = os.fspath(spec)
            if os.path.exists(text_spec):
                return cls.from_text(read_text(text_spec), text_spec)
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
        if not isinstance(text, str):
            raise VswError(errno.EINVAL, f"{source}: a platform's TOML text is a str, not {type(text).__name__}")
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise VswError(errno.EINVAL, f"{source}: not valid TOML: {exc}") from None
        name, description, devices = parse(doc, source)
        return cls(name, description, source, devices)

    # --- queries --------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout.get(next(s.params["layout"] for s in self.devices if s.kind == "pcpu"))

    def summary(self) -> dict[str, Any]:
        """What a reader wants first: PCPUs, layout, and how many contexts the store
        and MEM hold (computed from their capacities and the layout's slot size)."""
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
        return self._by_name.get(name) if isinstance(name, str) else None

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
