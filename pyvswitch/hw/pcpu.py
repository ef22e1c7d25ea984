"""The PCPU model and the switch: one C call per switch."""
from __future__ import annotations

import errno
import os
import time
import weakref
from dataclasses import dataclass
from typing import Any

from ..errors import VswError, check, check_uint
from ..schema import KINDS as SCHEMA
from ..schema import default
from ._ffi import ffi, lib
from .cparams import c_value, refused
from .layout import Layout, RegisterView
from .path import Path
from .stats import ContextHandle, Switcher, SwitchStats, stats_c
from .store import Slot
from .trace import Trace

CPU_MHZ, EXIT_ENTRY_CYCLES = default("pcpu", "cpu_mhz"), default("pcpu", "exit_entry_cycles")


@dataclass(frozen=True)
class PcpuState:
    owner: int
    slot: int
    dirty_mask: int
    now_ns: float
    switches: int
    epoch: int = 0          # what context handles must carry (a migration changes it)


_SlotHandles = dict[int, tuple[int, ContextHandle]]     # slot -> (owner, its context handle)


class Pcpu:
    """A physical CPU: a register file in a layout, the machine running on it.

    Calls on one PCPU from several threads are safe: the C side refuses a second
    caller with EAGAIN and this wrapper then retries, so calls are serialised and
    the state is never torn.  Different PCPUs switch in parallel.
    """

    def __init__(self, layout: "str | Layout", cpu_mhz: int = CPU_MHZ, exit_entry_cycles: int = EXIT_ENTRY_CYCLES) -> None:
        self.layout = Layout.get(layout)
        p = ffi.new("struct vsw_pcpu_params *")      # C decides the bounds; cffi, what fits its types
        p.layout = self.layout.id
        p.cpu_mhz = c_value("uint32_t", cpu_mhz, "pcpu", "cpu_mhz", "PCPU")
        p.exit_entry_cycles = c_value("uint32_t", exit_entry_cycles, "pcpu", "exit_entry_cycles", "PCPU")
        out = ffi.new("struct vsw_pcpu **")
        check(lib.vsw_pcpu_create(p, out), "pcpu create", refused([
            (SCHEMA["pcpu"].param("cpu_mhz"), cpu_mhz),
            (SCHEMA["pcpu"].param("exit_entry_cycles"), exit_entry_cycles)]))
        self._h = ffi.gc(out[0], lib.vsw_pcpu_destroy)
        self._switcher = Switcher([self._h])   # Pcpu.switch: the API's switch, on this one PCPU
        # Pcpu.switch's context handles, by path (held weakly: a path that goes takes its
        # handles with it) and slot (one owner's handle at a time: a slot's next owner replaces it)
        self._handles: dict[int, tuple[weakref.ref[Path], _SlotHandles]] = {}
        # (owner, path, handle, that path's _SlotHandles): what Pcpu.switch loaded last
        self._loaded: tuple[int, Path, ContextHandle, _SlotHandles] | None = None
        self._regs = ffi.buffer(lib.vsw_pcpu_regs(self._h), self.layout.size)
        self.trace: Trace | None = None

    @property
    def closed(self) -> bool:
        """Whether the PCPU is retired (``close``): every call is refused from then on."""
        return self._h is None

    @property
    def handle(self) -> object:
        if self._h is None:
            raise VswError(errno.EBADF, "this PCPU is closed")
        return self._h

    def state(self) -> PcpuState:
        s = ffi.new("struct vsw_pcpu_state *")
        check(lib.vsw_pcpu_state(self.handle, s), "pcpu state")
        return PcpuState(s.owner, s.slot, s.dirty_mask, s.now_ps / 1000.0, s.switches, s.epoch)

    @property
    def owner(self) -> int:
        """The machine running (0: idle); no allocation, safe while others switch."""
        return int(lib.vsw_pcpu_owner(self.handle))

    def raw(self) -> memoryview:
        """A read-only, zero-copy view of the register file (not synchronised with
        switches: for a caller that owns this PCPU, e.g. the KVM scheduler)."""
        self.handle                         # EBADF once closed  # noqa: B018
        return memoryview(self._regs).toreadonly()

    def _span(self, offset: int, size: int) -> None:
        if not (_is_int(offset) and _is_int(size) and size > 0 and 0 <= offset <= offset + size <= self.layout.size):
            raise VswError(errno.EINVAL, f"bytes {offset!r}+{size!r} are outside the {self.layout.size}-byte register file")

    def read(self, offset: int, size: int, owner: int = 0) -> bytes:
        """Reads the register file of the running machine (of ``owner``, when given:
        ESRCH if another machine runs), atomically against switches."""
        self._span(offset, size)
        buf = ffi.new("char[]", size)
        check(self._call(lib.vsw_pcpu_read, owner, offset, buf, size), "register read", _ACCESS_ERRORS)
        return ffi.buffer(buf)[:]

    # --- the quiesce point a migration uses (csrc/gate.c) ---------------------------
    def freeze(self) -> None:
        """Waits for the call inside to leave, then refuses other threads (EAGAIN);
        the calling thread becomes the only one let in (callers serialise freezes)."""
        check(lib.vsw_pcpu_freeze(self.handle), "pcpu freeze", {errno.ENODEV: "this PCPU is retired"})

    def thaw(self, epoch: int) -> None:
        """Opens the gate; context handles must carry ``epoch`` from now on."""
        check_uint(epoch, "epoch", 64)
        check(lib.vsw_pcpu_thaw(self.handle, epoch), "pcpu thaw",
              {errno.EPERM: "another thread's migration has this PCPU frozen", errno.ENODEV: "this PCPU is retired"})

    def _call(self, fn: object, *args: object) -> int:
        """Calls fn(handle, *args), again while another thread is inside (EAGAIN):
        calls are brief, and a migration's freeze ends with its thaw."""
        while (r := fn(self.handle, *args)) == -errno.EAGAIN:  # type: ignore[operator]
            time.sleep(0)                   # let the thread inside finish
        return r

    def write(self, offset: int, data: bytes, owner: int = 0) -> None:
        """Writes the register file of the running machine (of ``owner``, when given)
        and marks the groups dirty; atomic against switches."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise VswError(errno.EINVAL, f"register data is bytes, not {type(data).__name__}")
        raw = memoryview(data).cast("B").tobytes()
        self._span(offset, len(raw))
        check(self._call(lib.vsw_pcpu_write, owner, offset, raw, len(raw)), "register write", _ACCESS_ERRORS)

    @property
    def regs(self) -> RegisterView:
        """The running machine's registers by name."""
        return RegisterView(self.layout, self.read, self.write)

    def mark_dirty(self, mask: int) -> None:
        check_uint(mask, "dirty mask")
        check(lib.vsw_pcpu_mark_dirty(self.handle, mask), "mark dirty",
              {errno.ESRCH: "no machine is running on this PCPU", errno.EINVAL: f"mask {mask:#x} is not a set of this layout's groups"})

    def run(self, steps: int) -> None:
        """Runs the deterministic workload for ``steps`` steps on the running machine."""
        check_count(steps, "steps")
        check(self._call(lib.vsw_pcpu_run, steps), "run", _ACCESS_ERRORS)

    def export(self, generation: int = 0, owner: int = 0) -> bytes:
        """The running machine's context (of ``owner``, when given) as an image."""
        check_uint(generation, "generation", 64)
        check_uint(owner, "owner", 32)
        buf = bytearray(self.layout.image_size)
        n = check(self._call(lib.vsw_pcpu_export, owner, generation, ffi.from_buffer(buf), len(buf)), "export",
                  _ACCESS_ERRORS)
        return bytes(buf[:n])

    def set_trace(self, trace: Trace | None) -> None:
        """Records this PCPU's switches in ``trace`` (None: stops recording)."""
        if trace is not None and not isinstance(trace, Trace):
            raise VswError(errno.EINVAL, f"set_trace takes a pyvswitch.hw.Trace or None, not {type(trace).__name__}")
        check(self._call(lib.vsw_pcpu_set_trace, trace.handle if trace else ffi.NULL), "set trace")
        self.trace = trace

    def switch(self, path: Path, frm: int, to: Slot | None) -> SwitchStats:
        """Saves machine ``frm`` (0: the PCPU is idle), loads ``to`` (None: leave idle); all or nothing.

        The one switch (``vsw_switch``) on context handles of ``path`` that this
        PCPU keeps for the slots it is asked to load.  Another thread inside the
        same PCPU makes C refuse with EAGAIN; this wrapper then waits its turn,
        so callers are serialised.
        """
        loaded = self._loaded
        if loaded is not None and to.__class__ is Slot and frm.__class__ is int and loaded[0] == frm and \
                loaded[1] is path and not path.closed:  # the usual call: frm was loaded here by the last one
            kept = loaded[3].get(to.index)                              # type: ignore[union-attr]
            if kept is not None and kept[0] == to.owner:                # type: ignore[union-attr]
                r = self._switcher.switch(loaded[2], kept[1], None, None)
                if r.__class__ is not int:
                    self._loaded = (to.owner, path, kept[1], loaded[3])  # type: ignore[union-attr]
                    return r                                            # type: ignore[no-any-return]
                if r not in (-errno.EAGAIN, -errno.ESTALE):             # refused: nothing changed, said so
                    raise_switch_error(r, f"machine {frm}" if frm else None, f"machine {to.owner}",  # type: ignore
                                       "this PCPU", path.name)
        return self._switch_checked(path, frm, to)

    def _switch_checked(self, path: Path, frm: int, to: Slot | None) -> SwitchStats:
        """Pcpu.switch with every argument checked, handles made as needed, EAGAIN
        waited out, a new epoch followed; raises why a switch was refused."""
        if not isinstance(path, Path) or (to is not None and not isinstance(to, Slot)) or \
                not isinstance(frm, int) or isinstance(frm, bool):
            raise VswError(errno.EINVAL, f"switch: bad machine or slot arguments (frm={frm!r}, to={to!r})")
        self.handle                         # EBADF, saying which one is closed  # noqa: B018
        path.check_open()                   # C reaches the store and buses through the path
        for _ in range(2):                  # a migration rekeyed the PCPU: handles of the new epoch, once
            r = self._switch_slots(path, frm, to)
            if not isinstance(r, int) or r != -errno.ESTALE:
                break
            self._handles.clear()
            self._loaded = None
        if isinstance(r, int):
            raise_switch_error(r, f"machine {frm}" if frm else None, f"machine {to.owner}" if to else None,
                               "this PCPU", path.name)
        return r

    def _switch_slots(self, path: Path, frm: int, to: Slot | None) -> "SwitchStats | int":
        """One try of ``switch``: its stats, or -errno (nothing changed)."""
        fh = th = None
        loaded = self._loaded
        if frm and loaded is not None and loaded[0] == frm and loaded[1] is path:
            fh = loaded[2]                  # the handle it was loaded through (C: ESRCH if it runs no longer)
        elif frm:                           # loaded some other way (or not at all)
            st = self.state()
            if st.owner != frm:
                return -errno.ESRCH         # as C says it: `frm` is not what runs here
            fh = self._handle_of(path, st.slot, frm, st.epoch)
            if isinstance(fh, int):
                return -errno.EXDEV         # its slot is not of this path's store: it lives behind another path
        if to is not None:
            th = self._handle_of(path, to.index, to.owner)
            if isinstance(th, int):
                return th
        if fh is None and th is None:
            return -errno.EINVAL
        while (r := self._switcher.switch(fh, th, None, None)) == -errno.EAGAIN:
            time.sleep(0)                   # another thread is inside: its turn first
        if not isinstance(r, int):
            self._loaded = (to.owner, path, th, self._slot_handles(path)) if th is not None else None
        return r

    def _handle_of(self, path: Path, slot: int, owner: int, epoch: int | None = None) -> "ContextHandle | int":
        """The context handle of ``owner``'s ``slot`` behind ``path`` (made once, kept), or -errno."""
        handles = self._slot_handles(path)
        kept = handles.get(slot)
        if kept is not None and kept[0] == owner:
            return kept[1]
        if epoch is None:
            epoch = self.state().epoch
        out = ffi.new("struct vsw_ctx **")
        r = lib.vsw_ctx_create(path.handle, slot, owner, epoch, out)
        if r < 0:
            return int(r)
        h = ContextHandle()
        self._switcher.bind(h, ffi.gc(out[0], lib.vsw_ctx_destroy))
        handles[slot] = (owner, h)         # the slot's last owner's handle goes (a caller may still hold it)
        return h

    def _slot_handles(self, path: Path) -> "_SlotHandles":
        """The handles kept for ``path``'s slots; forgotten when ``path`` goes."""
        key = id(path)
        kept = self._handles.get(key)
        if kept is not None and kept[0]() is path:
            return kept[1]
        handles: _SlotHandles = {}
        table = self._handles
        self._handles[key] = (weakref.ref(path, lambda _, table=table, key=key: table.pop(key, None)), handles)
        return handles

    def switch_ctx(self, frm: Any, to: Any) -> SwitchStats:
        """The switch between two cffi context handles (None: idle) - which fetches a
        cached context into the store first when it is not there."""
        stats = SwitchStats()
        args = (self.handle, frm if frm is not None else ffi.NULL, to if to is not None else ffi.NULL, stats_c(stats))
        while (r := lib.vsw_switch(*args)) == -errno.EAGAIN:
            time.sleep(0)                   # another thread is inside, or a switch in flight holds the room
        self._loaded = None                 # loaded here through a handle Pcpu.switch does not keep
        if r < 0:
            raise_switch_error(r, "the running machine" if frm is not None else None,
                               "the machine" if to is not None else None, "this PCPU", "store")
        return stats

    def forget(self, machine_id: int) -> None:
        """Machine ``machine_id`` is destroyed: what this PCPU keeps for it goes too
        (a plain PCPU keeps nothing; a KVM one, its region of guest memory)."""

    def close(self) -> None:
        """Retires the PCPU: every later call, from any thread still holding its
        handle, is refused (ENODEV); the memory goes when the last handle does."""
        if self._h is not None:
            lib.vsw_pcpu_retire(self._h)
            self._h = None


