"""A read/write view of the driver core with the kernel's sysfs paths:

    bus/<bus>/devices/<dev>/{driver,modalias,uevent,driver_override}
    bus/<bus>/drivers/<drv>/{bind,unbind,module ->}
    bus/<bus>/{drivers_autoprobe,drivers_probe}
    module/<name>/{refcnt,initstate,parameters/*,holders/* ->,drivers/<bus>:<drv> ->}
    devices/<devpath>/...            (the same device attributes)
    kernel/debug/devices_deferred
"""
from __future__ import annotations

import errno
import mmap
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import dd
from .errors import KernelError
from .links import DL_FLAG_PM_RUNTIME, DL_FLAG_SYNC_STATE_ONLY

if TYPE_CHECKING:
    from .bus import Bus
    from .core import Kernel
    from .device import Device
    from .driver import Driver
    from .links import DeviceLink
    from .module import Module, ModuleParam

Reader = Callable[[], str]
Writer = Callable[[str], None]


def _getter(obj: object, attr: str) -> Reader:
    return lambda: str(getattr(obj, attr))


def _dir(dev: "Device") -> str:
    """A device's directory in the hierarchy: devices/<bus root>/<parents...>/<name>."""
    return "devices" + dev.devpath[len("/devices"):]


def _cstr(buf: str) -> str:
    """What a store reading ``buf`` as a C string sees: up to its first NUL."""
    return buf.split("\0", 1)[0]


def _streq_name(buf: str) -> str:
    """The name sysfs_streq compares a written buffer with: the C string, less
    one trailing newline (no other blank is ignored)."""
    name = _cstr(buf)
    return name[:-1] if name.endswith("\n") else name


def driver_set_override(buf: str) -> str | None:
    """driver_set_override: EINVAL for a page or more (PAGE_SIZE - 1: the
    show adds a newline); the C string up to its first newline; an empty
    one (or a lone newline) clears the override (None)."""
    size = len(buf.encode("utf-8", "surrogatepass"))
    if size >= mmap.PAGESIZE - 1:
        raise KernelError(errno.EINVAL, f"driver_override: {size} bytes; expected fewer than "
                                        f"{mmap.PAGESIZE - 1} (a page, less the newline a read adds)")
    name = _cstr(buf).split("\n", 1)[0]
    return name or None


def _no_such(path: str) -> KernelError:
    return KernelError(errno.ENOENT, f"sysfs: no such file or directory: {path}")


#: What a write to a device's uevent file may ask for (lib/kobject_uevent.c, kobject_actions).
SYNTH_ACTIONS = ("add", "remove", "change", "move", "online", "offline", "bind", "unbind")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def synth_uevent_args(buf: str) -> tuple[str, dict[str, str]]:
    """kobject_synth_uevent: "<action>[ <uuid>[ KEY=value ...]]" (one trailing
    newline or NUL allowed; keys and values alphanumeric, one space between pairs) ->
    the action and SYNTH_UUID (0 when not given) with a SYNTH_ARG_KEY per pair;
    EINVAL for anything else (kobject_action_type, kobject_action_args)."""
    def bad(why: str) -> KernelError:
        return KernelError(errno.EINVAL, f"uevent: {buf!r}: {why}; expected '<action> [<uuid> [KEY=value ...]]' "
                                         f"with an action of {', '.join(SYNTH_ACTIONS)}")
    text = buf[:-1] if buf.endswith(("\n", "\0")) else buf      # kobject_action_type: one newline or NUL
    action, sep, args = text.partition(" ")
    if action not in SYNTH_ACTIONS:
        raise bad(f"{action!r} is not a uevent action")
    if not sep:
        return action, {"SYNTH_UUID": "0"}
    if len(args) < 36 or not _UUID.fullmatch(args[:36]):
        raise bad("the first argument is not a UUID")
    env = {"SYNTH_UUID": args[:36]}
    rest = args[36:]
    while rest:
        if rest[0] != " ":
            raise bad("arguments are separated by one space")
        key, eq, tail = rest[1:].partition("=")
        if not eq or not key.isascii() or not key.isalnum():       # action_arg_word_end: alphanumerics
            raise bad("an argument is KEY=value, both letters and digits")
        value, sp, more = tail.partition(" ")
        if not value.isascii() or not value.isalnum():
            raise bad(f"{key}'s value is letters and digits")
        env[f"SYNTH_ARG_{key}"] = value
        rest = sp + more
    return action, env


