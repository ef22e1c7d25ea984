"""pyvswitch's errors, for every layer: OSError subclasses carrying the errno a kernel
would return, and the checks that turn a C return code or a bad integer into one."""
from __future__ import annotations

import errno as _errno
import os
import stat


class VswError(OSError):
    """An operation of the emulated hardware failed.

    ``errno`` is what a kernel would return; the message says what was wrong
    and what was expected.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)

    def __str__(self) -> str:
        code = self.errno or 0
        return f"[{_errno.errorcode.get(code, code)}] {self.strerror}"


class UnknownName(VswError, KeyError):
    """A register, group, layout or device name that does not exist (ENOENT), or
    that is not a name at all (EINVAL: not a string).

    Also a KeyError, so mapping idioms (``in``, ``.get``) keep working.
    """

    def __init__(self, message: str, code: int = _errno.ENOENT) -> None:
        VswError.__init__(self, code, message)

    __str__ = VswError.__str__


def check_uint(v: object, what: str, bits: int = 32, minimum: int = 0) -> int:
    """An integer argument C takes as an unsigned ``bits``-bit value: EINVAL for
    anything else (``bool`` too) or below ``minimum``, ERANGE when it does not fit."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise VswError(_errno.EINVAL, f"{what} must be an integer, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise VswError(_errno.EINVAL, f"{what} must be >= {minimum}, got {v}")
    if v >= 1 << bits:
        raise VswError(_errno.ERANGE, f"{what} must be below 2**{bits}, got {v}")
    return v


def check(ret: int, what: str, explain: dict[int, str] | None = None) -> int:
    """Returns ``ret`` when it is >= 0; raises VswError for a -errno.

    ``explain`` maps errnos to the sentence that says, for this call, what was
    wrong and what was expected; others get the C library's text.
    """
    if ret >= 0:
        return ret
    code = -ret
    detail = (explain or {}).get(code) or os.strerror(code)
    raise VswError(code, f"{what}: {detail}")



#: What each errno means when pyvswitch raises it: the one statement of the errors table
#: (the documentation renders it; tests/unit/test_error_contract.py checks every key is an errno).
ERRNO_MEANINGS: dict[str, str] = {
    "ENOENT": "unknown layout, register, group, device, driver, module or platform (`UnknownName` is also "
              "a `KeyError`); a freed slot; a modalias no module matches; a file that does not exist",
    "EINVAL": "bad argument: a file that is not a regular file (`/dev/zero`, a FIFO) or not UTF-8, a file "
              "descriptor for a path, a released `memoryview`; zero sizes, a burst size that is not a positive "
              "multiple of 8, wrong value types (`bool` is not a count or an index), a PCPU index outside "
              "`0..npcpus-1`, a parameter beyond its bound (module parameters too), a grid over its limits",
    "ERANGE": "a value that does not fit its register or its C type (`run(2**64)`, a module parameter); a slot "
              "number beyond the store; a count over its stated limit",
    "EDOM": "(C) a bus utilisation outside [0, 1) given to `pyvswitch.hw.Bus` (in a platform file: `EINVAL`)",
    "EBADF": "anything on a closed `Hypervisor` (a call in flight when `close()` began ends so too)",
    "EDEADLK": "`close()` from a thread inside `Hypervisor.using()` (a `Scheduler.run` callback or policy): it "
               "would wait for itself; nothing changed",
    "EISDIR": "a platform, schedule, grid or image path that is a directory",
    "EFBIG": "a file over its limit (the limits below)",
    "EPERM": "`del` of a register",
    "ESTALE": "(C) a context handle from before a migration; the API retries on the new path",
    "EACCES": "a slot touched with another machine's id",
    "ENOSPC": "MEM is full (`create_vm`); no context in the store can make room (every one pinned or "
              "running); a store smaller than one slot; guest memory with no room for another region",
    "E2BIG": "mover parameters that cannot keep N and M below the thresholds",
    "EBUSY": "the machine is loaded on another PCPU; `rmmod` of a module in use; binding a bound device; a "
             "driver name registered twice; a device holding resources before its probe; a sweep table "
             "another sweep is writing",
    "ESRCH": "`frm` is not the machine running on the PCPU; no machine running",
    "EXDEV": "a context that lives behind the other path (migrate it first); a foreign-layout image",
    "EIO": "an injected mover or cache (fetch, write-back) fault; nothing changed",
    "EBADMSG": "a corrupt bank or an image whose CRC32C fails",
    "ENODATA": "a truncated context image",
    "EMSGSIZE": "a context image whose payload size does not match its layout",
    "ENOEXEC": "a context image that is not pyvswitch's; a guest ELF image that is not a static x86-64 "
               "executable or whose segments reach outside the guest (naming the segment); a failed guest build",
    "EPROTONOSUPPORT": "a context image of a newer layout version than this pyvswitch reads",
    "ENODEV": "a driver that does not match the device; no switch path (a PCPU, MEM or the memory bus has "
              "no driver); `open(strict=True)` on a platform whose declared fast path did not come up; no "
              "usable KVM for a KVM platform",
    "EEXIST": "a machine, device or bus name used twice; a module inserted twice",
    "ELOOP": "a device link that would close a cycle",
    "EPIPE": "a pipe a verb used (other than its stdout) was closed",
    "EPROBE_DEFER": "(517) `ProbeDefer`: a probe waits for something (a supplier, a DMA provider)",
}