_ACCESS_ERRORS = {errno.ESRCH: "no machine is running on this PCPU, or not that one",
                  errno.ENODEV: "this PCPU is retired (its driver unbound)"}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_count(v: object, what: str) -> int:
    """A non-negative 64-bit count (``bool`` is not a count): EINVAL or ERANGE otherwise."""
    return check_uint(v, what, 64)


#: Why a switch was refused, by errno: the one table, for the hw owners and the
#: API alike.  Nothing changed in any case.  {frm}, {to}: the machines' names;
#: {where}: the PCPU; {path}: the switch path.
SWITCH_ERRORS = {
    errno.ESRCH: "{frm} was not running on {where}",
    errno.EBUSY: "{to} is running on another PCPU",
    errno.EACCES: "the slot named does not belong to {to}",
    errno.ENOENT: "{to} has no slot (it was freed)",
    errno.ERANGE: "slot number beyond the store",
    errno.EALREADY: "{to} is already running there",
    errno.EXDEV: "the running machine's context lives behind the other switch path (or another layout)",
    errno.EIO: "the {path} path failed a transfer (injected fault)",
    errno.EBADMSG: "{to}'s saved context failed its integrity check: its bank is corrupt",
    errno.EINVAL: "nothing to do: no machine running and none to load",
    errno.ENOSPC: "{to}'s context is not in the store and none there can make room: every one is pinned or running",
    errno.EAGAIN: "another thread is inside this PCPU, or a switch in flight holds the only slot that could make room",
    errno.ENOMEM: "no memory to back a home in MEM for the context the store gives up",
}


def raise_switch_error(r: int, frm: str | None, to: str | None, where: str, path: str) -> None:
    """Says why a switch of ``frm`` to ``to`` (None: idle) on ``where`` was refused."""
    code = -r
    what = f"switch {frm or 'idle'} -> {to or 'idle'} on {where} refused, nothing changed"
    if code == errno.ESRCH and frm is None:
        why = f"{where} was not idle"
    else:
        why = SWITCH_ERRORS.get(code, os.strerror(code)).format(frm=frm, to=to or "idle", where=where, path=path)
    raise VswError(code, f"{what}: {why}")
