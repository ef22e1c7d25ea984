"""Driver modules: registered under the entry-point group ``pyvswitch.drivers``
(built-ins too), their aliases generated from their drivers' ID tables (depmod),
loaded by modalias (modprobe), pinned by references, unloaded by rmmod.

A driver module is a Python module with ``DRIVERS`` (Driver classes) and
optionally ``MODULE_NAME``, ``MODULE_DESCRIPTION``, ``MODULE_DEPENDS`` and
``MODULE_PARAMS`` (``ModuleParam``s: module_param, given as ``modprobe m
name=value`` and shown in /sys/module/<m>/parameters).  Only
modules registered here can ever load: a name read from a platform file is
looked up in this registry, never imported.
"""
from __future__ import annotations

import errno
import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING

from .driver import Driver
from .errors import KernelError
from .modalias import alias_matches, driver_aliases

if TYPE_CHECKING:
    from .core import Kernel

ENTRY_POINT_GROUP = "pyvswitch.drivers"
log = logging.getLogger("pyvswitch.kernel")


@dataclass(frozen=True)
class ModuleParam:
    """module_param(name, type, perm): a typed value with a default; writable
    through sysfs when ``perm`` has the owner's write bit (0644), read-only
    otherwise (0444)."""

    name: str
    type: type                  # int, str or bool
    default: object
    perm: int = 0o444
    description: str = ""

    def parse(self, module: str, text: object) -> object:
        """A value given as text (modprobe, sysfs) or already typed: EINVAL when it is not one."""
        if isinstance(text, self.type) and not (self.type is int and isinstance(text, bool)):
            return text
        t = str(text).strip()
        try:
            if self.type is bool:
                if t not in ("0", "1", "y", "n", "Y", "N"):
                    raise ValueError
                return t in ("1", "y", "Y")
            return int(t, 0) if self.type is int else t
        except ValueError:
            raise KernelError(errno.EINVAL, f"module {module}: parameter {self.name} takes "
                                            f"{self.type.__name__}, got {text!r}") from None


class Module:
    """One driver module as this kernel knows it."""

    def __init__(self, name: str, source: str, py: ModuleType) -> None:
        self.name = name
        self.source = source
        self.description: str = getattr(py, "MODULE_DESCRIPTION", "") or (py.__doc__ or "").strip().split("\n")[0]
        self.depends: tuple[str, ...] = tuple(getattr(py, "MODULE_DEPENDS", ()))
        self.driver_classes: tuple[type[Driver], ...] = tuple(getattr(py, "DRIVERS", ()))
        self.aliases: list[str] = [a for cls in self.driver_classes for a in driver_aliases(cls)]
        self.drivers: list[Driver] = []
        self.loaded = False
        self.refcnt = 0
        self.params: dict[str, ModuleParam] = {p.name: p for p in getattr(py, "MODULE_PARAMS", ())}
        self.values: dict[str, object] = {n: p.default for n, p in self.params.items()}

    def set_params(self, args: Mapping[str, object], warn: "Kernel | None" = None) -> None:
        """Parameters given at load time: parsed all first, so a bad one changes
        nothing (EINVAL); an unknown one is ignored with a warning, as Linux's
        unknown_module_param_cb does."""
        values = dict(self.values)
        for name, text in args.items():
            if name not in self.params:
                if warn is not None:
                    warn.printk("warning", f"{self.name}: unknown parameter '{name}' ignored")
                continue
            values[name] = self.params[name].parse(self.name, text)
        self.values = values

    def get(self) -> None:
        """try_module_get(): pins the module; rmmod refuses while pinned."""
        if not self.loaded:
            raise KernelError(errno.ENOENT, f"module {self.name} is not loaded")
        self.refcnt += 1

    def put(self) -> None:
        """module_put()."""
        if self.refcnt <= 0:
            raise KernelError(errno.EINVAL, f"module {self.name}: put without get")
        self.refcnt -= 1

    def __repr__(self) -> str:
        return f"<Module {self.name} {'loaded' if self.loaded else 'available'} refcnt={self.refcnt}>"


def _module_name(default: str, py: ModuleType) -> str:
    return getattr(py, "MODULE_NAME", default)