# --- what a user hands in: the one place each limit is written down -------------
#: A platform TOML file (the largest built-in is a few KiB).
MAX_PLATFORM_BYTES = 1 << 20
#: A schedule file for ``read_schedule``: its size.
MAX_SCHEDULE_BYTES = 16 << 20
#: The switches a schedule file may list.
MAX_SCHEDULE_SWITCHES = 1_000_000
#: Switches one ``pyvswitch demo`` makes per phase (each a few microseconds of this process's time).
MAX_DEMO_SWITCHES = 10_000_000
#: VMs beside the host in ``pyvswitch demo`` (and ``trace``).
MAX_DEMO_VMS = 1024
#: Switches one ``pyvswitch trace`` records (about 50 bus records each, all held in memory).
MAX_TRACE_SWITCHES = 10_000
#: A KVM time slice in microseconds (``Scheduler.run``, ``demo --kvm``, ``run``): 1 us to a minute
#: (``solo`` runs a guest unpreempted with a 10 s slice).
SLICE_US_RANGE = (1.0, 60_000_000.0)
#: The address space of one KVM guest in MiB (``run --mem-mib``): one page directory of 2 MiB pages.
MAX_GUEST_MEM_MIB = 1024
#: A guest ELF image file (``run``, ``Scheduler.add``): no guest address space is larger.
MAX_GUEST_IMAGE_BYTES = MAX_GUEST_MEM_MIB << 20
#: The standard input an unmodified Linux program is given whole (``run --stdin FILE --linux``).
MAX_LINUX_STDIN_BYTES = 64 << 20

# --- what a user may leave out: the one place each default is written down ------
# (device parameters have theirs in pyvswitch.schema; the CLI shows these with %(default)s)
#: A KVM time slice in microseconds (``Scheduler.run``, ``run``, ``run --linux``, ``demo --kvm``).
DEFAULT_SLICE_US = 50.0
#: The address space of one C guest in MiB (``run --mem-mib``, ``Scheduler.add``).
DEFAULT_GUEST_MEM_MIB = 64
#: The address space of one unmodified Linux program in MiB (``run --mem-mib ... --linux``, ``load_linux``).
DEFAULT_LINUX_MEM_MIB = 128
#: VMs beside the host in ``pyvswitch demo`` (``--vms``, ``run_demo``).
DEFAULT_DEMO_VMS = 3
#: Switches per phase of ``pyvswitch demo`` (``--switches``, ``run_demo``).
DEFAULT_DEMO_SWITCHES = 10_000