class Sysfs:
    def __init__(self, kernel: "Kernel") -> None:
        self.k = kernel

    # --- the attribute table, built from the kernel's current state ---------
    def _device_attrs(self, dev: "Device") -> dict[str, tuple[Reader | None, Writer | None]]:
        k = self.k

        def override_w(v: str) -> None:
            dev.driver_override = driver_set_override(v)

        def state_synced_w(v: str) -> None:   # state_synced_store: only "1", forcing sync_state now
            if v.strip() != "1":
                raise KernelError(errno.EINVAL, f"state_synced takes 1 (sync now), got {v.strip()!r}")
            with k.lock:
                if dev.state_synced:
                    raise KernelError(errno.EINVAL, f"{dev.name}: its state is synced already")
                dd.sync_state(k, dev, force=True)

        def uevent_w(v: str) -> None:
            # kobject_synth_uevent: one of kobject_actions, a UUID and KEY=value pairs after it
            action, env = synth_uevent_args(v)
            with k.lock:
                k.uevents_emit(action, dev, **env)

        attrs: dict[str, tuple[Reader | None, Writer | None]] = {
            "modalias": (lambda: dev.modalias, None),
            "uevent": (lambda: self._uevent_text(dev), uevent_w),
            "driver_override": (lambda: dev.driver_override or "(null)", override_w),
        }
        if dev.driver is not None:
            if dev.driver.sync_state is not None:
                attrs["state_synced"] = (lambda: "1" if dev.state_synced else "0", state_synced_w)
        if dev.vendor is not None:
            attrs["vendor"] = (lambda: f"0x{dev.vendor:08x}", None)
            attrs["device"] = (lambda: f"0x{dev.device_id or 0:08x}", None)
        if dev.compatible:
            attrs["of_node/compatible"] = (lambda: "\n".join(dev.compatible), None)
        return attrs

    def _uevent_text(self, dev: "Device") -> str:
        assert dev.bus is not None
        env = dict(dev.bus.uevent_env(dev))
        if dev.driver is not None:
            env = {"DRIVER": dev.driver.name, **env}
        return "".join(f"{k}={v}\n" for k, v in env.items())

    def _bus_attrs(self, bus: "Bus") -> dict[str, tuple[Reader | None, Writer | None]]:
        """bus/<bus>/drivers_autoprobe and drivers_probe."""
        k = self.k

        def autoprobe_w(v: str) -> None:
            bus.drivers_autoprobe = not v.startswith("0")      # drivers_autoprobe_store: buf[0] == '0' or not

        def probe_w(v: str) -> None:
            name = _streq_name(v)
            if name not in bus.devices:
                raise KernelError(errno.ENODEV, f"drivers_probe: no device {name!r} on bus {bus.name}")
            dev = bus.devices[name]
            with k.lock:
                ret = dd.bus_rescan_devices_helper(k, dev)
            if ret == -errno.EBUSY:
                raise KernelError(errno.EBUSY, f"drivers_probe: {name} holds resources taken outside a probe "
                                               f"({', '.join(dev.devres.names())}): release them first")
            if ret:
                raise KernelError(-ret, f"drivers_probe: {name} waits for its supplier(s): "
                                        f"{k.deferred.get(dev, 'not bound yet')}")

        return {"drivers_autoprobe": (lambda: "1" if bus.drivers_autoprobe else "0", autoprobe_w),
                "drivers_probe": (None, probe_w)}

    def _driver_attrs(self, bus: "Bus", drv: "Driver") -> dict[str, tuple[Reader | None, Writer | None]]:
        """bus/<bus>/drivers/<drv>/bind, unbind and module."""
        k = self.k

        def bind_w(v: str) -> None:          # bind_store: errors as device_driver_attach gives them
            name = _streq_name(v)
            if name not in bus.devices:
                raise KernelError(errno.ENODEV, f"bind: no device {name!r} on bus {bus.name}")
            k.bind(bus.devices[name], drv)

        def unbind_w(v: str) -> None:
            name = _streq_name(v)
            dev = bus.devices.get(name)
            if dev is None or dev.driver is not drv:
                raise KernelError(errno.ENODEV, f"unbind: {name!r} is not bound to {drv.name}")
            k.unbind(dev)

        return {"bind": (None, bind_w), "unbind": (None, unbind_w)}

    @staticmethod
    def _param_attr(k: "Kernel", mod: "Module", key: str, p: "ModuleParam") -> tuple[Reader | None, Writer | None]:
        """module/<m>/parameters/<p> as param_get_<type> shows it (bools Y/N);
        readable with the owner's read bit, writable with the owner's write bit
        (EACCES otherwise, as the file's mode says); a bad value changes nothing."""
        def read() -> str:
            return p.show(mod.values[key])

        def write(v: str) -> None:
            value = p.parse(mod.name, v)
            with k.lock:
                mod.values[key] = value

        return (read if p.perm & 0o400 else None), (write if p.perm & 0o200 else None)

    @staticmethod
    def _link_attrs(link: "DeviceLink") -> dict[str, tuple[Reader | None, Writer | None]]:
        """class/devlink/<supplier>--<consumer>/: as drivers/base/core.c shows a link."""
        return {"status": (lambda: link.status, None),
                "auto_remove_on": (lambda: link.auto_remove_on, None),
                "runtime_pm": (lambda: "1" if link.flags & DL_FLAG_PM_RUNTIME else "0", None),
                "sync_state_only": (lambda: "1" if link.flags & DL_FLAG_SYNC_STATE_ONLY else "0", None)}

    def _table(self) -> dict[str, tuple[Reader | None, Writer | None]]:
        """Every file: path -> (reader, writer), built from the kernel's state now."""
        k = self.k
        t: dict[str, tuple[Reader | None, Writer | None]] = {}
        for bus in k.buses.values():
            base = f"bus/{bus.name}"
            t.update({f"{base}/{name}": rw for name, rw in self._bus_attrs(bus).items()})
            for dev in bus.devices.values():
                for name, rw in self._device_attrs(dev).items():
                    t[f"{_dir(dev)}/{name}"] = rw
            for drv in bus.drivers.values():
                t.update({f"{base}/drivers/{drv.name}/{name}": rw for name, rw in self._driver_attrs(bus, drv).items()})
        for mod in k.modules.modules.values():
            if mod.loaded:
                t[f"module/{mod.name}/refcnt"] = (_getter(mod, "refcnt"), None)
                t[f"module/{mod.name}/initstate"] = (_getter(mod, "state"), None)
                t.update({f"module/{mod.name}/parameters/{key}": self._param_attr(k, mod, key, p)
                          for key, p in mod.params.items() if p.perm})     # perm 0: no file
        for dev in k.devices:
            for link in dev.supplier_links.values():
                t.update({f"class/devlink/{link.name}/{name}": rw for name, rw in self._link_attrs(link).items()})
        t["kernel/debug/devices_deferred"] = (
            lambda: "".join(f"{d.name}\t{r}\n" for d, r in k.deferred.items()), None)
        return t

    def _links(self) -> dict[str, str]:
        """Every symlink, path -> target (both relative to /sys), as the kernel
        makes them: a device's subsystem and driver, the bus's and the driver's
        entries for each device, a device link's supplier and consumer."""
        out: dict[str, str] = {}
        for bus in self.k.buses.values():
            for dev in bus.devices.values():
                here = _dir(dev)
                out[f"bus/{bus.name}/devices/{dev.name}"] = here
                out[f"{here}/subsystem"] = f"bus/{bus.name}"
                if dev.driver is not None:
                    out[f"{here}/driver"] = f"bus/{bus.name}/drivers/{dev.driver.name}"
                    out[f"bus/{bus.name}/drivers/{dev.driver.name}/{dev.name}"] = here
                for link in dev.supplier_links.values():
                    base = f"class/devlink/{link.name}"
                    out[f"{base}/supplier"], out[f"{base}/consumer"] = _dir(link.supplier), here
                    out[f"{here}/supplier:{link.supplier.bus_name}:{link.supplier.name}"] = base
                    out[f"{_dir(link.supplier)}/consumer:{dev.bus_name}:{dev.name}"] = base
            for drv in bus.drivers.values():           # module_add_driver
                if drv.module is not None and drv.module.loaded:
                    out[f"bus/{bus.name}/drivers/{drv.name}/module"] = f"module/{drv.module.name}"
                    out[f"module/{drv.module.name}/drivers/{bus.name}:{drv.name}"] = f"bus/{bus.name}/drivers/{drv.name}"
        for mod in self.k.modules.modules.values():    # add_module_usage: holders/<user>
            if mod.loaded:
                out.update({f"module/{mod.name}/holders/{h}": f"module/{h}" for h in mod.holders})
        return out

    def _resolve(self, p: str, links: dict[str, str]) -> str:
        """``p`` with every symlink on its way followed (ELOOP past 8, as the VFS)."""
        for _ in range(8):
            parts = p.split("/")
            for i in range(len(parts), 0, -1):
                head = "/".join(parts[:i])
                if head in links:
                    p = "/".join([links[head], *parts[i:]]).strip("/")
                    break
            else:
                return p
        raise KernelError(errno.ELOOP, f"sysfs: too many levels of symbolic links in {p}")

    def readlink(self, path: str) -> str:
        """Where a symlink points (relative to /sys); EINVAL for what is not one."""
        p = self._norm(path)
        with self.k.lock:
            links = self._links()
            head, _, name = p.rpartition("/")
            real = "/".join(x for x in (self._resolve(head, links) if head else "", name) if x)
            if real not in links:
                raise KernelError(errno.EINVAL, f"sysfs: {path} is not a symbolic link")
            return links[real]

    # --- the file operations ------------------------------------------------
    @staticmethod
    def _norm(path: str) -> str:
        if not isinstance(path, str):
            raise KernelError(errno.EINVAL, f"sysfs: a path is a string such as 'bus/platform/devices', "
                                            f"not {type(path).__name__} {path!r}")
        p = path.strip()
        if p.startswith("/sys/"):
            p = p[len("/sys/"):]
        return p.strip("/")

    def read(self, path: str) -> str:
        """The attribute's value (without a trailing newline); symlinks followed."""
        p = self._norm(path)
        with self.k.lock:
            t = self._table()
            p = self._resolve(p, self._links())
            if p not in t:
                if any(key.startswith(p + "/") for key in t):
                    raise KernelError(errno.EISDIR, f"sysfs: {path} is a directory")
                raise _no_such(path)
            reader = t[p][0]
            if reader is None:
                raise KernelError(errno.EACCES, f"sysfs: {path} is write-only")
            return reader().rstrip("\n")

    def write(self, path: str, value: str) -> None:
        """Writes ``value`` to the attribute, as write(2) would (stores see it as
        the kernel's do: names compared as sysfs_streq, strings ending at a NUL)."""
        p = self._norm(path)
        with self.k.lock:
            t = self._table()
            p = self._resolve(p, self._links())
            if p not in t:
                raise _no_such(path)
            writer = t[p][1]
            if writer is None:
                raise KernelError(errno.EACCES, f"sysfs: {path} is read-only")
            if not isinstance(value, str):
                raise KernelError(errno.EINVAL, f"sysfs: write a string to {path}, not {type(value).__name__}")
            if value:                           # sysfs_kf_write: a write of no bytes never reaches the store
                writer(value)

    def ls(self, path: str = "") -> list[str]:
        """The entries of a directory."""
        p = self._norm(path)
        with self.k.lock:
            links = self._links()
            p = self._resolve(p, links) if p else p
            prefix = p + "/" if p else ""
            names = {key[len(prefix):].split("/", 1)[0] for key in [*self._table(), *links] if key.startswith(prefix)}
        if not names:
            raise _no_such(path)
        return sorted(names)

    def tree(self) -> dict[str, str]:
        """Every attribute path with its mode ("r", "w" or "rw"); the symlinks are ``links()``."""
        with self.k.lock:
            return {p: ("r" if r else "") + ("w" if w else "") for p, (r, w) in sorted(self._table().items())}

    def links(self) -> dict[str, str]:
        """Every symlink, path -> target (both relative to /sys)."""
        with self.k.lock:
            return dict(sorted(self._links().items()))