class ModuleRegistry:
    """modules.alias, modprobe and rmmod for one kernel."""

    def __init__(self, kernel: "Kernel", extra: Iterable[ModuleType] = (), use_entry_points: bool = True) -> None:
        self.kernel = kernel
        self.modules: dict[str, Module] = {}
        if use_entry_points:
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                try:
                    py = importlib.import_module(ep.value)
                except Exception as exc:  # a broken third-party module must not stop the kernel
                    log.warning("driver module %s (%s) failed to import: %s", ep.name, ep.value, exc)
                    kernel.printk("warning", f"module {ep.name}: import of {ep.value} failed: {exc}")
                    continue
                self._add(Module(_module_name(ep.name, py), ep.value, py))
        for py in extra:
            self._add(Module(_module_name(py.__name__.rsplit(".", 1)[-1], py), py.__name__, py))

    def _add(self, mod: Module) -> None:
        self.modules.setdefault(mod.name, mod)

    def alias_table(self) -> list[tuple[str, str]]:
        """(glob, module) pairs, like /lib/modules/*/modules.alias."""
        return [(a, m.name) for m in self.modules.values() for a in m.aliases]

    def lookup(self, modalias: str) -> list[Module]:
        """The modules whose aliases match, in registry order (kmod's resolution)."""
        return [m for m in self.modules.values() if any(alias_matches(a, modalias) for a in m.aliases)]

    def get(self, name: str) -> Module:
        try:
            return self.modules[name]
        except KeyError:
            raise KernelError(errno.ENOENT, f"module {name!r} not found: it is not registered under the "
                                            f"'{ENTRY_POINT_GROUP}' entry points (known: "
                                            f"{', '.join(sorted(self.modules)) or 'none'})") from None

    def load(self, name: str, _stack: tuple[str, ...] = (), params: Mapping[str, object] | None = None) -> list[str]:
        """insmod with dependencies and this module's ``params``; returns the
        modules newly loaded (an already loaded one keeps its parameters)."""
        mod = self.get(name)
        if mod.loaded:
            return []
        mod.set_params(params or {}, self.kernel)
        if name in _stack:
            raise KernelError(errno.ELOOP, f"module {name}: circular dependency {' -> '.join(_stack + (name,))}")
        done = []
        for dep in mod.depends:
            done += self.load(dep, _stack + (name,))
        drivers = [cls() for cls in mod.driver_classes]
        mod.loaded = True
        registered = []
        try:
            for drv in drivers:
                drv.module = mod
                self.kernel.driver_register(drv)
                registered.append(drv)
        except Exception:
            for drv in reversed(registered):
                self.kernel.driver_unregister(drv)
            mod.loaded = False
            raise
        mod.drivers = drivers
        self.kernel.printk("info", f"module {name} loaded ({len(drivers)} driver(s))")
        return done + [name]

    def modprobe(self, name: str, params: Mapping[str, object] | None = None) -> list[str]:
        """modprobe NAME [param=value ...]: a module of that name (with "-" and
        "_" the same, as kmod folds them) is loaded first; otherwise every module
        with an alias that matches NAME as a modalias.  ``name`` may carry the
        parameters as the command line does ("vsw_mover max_burst=4096").
        Returns the names of the modules (loaded now or before)."""
        words = name.split()
        if not words:
            raise KernelError(errno.EINVAL, "modprobe: no module name")
        name, args = words[0], dict(params or {})
        for w in words[1:]:
            key, eq, value = w.partition("=")
            args[key] = value if eq else "1"            # a bare flag is "1", as for bool parameters
        folded = {m.replace("-", "_"): m for m in self.modules}
        by_name = folded.get(name.replace("-", "_"))
        found = [self.modules[by_name]] if by_name is not None else self.lookup(name)
        if not found:
            raise KernelError(errno.ENOENT, f"modprobe: no module named or matching {name!r}")
        for mod in found:
            self.load(mod.name, params=args)
        return [m.name for m in found]

    def holders(self, name: str) -> list[str]:
        return [m.name for m in self.modules.values() if m.loaded and name in m.depends]

    def unload(self, name: str) -> None:
        """rmmod: refused with EBUSY while pinned or needed by a loaded module;
        unbinds the devices of its drivers."""
        mod = self.get(name)
        if not mod.loaded:
            raise KernelError(errno.ENOENT, f"rmmod: module {name} is not loaded")
        holders = self.holders(name)
        if holders:
            raise KernelError(errno.EBUSY, f"rmmod: module {name} is in use by: {', '.join(holders)}")
        if mod.refcnt:
            raise KernelError(errno.EBUSY, f"rmmod: module {name} is in use (refcount {mod.refcnt})")
        for drv in reversed(mod.drivers):
            self.kernel.driver_unregister(drv)
        mod.drivers = []
        mod.loaded = False
        mod.values = {n: p.default for n, p in mod.params.items()}     # the next load starts afresh
        self.kernel.printk("info", f"module {name} unloaded")
