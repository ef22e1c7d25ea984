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
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from . import params
from .params import parse_args as _options
from .driver import Driver
from .errors import KernelError
from .modalias import alias_matches, driver_aliases

if TYPE_CHECKING:
    from .core import Kernel

ENTRY_POINT_GROUP = "pyvswitch.drivers"
log = logging.getLogger("pyvswitch.kernel")


class Bounds(Protocol):
    """What a parameter's schema says is allowed (``pyvswitch.schema.Param`` is one)."""

    def accepts(self, value: object) -> bool: ...

    def expected(self) -> str: ...


@dataclass(frozen=True)
class ModuleParam:
    """module_param(name, type, perm) - or module_param_array when ``array`` > 0
    (at most that many elements).  ``type`` is int, str or bool (C types: int,
    charp, bool) or a module_param type name ("uint", "ulong", "invbool", ...).
    ``perm`` as module_param takes it: 0 no sysfs file; readable with the
    owner's read bit, writable with the owner's write bit; never writable by
    others (EINVAL).  ``bounds`` (optional): what the value must also satisfy
    beyond its C type - the schema's bounds - EINVAL naming them otherwise."""

    name: str
    type: "type | str"
    default: object
    perm: int = 0o444
    description: str = ""
    array: int = 0
    bounds: Bounds | None = None

    def __post_init__(self) -> None:
        params.verify_octal_permissions(self.perm)
        if self.ctype not in params.TYPES:
            raise KernelError(errno.EINVAL, f"module_param {self.name}: unknown type {self.type!r}; expected int, "
                                            f"str, bool or one of {', '.join(params.TYPES)}")
        if not isinstance(self.array, int) or self.array < 0:
            raise KernelError(errno.EINVAL, f"module_param_array {self.name}: array is a count >= 0, "
                                            f"got {self.array!r}")

    @property
    def ctype(self) -> str:
        """The module_param type: int -> "int", str -> "charp", bool -> "bool"."""
        if isinstance(self.type, str):
            return self.type
        return {int: "int", str: "charp", bool: "bool"}.get(self.type, repr(self.type))

    def parse(self, module: str, text: object) -> object:
        """param_set_<type> (param_array for arrays), then the bounds: a value as
        modprobe or sysfs gives it (text; None for a bare name), or already
        typed from Python.  EINVAL/ERANGE/ENOSPC as the kernel's, naming the
        module, the parameter and what it takes; the value is not stored here."""
        try:
            if self.array:
                if isinstance(text, (list, tuple)):
                    text = ",".join(self._text(v) for v in text)
                value: object = params.param_array(self.ctype, None if text is None else self._text(text), self.array)
                items = list(value)         # type: ignore[call-overload]
            else:
                value = params.param_set(self.ctype, None if text is None else self._text(text))
                items = [value]
        except KernelError as exc:
            raise KernelError(exc.errno, f"module {module}: parameter {self.name} ({self.ctype}"
                                         f"{' array' if self.array else ''}): {text!r} refused: {exc}") from None
        if self.bounds is not None:
            for v in items:
                if not self.bounds.accepts(v):
                    raise KernelError(errno.EINVAL, f"module {module}: parameter {self.name}: expected "
                                                    f"{self.bounds.expected()}, got {v!r}")
        return value

    def _text(self, v: object) -> str:
        """A typed Python value as the text the kernel would be given (bools as 1/0)."""
        if isinstance(v, bool):
            return "1" if v else "0"
        if isinstance(v, (int, str)):
            return str(v)
        raise KernelError(errno.EINVAL, f"parameter {self.name}: a value is text, an int or a bool, "
                                        f"not {type(v).__name__}")

    def show(self, value: object) -> str:
        """param_get_<type> (param_array_get joins the elements with commas)."""
        if self.array:
            return ",".join(params.param_get(self.ctype, v) for v in value)     # type: ignore[attr-defined]
        return params.param_get(self.ctype, value)


def _param_name(name: str) -> str:
    """parameq: "-" and "_" are the same in a parameter's name."""
    return name.replace("-", "_")


