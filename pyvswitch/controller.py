"""The patent's controller: scan the platform for the identifiers of the
context store, the storage bus and the mover; find the driver modules that
match them; load them, bind, and so enable the fast switch path - then report
what it found, device by device.
"""
from __future__ import annotations

import difflib
import errno
from dataclasses import asdict, dataclass, field
from typing import Any

from .kernel import Kernel, KernelError, ProbeDefer, UnknownName, VswError
from .kernel.dmaengine import Channel
from .kernel.modalias import PLATFORM_PREFIX, id_modalias, of_modalias
from .platform import DeviceSpec, Platform
from .schema import CAP_CONTEXT, INVENTION, ORDER, REQUIRED

#: Bring-up order: what the rest needs comes first.


@dataclass
class DeviceReport:
    """What the controller knows of one device of the platform."""

    name: str
    kind: str | None
    identifier: str                 # compatible strings, or vendor:device on the storage bus
    modalias: str
    present: bool                   # registered in the kernel (storage-bus devices: once enumerated)
    invention: bool
    modules: list[str] = field(default_factory=list)   # registered modules whose aliases match
    driver: str | None = None
    state: str = "absent"           # absent | no driver | bound | deferred | failed
    deferred: str | None = None
    error: str | None = None
    closest: str | None = None      # with no matching module: the nearest identifier a module knows

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def why_unbound(self) -> str:
        """One sentence: why this device has no driver."""
        what = f"{self.name} ({self.kind or 'unknown kind'})"
        if self.state == "absent":
            return f"{what} is absent" + (f": {self.deferred}" if self.deferred else "")
        if not self.modules:
            hint = f" (did you mean {self.closest!r}?)" if self.closest else ""
            return f"{what}: no matching module for {self.identifier}{hint}"
        if self.state == "deferred":
            return f"{what}: probe deferred: {self.deferred}"
        if self.error:
            return f"{what}: probe refused: {self.error}"
        return f"{what} is {self.state}"


@dataclass
class ControllerReport:
    platform: str
    devices: list[DeviceReport]
    fast_path: bool
    reason: str                     # why the fast path is (not) usable - or why no path is
    declared: bool = False          # the platform means the fast path to work (it has a mover)
    usable: bool = True             # a switch path works at all: every device the memory path needs is bound

    @property
    def exit_status(self) -> int:
        """The probe's: 0 the fast path is usable, 1 only the memory path, 2 no
        switch path (what open() refuses with ENODEV)."""
        return 0 if self.fast_path else 1 if self.usable else 2

    @property
    def fallback(self) -> bool:
        """A platform that declares the fast path came up without it."""
        return self.declared and not self.fast_path

    @property
    def problems(self) -> list[str]:
        """Why the fast path is not in use: a sentence per invention device that did not bind."""
        if self.fast_path:
            return []
        broken = [d.why_unbound() for d in self.devices if d.kind in REQUIRED and d.state != "bound"]
        return broken + [d.why_unbound() for d in self.devices if d.invention and d.state != "bound"] \
            or [self.reason]

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "usable": self.usable, "fast_path": self.fast_path, "reason": self.reason,
                "declared": self.declared, "fallback": self.fallback, "problems": self.problems,
                "devices": [d.as_dict() for d in self.devices]}