def check_int_in(v: object, what: str, low: int, high: int) -> int:
    """An integer from ``low`` to ``high``: EINVAL for anything else (``bool`` too)
    or below ``low``, ERANGE above ``high`` (the stated limit)."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise VswError(_errno.EINVAL, f"{what} must be an integer, got {type(v).__name__} {v!r}")
    if v < low:
        raise VswError(_errno.EINVAL, f"{what} must be >= {low}, got {v}")
    if v > high:
        raise VswError(_errno.ERANGE, f"{what} must be at most {high}, got {v}")
    return v


def check_number(v: object, what: str, low: float, high: float) -> float:
    """A real number from ``low`` to ``high`` (inclusive): EINVAL for anything else -
    ``bool``, NaN and infinities included."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise VswError(_errno.EINVAL, f"{what} must be a number, got {type(v).__name__} {v!r}")
    if not low <= v <= high:        # NaN fails both
        raise VswError(_errno.EINVAL, f"{what} must be a number from {low:g} to {high:g}, got {v!r}")
    return float(v)


def bytes_of(v: object, what: str) -> bytes:
    """The bytes of a bytes-like argument (a strided memoryview gives the bytes it
    shows): EINVAL for anything else and for a released memoryview."""
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise VswError(_errno.EINVAL, f"{what} is bytes, not {type(v).__name__}")
    if isinstance(v, bytes):
        return v
    try:
        return memoryview(v).tobytes()
    except ValueError:
        raise VswError(_errno.EINVAL, f"{what}: the memoryview was released; expected bytes") from None


def read_regular_file(path: object, what: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (a str, bytes or os.PathLike; never a
    file descriptor), at most ``limit`` of them.  A VswError otherwise: ENOENT, EACCES
    (...) as the open said, EISDIR for a directory, EINVAL for a device, FIFO or socket
    (``/dev/zero`` is never read), EFBIG for a file over the limit."""
    if isinstance(path, bool) or not isinstance(path, (str, bytes, os.PathLike)):
        raise VswError(_errno.EINVAL, f"a {what} is named by a path (str or os.PathLike), not "
                                      f"{type(path).__name__} {path!r}")
    try:
        name = os.fsdecode(path)
    except (TypeError, ValueError) as exc:      # a PathLike that gives neither str nor bytes; bad bytes
        raise VswError(_errno.EINVAL, f"a {what} path must be text: {exc}") from None
    if not name or "\0" in name:
        raise VswError(_errno.EINVAL, f"{name!r} is not a path to a {what}")
    try:    # O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores it
        fd = os.open(name, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise VswError(_errno.EISDIR, f"{name}: is a directory; expected a {what}") from None
    except OSError as exc:
        raise VswError(exc.errno or _errno.EIO, f"{name}: cannot open the {what}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise VswError(_errno.EISDIR, f"{name}: is a directory; expected a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise VswError(_errno.EINVAL, f"{name}: not a regular file (a device, FIFO or socket); expected a {what}")
        if st.st_size > limit:
            raise VswError(_errno.EFBIG, f"{name}: {st.st_size} bytes; a {what} is at most {limit} bytes")
        chunks, got = [], 0
        while got <= limit:         # a file that grows while read still stops one byte past the limit
            chunk = os.read(fd, limit + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise VswError(_errno.EFBIG, f"{name}: more than {limit} bytes; a {what} is at most {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        if isinstance(exc, VswError):
            raise
        raise VswError(exc.errno or _errno.EIO, f"{name}: cannot read the {what}: {exc.strerror}") from None
    finally:
        os.close(fd)


def decode_text(data: bytes, name: str, what: str) -> str:
    """UTF-8 text (a leading byte-order mark dropped, as editors on Windows write one),
    or EINVAL naming the first byte that is not."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise VswError(_errno.EINVAL, f"{name}: not UTF-8 text (byte {exc.start}); expected a {what}") from None