class Module:
    """One driver module as this kernel knows it.  ``refcnt`` is what
    /sys/module/<m>/refcnt shows: the references taken with ``get`` plus one for
    every loaded module that depends on it (ref_module); ``holders`` are those."""

    def __init__(self, name: str, source: str, py: ModuleType) -> None:
        self.name = name
        self.source = source
        self.description: str = getattr(py, "MODULE_DESCRIPTION", "") or (py.__doc__ or "").strip().split("\n")[0]
        self.depends: tuple[str, ...] = tuple(getattr(py, "MODULE_DEPENDS", ()))
        self.driver_classes: tuple[type[Driver], ...] = tuple(getattr(py, "DRIVERS", ()))
        self.aliases: list[str] = [a for cls in self.driver_classes for a in driver_aliases(cls)]
        self.aliases += [a for a in getattr(py, "MODULE_ALIAS", ()) if a not in self.aliases]
        self.init: Callable[[Kernel], None] | None = getattr(py, "init_module", None)
        self.exit: Callable[[Kernel], None] | None = getattr(py, "cleanup_module", None)
        self.drivers: list[Driver] = []
        self.loaded = False
        #: initstate while loaded: "coming" (its init and drivers' registration
        #: running), "live", "going" (its unload running)
        self.state = "live"
        self._ref_lock = threading.Lock()     # try_module_get/module_put against rmmod's check
        self.pins = 0
        self.holders: list[str] = []
        self.async_probe_requested = False
        self.params: dict[str, ModuleParam] = {_param_name(p.name): p for p in getattr(py, "MODULE_PARAMS", ())}
        self.values: dict[str, object] = {n: p.default for n, p in self.params.items()}

    @property
    def refcnt(self) -> int:
        return self.pins + len(self.holders)

    def parse_args(self, args: Mapping[str, object], warn: "Kernel | None" = None) -> tuple[dict[str, object], bool]:
        """parse_args over the module's parameters: every value parsed first, so a
        bad one changes nothing (its errno); an unknown name is ignored with a
        warning (unknown_module_param_cb), but for ``async_probe`` - the module
        option asking for asynchronous probing (kstrtobool, true when it does not
        parse).  Returns the new values and the async_probe request."""
        values = dict(self.values)
        async_probe = self.async_probe_requested
        for name, text in args.items():
            key = _param_name(name)
            if key not in self.params:
                if name == "async_probe":           # strcmp, not parameq
                    try:
                        async_probe = params.kstrtobool(text) if isinstance(text, str) else \
                            (True if text is None else bool(text))
                    except KernelError:
                        async_probe = True
                    continue
                if warn is not None:
                    warn.printk("warning", f"{self.name}: unknown parameter '{name}' ignored")
                continue
            values[key] = self.params[key].parse(self.name, text)
        return values, async_probe

    def set_params(self, args: Mapping[str, object], warn: "Kernel | None" = None) -> None:
        """Parameters given at load time (parse_args), all or nothing."""
        self.values, self.async_probe_requested = self.parse_args(args, warn)

    def get(self) -> None:
        """try_module_get(): pins the module; rmmod refuses while pinned.
        ENOENT once it is going (module_is_live) or not loaded."""
        with self._ref_lock:
            if not self.loaded or self.state == "going":
                raise KernelError(errno.ENOENT, f"module {self.name} is not loaded"
                                                f"{' (it is being unloaded)' if self.loaded else ''}")
            self.pins += 1

    def put(self) -> None:
        """module_put()."""
        with self._ref_lock:
            if self.pins <= 0:
                raise KernelError(errno.EINVAL, f"module {self.name}: put without get")
            self.pins -= 1

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
        """The registered module of that name ("-" and "_" the same, as kmod folds them)."""
        if not isinstance(name, str):
            raise KernelError(errno.EINVAL, f"a module name is a string such as 'vsw_mover', "
                                            f"not {type(name).__name__} {name!r}")
        mod = self.modules.get(name) or self._folded().get(name.replace("-", "_"))
        if mod is None:
            raise KernelError(errno.ENOENT, f"module {name!r} not found: it is not registered under the "
                                            f"'{ENTRY_POINT_GROUP}' entry points (known: "
                                            f"{', '.join(sorted(self.modules)) or 'none'})")
        return mod

    def _folded(self) -> dict[str, Module]:
        return {m.replace("-", "_"): mod for m, mod in self.modules.items()}

    def insmod(self, name: str, params: Mapping[str, object] | None = None) -> list[str]:
        """insmod: EEXIST when the module is live already (load_module's
        add_unformed_module); its dependencies are loaded first here."""
        mod = self.get(name)
        if mod.loaded:
            raise KernelError(errno.EEXIST, f"insmod: module {mod.name} is already loaded")
        return self.load(mod.name, params=params)

    def load(self, name: str, _stack: tuple[str, ...] = (), params: Mapping[str, object] | None = None) -> list[str]:
        """Loads a module with dependencies and this module's ``params``; returns
        the modules newly loaded (an already loaded one keeps its parameters).
        All or nothing: a bad parameter, a failing dependency, init_module or
        driver registration leave every module as it was.  Once live: the
        module's "add" uevent, and it holds each module it depends on."""
        mod = self.get(name)
        if mod.loaded:
            return []
        if mod.name in _stack:
            raise KernelError(errno.ELOOP, f"module {mod.name}: circular dependency "
                                           f"{' -> '.join(_stack + (mod.name,))}")
        values, async_probe = mod.parse_args(params or {}, self.kernel)
        done: list[str] = []
        try:
            for dep in mod.depends:
                done += self.load(dep, _stack + (mod.name,))
            self._init(mod, values, async_probe)
        except BaseException:
            for dep in reversed(done):      # best effort: the load's own error is the one raised
                try:
                    self.unload(dep)
                except KernelError as exc:
                    self.kernel.printk("warning", f"module {mod.name} failed to load; its dependency {dep} "
                                                  f"stays loaded: {exc}")
            raise
        for dep in mod.depends:
            self.get(dep).holders.append(mod.name)          # ref_module: the dependency is held
        self.kernel.kobject_uevent("add", f"/module/{mod.name}", "module")
        self.kernel.printk("info", f"module {mod.name} loaded ({len(mod.drivers)} driver(s))")
        return done + [mod.name]

    def _init(self, mod: Module, values: dict[str, object], async_probe: bool) -> None:
        """do_init_module: the parameters, init_module(kernel), then each driver registered."""
        old = mod.values, mod.async_probe_requested
        mod.values, mod.async_probe_requested = values, async_probe
        mod.loaded, mod.state = True, "coming"
        registered: list[Driver] = []
        try:
            if mod.init is not None:
                mod.init(self.kernel)
            try:
                for cls in mod.driver_classes:
                    drv = cls()
                    drv.module = mod
                    self.kernel.driver_register(drv)
                    registered.append(drv)
            except BaseException:
                for drv in reversed(registered):
                    self.kernel.driver_unregister(drv)
                if mod.exit is not None:
                    mod.exit(self.kernel)
                raise
        except BaseException:
            mod.loaded, mod.state = False, "live"
            mod.values, mod.async_probe_requested = old
            raise
        mod.drivers = registered
        mod.state = "live"

    def modprobe(self, name: str, params: Mapping[str, object] | None = None) -> list[str]:
        """modprobe NAME [param=value ...]: a module of that name (with "-" and
        "_" the same, as kmod folds them) is loaded first; otherwise every module
        with an alias that matches NAME as a modalias.  ``name`` may carry the
        parameters as the command line does ("vsw_mover max_burst=4096"; a bare
        name is a parameter given no value).  A module loaded already is left as
        it is.  Returns the names of the modules (loaded now or before)."""
        if not isinstance(name, str):
            raise KernelError(errno.EINVAL, f"modprobe: a module name or modalias is a string, "
                                            f"not {type(name).__name__} {name!r}")
        words = name.split(maxsplit=1)
        if not words:
            raise KernelError(errno.EINVAL, "modprobe: no module name")
        name, args = words[0], dict(params or {})
        for key, value in _options(words[1] if len(words) > 1 else ""):     # next_arg: quotes kept together
            args[key] = value
        by_name = self._folded().get(name.replace("-", "_"))
        found = [by_name] if by_name is not None else self.lookup(name)
        if not found:
            raise KernelError(errno.ENOENT, f"modprobe: no module named or matching {name!r}")
        for mod in found:
            self.load(mod.name, params=args)
        return [m.name for m in found]

    def unload(self, name: str) -> None:
        """rmmod (kmod's checks, then delete_module): EBUSY while other modules
        hold it or it is pinned, or while it is not live (its init or unload
        still running: re-entered from a probe, a remove or a notifier); its drivers unregistered (their devices
        unbound), cleanup_module, the "remove" uevent; it no longer holds its
        dependencies."""
        mod = self.get(name)
        if not mod.loaded:
            raise KernelError(errno.ENOENT, f"rmmod: module {mod.name} is not loaded")
        if mod.state != "live":             # delete_module: "Doing init or already dying?"
            raise KernelError(errno.EBUSY, f"rmmod: module {mod.name} is {mod.state}: its "
                                           f"{'init' if mod.state == 'coming' else 'unload'} is still running")
        if mod.holders:
            raise KernelError(errno.EBUSY, f"rmmod: module {mod.name} is in use by: {', '.join(mod.holders)}")
        with mod._ref_lock:                 # try_stop_module: no reference, and none can be taken from now on
            if mod.pins:
                raise KernelError(errno.EBUSY, f"rmmod: module {mod.name} is in use (refcount {mod.refcnt})")
            mod.state = "going"
        try:
            for drv in reversed(mod.drivers):
                self.kernel.driver_unregister(drv)
            mod.drivers = []
            if mod.exit is not None:
                try:
                    mod.exit(self.kernel)
                except Exception as exc:
                    self.kernel.printk("error", f"module {mod.name}: cleanup_module raised "
                                                f"{type(exc).__name__}: {exc}")
        finally:
            mod.state = "live"
        mod.loaded = False
        mod.values = {n: p.default for n, p in mod.params.items()}     # the next load starts afresh
        mod.async_probe_requested = False
        for dep in mod.depends:
            held = self.modules.get(dep) or self._folded().get(dep.replace("-", "_"))
            if held is not None and mod.name in held.holders:
                held.holders.remove(mod.name)
        self.kernel.kobject_uevent("remove", f"/module/{mod.name}", "module")
        self.kernel.printk("info", f"module {mod.name} unloaded")