class Controller:
    """Enables the fast path of one kernel built from one platform."""

    def __init__(self, kernel: Kernel, platform: Platform, client: str = "vsw-switch") -> None:
        self.kernel, self.platform, self.client = kernel, platform, client
        self.channel: Channel | None = None
        self.channel_error: str | None = None

    # --- the scan -----------------------------------------------------------
    def modalias_of(self, s: DeviceSpec) -> str:
        try:
            return self.kernel.device(s.name).modalias
        except UnknownName:     # not enumerated yet: what it will announce
            if s.bus:
                return id_modalias(s.vendor, s.device)
            return of_modalias(s.name, None, s.compatible) if s.compatible else f"{PLATFORM_PREFIX}{s.name}"

    def scan(self) -> list[DeviceReport]:
        """Every device of the platform, the invention's marked, in bring-up order."""
        reports = []
        for s in sorted(self.platform.devices, key=lambda s: ORDER.index(s.kind) if s.kind in ORDER else len(ORDER)):
            ident = ", ".join(s.compatible) or (f"{PLATFORM_PREFIX}{s.name}" if s.vendor is None else "")
            if s.vendor is not None:
                ident = (ident + "; " if ident else "") + f"{s.vendor:04x}:{s.device or 0:04x}"
            alias = self.modalias_of(s)
            r = DeviceReport(s.name, s.kind, ident, alias, present=False, invention=s.invention or (
                                 s.kind is None and any(c.startswith("vsw,") for c in s.compatible)),
                             modules=[m.name for m in self.kernel.modules.lookup(alias)])
            if not r.modules:
                r.closest = self._closest(s)
            try:
                dev = self.kernel.device(s.name)
            except UnknownName:
                r.state = "absent"
                if s.bus:
                    r.deferred = f"on storage bus {s.bus}, not enumerated (its driver is not bound)"
                reports.append(r)
                continue
            r.present = True
            r.driver = dev.driver.name if dev.driver else None
            r.deferred = self.kernel.deferred.get(dev)
            r.error = self.kernel.probe_errors.get(dev.name)
            r.state = ("bound" if r.driver else "deferred" if r.deferred else "failed" if r.error
                       else "unbound" if r.modules else "no matching module")
            reports.append(r)
        return reports

    def _closest(self, s: DeviceSpec) -> str | None:
        """The identifier a registered module knows that is nearest to the device's."""
        compatibles: set[str] = set()
        ids: set[str] = set()
        for m in self.kernel.modules.modules.values():
            for cls in m.driver_classes:
                compatibles.update(getattr(cls, "of_match_table", ()) or ())
                ids.update(f"{i.vendor:04x}:{i.device:04x}" for i in (getattr(cls, "id_table", ()) or ())
                           if i.vendor is not None and i.device is not None)
        for want, known in [(c, compatibles) for c in s.compatible] + (
                [(f"{s.vendor:04x}:{s.device or 0:04x}", ids)] if s.vendor is not None else []):
            near = difflib.get_close_matches(want, sorted(known), n=1, cutoff=0.6)
            if near:
                return near[0]
        return None

    # --- enabling -----------------------------------------------------------
    def enable(self) -> ControllerReport:
        """Loads the matching modules of every device (the invention's after the
        parts they need), binds, and takes a mover channel for the switch."""
        for kind in ORDER:
            for s in self.platform.of_kind(kind):
                self._load_for(s)
        for s in self.platform.devices:
            if s.kind is None:
                self._load_for(s)
        self.kernel.wait_for_device_probe()     # asynchronous probes included: then what bound, bound
        self.acquire_channel()
        return self.report()

    def _load_for(self, s: DeviceSpec) -> None:
        try:
            self.kernel.device(s.name)
        except UnknownName:
            return              # a storage-bus device before its bus: loaded when it appears
        try:
            self.kernel.modprobe(self.modalias_of(s))
        except KernelError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def acquire_channel(self) -> Channel | None:
        """Takes a channel of the mover if there is one; the reason otherwise."""
        if self.channel is not None and self.channel.client is not None:
            return self.channel
        self.channel = None
        unsynced = self._unsynced_suppliers()
        if unsynced:
            self.channel_error = f"the mover's suppliers are not in sync yet: {', '.join(unsynced)}"
            return None
        try:
            self.channel = self.kernel.dma.request_channel(CAP_CONTEXT, self.client, self._revoked)
            self.channel_error = None
        except ProbeDefer as exc:
            self.channel_error = exc.reason
        except VswError as exc:
            self.channel_error = str(exc)
        return self.channel

    def _unsynced_suppliers(self) -> list[str]:
        """The fast path waits for the mover's suppliers' sync_state (every
        consumer of the store and the storage bus has probed)."""
        out = []
        for s in self.platform.of_kind("mover"):
            try:
                mover = self.kernel.device(s.name)
            except UnknownName:
                continue
            out += [d.name for d in mover.suppliers
                    if d.driver is not None and d.driver.sync_state is not None and not d.state_synced]
        return out

    def _revoked(self, chan: Channel) -> None:
        self.channel = None
        self.channel_error = f"mover {chan.provider.name} went away"

    def release(self) -> None:
        if self.channel is not None:
            self.channel.release()
            self.channel = None

    def report(self) -> ControllerReport:
        """What the scan found, and the verdict open() reaches: no switch path
        when a device the memory path needs (a PCPU, MEM, the memory bus) is not
        bound; the fast path when, besides, the mover's channel is held."""
        devices = self.scan()
        missing = [k for k in INVENTION if not self.platform.of_kind(k)]
        broken = [d for d in devices if d.kind in REQUIRED and d.state != "bound"]
        if broken:
            reason = "no switch path: " + "; ".join(d.why_unbound() for d in broken)
            return ControllerReport(self.platform.name, devices, False, reason, self.platform.declares_fast_path,
                                    usable=False)
        if missing:
            reason = "the platform has no " + ", ".join(f"vsw,{k}" for k in missing)
        else:
            unbound = [d for d in devices if d.invention and d.state != "bound"]
            if unbound:
                reason = unbound[0].why_unbound()
            elif self.channel is None:
                reason = f"no mover channel: {self.channel_error}"
            else:
                reason = f"mover {self.channel.provider.name} channel {self.channel.index} held by {self.client}"
        return ControllerReport(self.platform.name, devices, self.channel is not None, reason,
                                self.platform.declares_fast_path)


__all__ = ["Controller", "ControllerReport", "DeviceReport"]
