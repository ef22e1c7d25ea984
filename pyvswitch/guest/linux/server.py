"""The Linux system-call ABI, served per guest and deterministically.

A ``LinuxProcess`` owns one guest's view of the kernel: its memory (the
guest's own region, addressed by guest-virtual address: virtual ``va`` is byte
``va`` of the region), its break and anonymous mappings, its file descriptors
(0-2: stdin from bytes, stdout and stderr captured; files and directories under
a read-only host directory), its recorded signal dispositions, its clock and its
random stream.  ``call(nr, args)`` serves one system call and returns what the
kernel would put in RAX (a negative errno on failure).  Nothing here depends on
KVM: the same process can be driven by any CPU model, or by a test.

Every guest pointer is checked against the region: a bad one is EFAULT, never a
byte read or written outside the guest.  Every answer depends only on the
guest's own calls, its seed and the read-only directory, so a guest gives the
same output alone and preempted among others.

A LinuxProcess is driven by one thread at a time - the scheduler that owns the
vCPU its guest runs on - and holds no global state: every guest has its own.
"""
from __future__ import annotations

import errno
import os
import random
import stat as st
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ...hw import VswError
from ..image import LOAD_FLOOR

PAGE = 4096
MAX_IO = 1 << 24                # bytes one read/write may move
MAX_OUTPUT = 16 << 20           # stdout + stderr a guest may print
MAX_FDS = 256
MAX_ENOSYS_KEYS = 64            # unserved call numbers counted one by one; the rest together (key -1)
EPOCH_NS = 1_767_225_600 * 10**9    # the guest clock starts at 2026-01-01T00:00:00Z ...
TICK_NS = 1000                      # ... and advances 1 us per system call: deterministic

# x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl)
NR = dict(read=0, write=1, open=2, close=3, stat=4, fstat=5, lstat=6, lseek=8, mmap=9, mprotect=10, munmap=11,
          brk=12, rt_sigaction=13, rt_sigprocmask=14, ioctl=16, pread64=17, readv=19, writev=20, access=21,
          mremap=25, madvise=28, dup=32, dup2=33, getpid=39, exit=60, uname=63, fcntl=72, getcwd=79, readlink=89,
          gettimeofday=96, getrlimit=97, getuid=102, getgid=104, geteuid=107, getegid=108, getppid=110,
          getpgrp=111, sigaltstack=131, arch_prctl=158, gettid=186, time=201, sched_getaffinity=204,
          getdents64=217, set_tid_address=218, clock_gettime=228, clock_getres=229, exit_group=231, openat=257,
          newfstatat=262, readlinkat=267, faccessat=269, set_robust_list=273, dup3=292, prlimit64=302,
          getrandom=318, rseq=334, faccessat2=439)
NAMES = {v: k for k, v in NR.items()}

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = 0x100, 0x1000
O_ACCMODE, O_CREAT, O_TRUNC, O_DIRECTORY, O_NOFOLLOW = 3, 0o100, 0o1000, 0o200000, 0o400000
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x1, 0x2, 0x10, 0x20
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
RLIM_INFINITY = (1 << 64) - 1
MAX_OFF = (1 << 63) - 1          # the largest file offset (MAX_LFS_FILESIZE)
MAX_SYMLINKS = 40


class Fault(Exception):
    """A guest pointer outside the guest's memory: the call fails with EFAULT."""


class Errno(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class OpenFile:
    path: str                       # the guest's path, normalised
    host_fd: int | None = None      # a regular file under --ro-dir
    entries: list[tuple[str, int, int]] | None = None     # a directory: (name, ino, d_type)
    pos: int = 0
    kind: str = "file"              # file | dir | stdin | stdout | stderr


@dataclass
class LinuxProcess:
    """One guest's kernel state; ``call`` serves a system call."""

    mem: memoryview                 # the guest's region: byte va is virtual address va
    size: int                       # its address space: [LOAD_FLOOR, size)
    brk_start: int                  # page-aligned end of the image
    mmap_top: int                   # mappings grow down from here (the stack is above)
    argv0: bytes = b""
    ro_dir: str | None = None
    stdin: bytes = b""
    seed: int = 0
    pid: int = 1000
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    exit_status: int | None = None
    fs_base: int = 0
    gs_base: int = 0
    calls: int = 0
    counts: Counter = field(default_factory=Counter)        # served calls by name
    enosys: Counter = field(default_factory=Counter)        # unserved calls by number
    sigactions: dict[int, bytes] = field(default_factory=dict)
    sigmask: int = 0
    tid_address: int = 0

    def __post_init__(self) -> None:
        if self.ro_dir is not None:
            self.ro_dir = os.path.realpath(self.ro_dir)
            if not os.path.isdir(self.ro_dir):
                raise VswError(errno.ENOTDIR, f"--ro-dir {self.ro_dir!r} is not a directory")
        self.brk = self.brk_start
        self.brk_max = self.brk_start
        self.maps: dict[int, int] = {}          # start -> length of each anonymous mapping
        self.mmap_low = self.mmap_top           # lowest address handed out so far
        self.fds: dict[int, OpenFile] = {0: OpenFile("<stdin>", kind="stdin"), 1: OpenFile("<stdout>", kind="stdout"),
                                         2: OpenFile("<stderr>", kind="stderr")}
        self.rng = random.Random(self.seed)
        self.cwd = "/"
        self._table: dict[int, Callable[..., int]] = {
            nr: getattr(self, f"sys_{name}") for name, nr in NR.items() if hasattr(self, f"sys_{name}")}

    # ---- guest memory -------------------------------------------------------
    def _check(self, va: int, n: int) -> None:
        if n == 0:
            return                  # as Linux: nothing to move, nothing checked
        if n < 0 or va < LOAD_FLOOR or va + n > self.size:
            raise Fault()

    def read(self, va: int, n: int) -> bytes:
        self._check(va, n)
        return bytes(self.mem[va:va + n])

    def write(self, va: int, data: bytes) -> None:
        self._check(va, len(data))
        self.mem[va:va + len(data)] = data

    def cstring(self, va: int, limit: int = 4096) -> bytes:
        """A NUL-terminated string of the guest (ENAMETOOLONG past ``limit``)."""
        out = bytearray()
        while len(out) < limit:
            self._check(va, 1)
            chunk = bytes(self.mem[va:min(va + 256, self.size)])
            i = chunk.find(b"\0")
            if i >= 0:
                return bytes(out + chunk[:i])
            out += chunk
            va += len(chunk)
        raise Errno(errno.ENAMETOOLONG)

    def _zero(self, va: int, n: int) -> None:
        self.mem[va:va + n] = bytes(n)

    # ---- the entry ----------------------------------------------------------
    def call(self, nr: int, args: tuple[int, ...]) -> int:
        """Serves system call ``nr`` with its six arguments; RAX as the kernel leaves it."""
        self.calls += 1
        fn = self._table.get(nr)
        if fn is None:
            # by number, up to MAX_ENOSYS_KEYS of them: a guest looping over bogus numbers
            # must not grow the table (and the report printed) with each one
            self.enosys[nr if nr in self.enosys or len(self.enosys) < MAX_ENOSYS_KEYS else -1] += 1
            return -errno.ENOSYS
        self.counts[fn.__name__[4:]] += 1
        try:
            r = fn(*args)
        except Fault:
            return -errno.EFAULT
        except Errno as e:
            return -e.code
        except OSError as e:                        # the host refused (EACCES, EIO, its own EMFILE ...):
            return -(e.errno or errno.EIO)          # this guest's call fails, not every guest's run
        return r

    @property
    def clock_ns(self) -> int:
        return EPOCH_NS + self.calls * TICK_NS

    # ---- process ------------------------------------------------------------
    def sys_exit(self, status: int, *_: int) -> int:
        self.exit_status = status & 0xFF
        return 0

    sys_exit_group = sys_exit

    def sys_getpid(self, *_: int) -> int:
        return self.pid

    sys_gettid = sys_getpid
    sys_getpgrp = sys_getpid

    def sys_getppid(self, *_: int) -> int:
        return 1

    def sys_getuid(self, *_: int) -> int:
        return os.getuid()

    sys_geteuid = sys_getuid

    def sys_getgid(self, *_: int) -> int:
        return os.getgid()

    sys_getegid = sys_getgid

    def sys_set_tid_address(self, addr: int, *_: int) -> int:
        self.tid_address = addr
        return self.pid

    def sys_set_robust_list(self, *_: int) -> int:
        return 0

    def sys_rseq(self, *_: int) -> int:
        raise Errno(errno.ENOSYS)

    def sys_arch_prctl(self, code: int, addr: int, *_: int) -> int:
        if code == ARCH_SET_FS:
            self.fs_base = addr
        elif code == ARCH_SET_GS:
            self.gs_base = addr
        elif code == ARCH_GET_FS:
            self.write(addr, struct.pack("<Q", self.fs_base))
        elif code == ARCH_GET_GS:
            self.write(addr, struct.pack("<Q", self.gs_base))
        else:
            raise Errno(errno.EINVAL)
        return 0

    def sys_uname(self, buf: int, *_: int) -> int:
        u = os.uname()
        fields = [b"Linux", b"pyvswitch", u.release.encode(), b"#1 pyvswitch", b"x86_64", b"(none)"]
        self.write(buf, b"".join(f[:64].ljust(65, b"\0") for f in fields))
        return 0

    def sys_rt_sigaction(self, sig: int, act: int, oldact: int, sigsetsize: int, *_: int) -> int:
        if not 1 <= sig <= 64 or sig in (9, 19) and act or sigsetsize != 8:
            raise Errno(errno.EINVAL)
        old = self.sigactions.get(sig, bytes(32))
        new = self.read(act, 32) if act else None
        if oldact:
            self.write(oldact, old)
        if new is not None:
            self.sigactions[sig] = new
        return 0

    def sys_rt_sigprocmask(self, how: int, set_: int, oldset: int, sigsetsize: int, *_: int) -> int:
        if sigsetsize != 8:
            raise Errno(errno.EINVAL)
        new = struct.unpack("<Q", self.read(set_, 8))[0] if set_ else None
        if new is not None and how not in (0, 1, 2):
            raise Errno(errno.EINVAL)
        if oldset:
            self.write(oldset, struct.pack("<Q", self.sigmask))
        if new is not None:
            new &= ~((1 << 8) | (1 << 18))          # SIGKILL and SIGSTOP cannot be blocked
            self.sigmask = (self.sigmask | new if how == 0 else self.sigmask & ~new if how == 1 else new)
        return 0

    def sys_sigaltstack(self, ss: int, old: int, *_: int) -> int:
        if old:
            self.write(old, struct.pack("<QiiQ", 0, 2, 0, 0))      # SS_DISABLE
        if ss:
            self.read(ss, 24)
        return 0

    def sys_prlimit64(self, pid: int, resource: int, new: int, old: int, *_: int) -> int:
        if pid not in (0, self.pid):
            raise Errno(errno.ESRCH)
        if not 0 <= resource < 16:
            raise Errno(errno.EINVAL)
        if new:
            self.read(new, 16)
            raise Errno(errno.EPERM)
        if old:
            cur = {3: 8 << 20, 7: MAX_FDS}.get(resource, RLIM_INFINITY)     # STACK, NOFILE
            self.write(old, struct.pack("<QQ", cur, cur))
        return 0

    def sys_getrlimit(self, resource: int, old: int, *_: int) -> int:
        return self.sys_prlimit64(0, resource, 0, old)

    def sys_sched_getaffinity(self, pid: int, size: int, mask: int, *_: int) -> int:
        if size < 8:
            raise Errno(errno.EINVAL)
        self.write(mask, struct.pack("<Q", 1))
        return 8

    # ---- time and randomness ------------------------------------------------
    def sys_clock_gettime(self, clk: int, tp: int, *_: int) -> int:
        if not 0 <= clk <= 11:
            raise Errno(errno.EINVAL)
        ns = self.clock_ns if clk in (0, 8, 11) else self.calls * TICK_NS     # REALTIME-like or MONOTONIC-like
        self.write(tp, struct.pack("<qq", ns // 10**9, ns % 10**9))
        return 0

    def sys_clock_getres(self, clk: int, tp: int, *_: int) -> int:
        if tp:
            self.write(tp, struct.pack("<qq", 0, TICK_NS))
        return 0

    def sys_gettimeofday(self, tv: int, tz: int, *_: int) -> int:
        ns = self.clock_ns
        if tv:
            self.write(tv, struct.pack("<qq", ns // 10**9, ns % 10**9 // 1000))
        if tz:
            self.write(tz, bytes(8))
        return 0

    def sys_time(self, t: int, *_: int) -> int:
        s = self.clock_ns // 10**9
        if t:
            self.write(t, struct.pack("<q", s))
        return s

    def sys_getrandom(self, buf: int, n: int, flags: int, *_: int) -> int:
        if flags & ~0x7:
            raise Errno(errno.EINVAL)
        n = min(n, 1 << 20)
        self._check(buf, n)
        self.write(buf, self.rng.randbytes(n))
        return n

    # ---- memory -------------------------------------------------------------
    def sys_brk(self, addr: int, *_: int) -> int:
        if addr == 0 or addr < self.brk_start or addr > self.mmap_low:
            return self.brk                         # Linux: the unchanged break on failure
        end = -(-addr // PAGE) * PAGE
        old_end = -(-self.brk // PAGE) * PAGE
        if end < old_end:                           # pages given back: grown again, they read as zeros
            self._zero(end, old_end - end)
        if addr > self.brk_max:                     # fresh memory reads as zeros
            self._zero(self.brk_max, end - self.brk_max) if end > self.brk_max else None
            self.brk_max = end
        self.brk = addr
        return self.brk

    def _take(self, length: int) -> int:
        """The highest free page-aligned range of ``length`` bytes under mmap_top."""
        top = self.mmap_top
        for start in sorted(self.maps, reverse=True):
            end = start + self.maps[start]
            if top - end >= length:
                break
            top = min(top, start)
        start = top - length
        if start < self.brk_max:
            raise Errno(errno.ENOMEM)
        return start

    def _unmap(self, start: int, end: int) -> None:
        for s in list(self.maps):
            e = s + self.maps[s]
            if e <= start or s >= end:
                continue
            del self.maps[s]
            if s < start:
                self.maps[s] = start - s
            if e > end:
                self.maps[end] = e - end

    def sys_mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, off: int) -> int:
        fd = _s32(fd)
        if length == 0 or length > self.size or addr % PAGE or off % PAGE:
            raise Errno(errno.EINVAL)
        if flags & 0x3 not in (MAP_SHARED, MAP_PRIVATE):
            raise Errno(errno.EINVAL)
        n = -(-length // PAGE) * PAGE
        anon = bool(flags & MAP_ANONYMOUS)
        if not anon and off + n > MAX_OFF:
            raise Errno(errno.EOVERFLOW)            # as Linux: past the largest file offset
        f = None
        if not anon:
            f = self._fd(fd)
            if f.host_fd is None:
                raise Errno(errno.ENODEV if f.kind != "dir" else errno.ENODEV)
            if flags & 0x3 == MAP_SHARED and prot & 0x2:
                raise Errno(errno.EACCES)           # read-only files
        elif flags & 0x3 == MAP_SHARED:
            raise Errno(errno.EINVAL)               # no sharing: one process
        if flags & MAP_FIXED:
            if addr < self.brk_max or addr + n > self.mmap_top:
                raise Errno(errno.ENOMEM)
            start = addr
            self._unmap(start, start + n)
        else:
            start = self._take(n)
        self._zero(start, n)
        if f is not None and f.host_fd is not None:
            for at in range(0, length, MAX_IO):     # the whole file, as Linux maps it
                data = os.pread(f.host_fd, min(length - at, MAX_IO), off + at)
                self.write(start + at, data)
                if len(data) < min(length - at, MAX_IO):
                    break
        self.maps[start] = n
        self.mmap_low = min(self.mmap_low, start)
        return start

    def _mapped(self, addr: int, length: int) -> bool:
        end, a = addr + length, addr
        while a < end:
            s = next((s for s in self.maps if s <= a < s + self.maps[s]), None)
            if s is None:
                return False
            a = s + self.maps[s]
        return True

    def sys_munmap(self, addr: int, length: int, *_: int) -> int:
        if addr % PAGE or length == 0 or addr < LOAD_FLOOR or addr + length > self.size:
            raise Errno(errno.EINVAL)
        n = -(-length // PAGE) * PAGE
        for s in list(self.maps):
            e = s + self.maps[s]
            lo, hi = max(s, addr), min(e, addr + n)
            if lo < hi:
                self._zero(lo, hi - lo)
        self._unmap(addr, addr + n)
        return 0

    def sys_mprotect(self, addr: int, length: int, prot: int, *_: int) -> int:
        # recorded, not enforced: every page of a guest is readable, writable and executable
        if addr % PAGE or prot & ~0x7 & ~0x3000000:
            raise Errno(errno.EINVAL)
        n = -(-length // PAGE) * PAGE
        if addr < LOAD_FLOOR or addr + n > self.size:
            raise Errno(errno.ENOMEM)
        return 0

    def sys_madvise(self, addr: int, length: int, advice: int, *_: int) -> int:
        if addr % PAGE:
            raise Errno(errno.EINVAL)
        if addr < LOAD_FLOOR or addr + length > self.size:
            raise Errno(errno.ENOMEM)
        return 0

    def sys_mremap(self, old: int, old_len: int, new_len: int, flags: int, new_addr: int, *_: int) -> int:
        if old % PAGE or new_len == 0 or flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED) or flags & MREMAP_FIXED:
            raise Errno(errno.EINVAL)
        o = -(-old_len // PAGE) * PAGE
        n = -(-new_len // PAGE) * PAGE
        if old not in self.maps or self.maps[old] < o or not o:
            raise Errno(errno.EFAULT)
        if n <= o:
            self.sys_munmap(old + n, o - n) if n < o else None
            return old
        if self.maps[old] == o:
            # grow in place when the pages above are free
            if old + n <= self.mmap_top and not any(old + o <= s < old + n for s in self.maps):
                self._zero(old + o, n - o)
                self.maps[old] = n
                return old
        if not flags & MREMAP_MAYMOVE:
            raise Errno(errno.ENOMEM)
        start = self._take(n)
        self._zero(start, n)
        self.mem[start:start + o] = self.mem[old:old + o]
        self.maps[start] = n
        self.mmap_low = min(self.mmap_low, start)
        self.sys_munmap(old, o)
        return start

    # ---- files --------------------------------------------------------------
    def _fd(self, fd: int) -> OpenFile:
        f = self.fds.get(_s32(fd))
        if f is None:
            raise Errno(errno.EBADF)
        return f

    def _newfd(self, f: OpenFile, low: int = 0) -> int:
        for i in range(low, MAX_FDS):
            if i not in self.fds:
                self.fds[i] = f
                return i
        if f.host_fd is not None and not any(g.host_fd == f.host_fd for g in self.fds.values()):
            os.close(f.host_fd)                     # a fresh file nothing else holds (dup keeps its original)
        raise Errno(errno.EMFILE)

    def _output(self, f: OpenFile, data: bytes) -> int:
        if f.kind not in ("stdout", "stderr"):
            raise Errno(errno.EBADF)
        if len(self.stdout) + len(self.stderr) + len(data) > MAX_OUTPUT:
            raise Errno(errno.EFBIG)
        (self.stdout if f.kind == "stdout" else self.stderr).extend(data)
        return len(data)

    def sys_write(self, fd: int, buf: int, n: int, *_: int) -> int:
        f = self._fd(fd)
        return self._output(f, self.read(buf, min(n, MAX_IO)))

    def _iov(self, iov: int, cnt: int) -> list[tuple[int, int]]:
        if not 0 <= cnt <= 1024:
            raise Errno(errno.EINVAL)
        raw = self.read(iov, 16 * cnt)
        return [struct.unpack_from("<QQ", raw, 16 * i) for i in range(cnt)]

    def sys_writev(self, fd: int, iov: int, cnt: int, *_: int) -> int:
        f = self._fd(fd)
        if f.kind not in ("stdout", "stderr"):
            raise Errno(errno.EBADF)
        parts, left = [], MAX_IO                    # as Linux's MAX_RW_COUNT: a short write past it,
        for b, n in self._iov(iov, cnt):            # gathered no further than it
            self._check(b, min(n, MAX_IO))         # every vector's pointer, as before the bound
            take = min(n, left)
            parts.append(self.read(b, take))
            left -= take
        return self._output(f, b"".join(parts))

    def _input(self, f: OpenFile, n: int, at: int | None) -> bytes:
        pos = f.pos if at is None else at
        if f.kind == "stdin":
            data = self.stdin[pos:pos + n]
        elif f.kind == "file" and f.host_fd is not None:
            data = os.pread(f.host_fd, n, pos)
        elif f.kind == "dir":
            raise Errno(errno.EISDIR)
        else:
            raise Errno(errno.EBADF)
        if at is None:
            f.pos += len(data)
        return data

    def sys_read(self, fd: int, buf: int, n: int, *_: int) -> int:
        f = self._fd(fd)
        n = min(n, MAX_IO)
        self._check(buf, n)
        data = self._input(f, n, None)
        self.write(buf, data)
        return len(data)

    def sys_pread64(self, fd: int, buf: int, n: int, off: int, *_: int) -> int:
        f = self._fd(fd)
        if _s64(off) < 0:
            raise Errno(errno.EINVAL)
        if f.kind == "stdin":
            raise Errno(errno.ESPIPE)
        n = min(n, MAX_IO)
        self._check(buf, n)
        data = self._input(f, n, off)
        self.write(buf, data)
        return len(data)

    def sys_readv(self, fd: int, iov: int, cnt: int, *_: int) -> int:
        f = self._fd(fd)
        total = 0
        for b, n in self._iov(iov, cnt):
            n = min(n, MAX_IO)
            self._check(b, n)
            data = self._input(f, n, None)
            self.write(b, data)
            total += len(data)
            if len(data) < n:
                break
        return total

    def sys_lseek(self, fd: int, off: int, whence: int, *_: int) -> int:
        f = self._fd(fd)
        if f.kind in ("stdout", "stderr", "stdin"):
            raise Errno(errno.ESPIPE)
        off = _s64(off)
        size = os.fstat(f.host_fd).st_size if f.host_fd is not None else len(f.entries or ())
        base = {0: 0, 1: f.pos, 2: size}.get(whence)
        if base is None or not 0 <= base + off <= MAX_OFF:
            raise Errno(errno.EINVAL)
        f.pos = base + off
        return f.pos

    def sys_close(self, fd: int, *_: int) -> int:
        f = self._fd(fd)
        del self.fds[_s32(fd)]
        if f.host_fd is not None and not any(g.host_fd == f.host_fd for g in self.fds.values()):
            os.close(f.host_fd)
        return 0

    def sys_dup(self, fd: int, *_: int) -> int:
        return self._newfd(self._fd(fd))

    def sys_dup2(self, fd: int, new: int, *_: int) -> int:
        f = self._fd(fd)
        new = _s32(new)
        if not 0 <= new < MAX_FDS:
            raise Errno(errno.EBADF)
        if new != _s32(fd):
            if new in self.fds:
                self.sys_close(new)
            self.fds[new] = f
        return new

    def sys_dup3(self, fd: int, new: int, flags: int, *_: int) -> int:
        if _s32(fd) == _s32(new) or flags & ~0o2000000:
            raise Errno(errno.EINVAL)
        return self.sys_dup2(fd, new)

    def sys_fcntl(self, fd: int, cmd: int, arg: int, *_: int) -> int:
        f = self._fd(fd)
        if cmd in (0, 1030):                        # F_DUPFD, F_DUPFD_CLOEXEC
            if not 0 <= arg < MAX_FDS:
                raise Errno(errno.EINVAL)           # as Linux: the floor past RLIMIT_NOFILE
            return self._newfd(f, arg)
        if cmd in (1, 2):                           # F_GETFD, F_SETFD
            return 0
        if cmd == 3:                                # F_GETFL
            return 1 if f.kind in ("stdout", "stderr") else 0
        if cmd == 4:                                # F_SETFL
            return 0
        raise Errno(errno.EINVAL)

    def sys_ioctl(self, fd: int, req: int, arg: int, *_: int) -> int:
        self._fd(fd)
        raise Errno(errno.ENOTTY)                   # nothing is a terminal (TCGETS, TIOCGWINSZ ...)

    def sys_getcwd(self, buf: int, size: int, *_: int) -> int:
        b = self.cwd.encode() + b"\0"
        if size < len(b):
            raise Errno(errno.ERANGE)
        self.write(buf, b)
        return len(b)

    # paths: resolved inside --ro-dir, `..` stopping at its root, symlinks followed inside it
    def _resolve(self, dirfd: int, path: bytes, follow: bool = True) -> tuple[str, str]:
        """(the guest's path, the host's path) of ``path`` seen from ``dirfd``."""
        if not path:
            raise Errno(errno.ENOENT)
        if self.ro_dir is None:
            raise Errno(errno.ENOENT)
        try:
            text = os.fsdecode(path)                # the host's names are bytes: undecodable ones too
        except UnicodeDecodeError:
            raise Errno(errno.ENOENT) from None
        if text.startswith("/"):
            start = "/"
        elif _s32(dirfd) == AT_FDCWD:
            start = self.cwd
        else:
            d = self._fd(dirfd)
            if d.kind != "dir":
                raise Errno(errno.ENOTDIR)
            start = d.path
        cur = [c for c in start.split("/") if c]
        todo = [c for c in text.split("/")]
        links = 0
        while todo:
            c = todo.pop(0)
            if c in ("", "."):
                continue
            if c == "..":
                if cur:
                    cur.pop()
                continue
            host = os.path.join(self.ro_dir, *cur, c)
            try:
                s = os.lstat(host)
            except OSError as e:
                raise Errno(e.errno or errno.ENOENT) from None
            last = not any(x not in ("", ".") for x in todo)
            slash = bool(todo)                      # a "/" follows: it must be a directory ("f/", "f/.")
            if st.S_ISLNK(s.st_mode) and (follow or not last or slash):
                links += 1
                if links > MAX_SYMLINKS:
                    raise Errno(errno.ELOOP)
                target = os.readlink(host)
                if target.startswith("/"):
                    cur = []
                todo = [x for x in target.split("/")] + todo
                continue
            if slash and not st.S_ISDIR(s.st_mode):
                raise Errno(errno.ENOTDIR)
            cur.append(c)
        if todo == [] and text.endswith("/") and cur:
            if not os.path.isdir(os.path.join(self.ro_dir, *cur)):
                raise Errno(errno.ENOTDIR)
        return "/" + "/".join(cur), os.path.join(self.ro_dir, *cur)

    def sys_openat(self, dirfd: int, path: int, flags: int, mode: int, *_: int) -> int:
        p = self.cstring(path)
        if flags & O_ACCMODE != 0 or flags & (O_CREAT | O_TRUNC):
            self._resolve(dirfd, p)                 # ENOENT first, like a read-only mount would not say
            raise Errno(errno.EROFS)
        gpath, host = self._resolve(dirfd, p, follow=not flags & O_NOFOLLOW)
        s = os.lstat(host)
        if st.S_ISLNK(s.st_mode):
            raise Errno(errno.ELOOP)
        if st.S_ISDIR(s.st_mode):
            entries = []
            with os.scandir(host) as it:
                for e in sorted(it, key=lambda e: e.name):
                    t = 4 if e.is_dir(follow_symlinks=False) else 10 if e.is_symlink() else 8
                    entries.append((e.name, e.inode(), t))
            entries = [(".", s.st_ino, 4), ("..", s.st_ino, 4)] + entries
            return self._newfd(OpenFile(gpath, entries=entries, kind="dir"))
        if flags & O_DIRECTORY:
            raise Errno(errno.ENOTDIR)
        if not st.S_ISREG(s.st_mode):
            raise Errno(errno.EACCES)
        hfd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return self._newfd(OpenFile(gpath, host_fd=hfd))

    def sys_open(self, path: int, flags: int, mode: int, *_: int) -> int:
        return self.sys_openat(AT_FDCWD, path, flags, mode)

    def _stat_bytes(self, s: os.stat_result) -> bytes:
        return struct.pack("<QQQIIIIQqqqQQQQQQ24x", s.st_dev, s.st_ino, s.st_nlink, s.st_mode, s.st_uid, s.st_gid, 0,
                           s.st_rdev, s.st_size, s.st_blksize, s.st_blocks, int(s.st_atime), s.st_atime_ns % 10**9,
                           int(s.st_mtime), s.st_mtime_ns % 10**9, int(s.st_ctime), s.st_ctime_ns % 10**9)

    def _stat_of(self, f: OpenFile) -> bytes:
        if f.kind in ("stdin", "stdout", "stderr"):
            # a pipe, as when the program runs under a harness that captures it
            return struct.pack("<QQQIIIIQqqqQQQQQQ24x", 12, 1000 + "stdin stdout stderr".split().index(f.kind), 1,
                               st.S_IFIFO | 0o600, os.getuid(), os.getgid(), 0, 0, 0, PAGE, 0, 0, 0, 0, 0, 0, 0)
        if f.host_fd is not None:
            return self._stat_bytes(os.fstat(f.host_fd))
        return self._stat_bytes(os.stat(self._host_of(f.path)))

    def _host_of(self, gpath: str) -> str:
        assert self.ro_dir is not None
        return os.path.join(self.ro_dir, *[c for c in gpath.split("/") if c])

    def sys_fstat(self, fd: int, buf: int, *_: int) -> int:
        self._check(buf, 144)
        self.write(buf, self._stat_of(self._fd(fd)))
        return 0

    def sys_newfstatat(self, dirfd: int, path: int, buf: int, flags: int, *_: int) -> int:
        p = self.cstring(path)
        self._check(buf, 144)
        if not p and flags & AT_EMPTY_PATH:
            return self.sys_fstat(dirfd, buf)
        _, host = self._resolve(dirfd, p, follow=not flags & AT_SYMLINK_NOFOLLOW)
        self.write(buf, self._stat_bytes(os.lstat(host)))
        return 0

    def sys_stat(self, path: int, buf: int, *_: int) -> int:
        return self.sys_newfstatat(AT_FDCWD, path, buf, 0)

    def sys_lstat(self, path: int, buf: int, *_: int) -> int:
        return self.sys_newfstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)

    def sys_faccessat(self, dirfd: int, path: int, mode: int, *_: int) -> int:
        _, host = self._resolve(dirfd, self.cstring(path))
        if mode & 2:
            raise Errno(errno.EROFS)
        if mode & 1 and not os.access(host, os.X_OK):
            raise Errno(errno.EACCES)
        return 0

    def sys_faccessat2(self, dirfd: int, path: int, mode: int, flags: int, *_: int) -> int:
        return self.sys_faccessat(dirfd, path, mode)

    def sys_access(self, path: int, mode: int, *_: int) -> int:
        return self.sys_faccessat(AT_FDCWD, path, mode)

    def sys_readlinkat(self, dirfd: int, path: int, buf: int, size: int, *_: int) -> int:
        p = self.cstring(path)
        if _s32(size) <= 0:
            raise Errno(errno.EINVAL)
        self._check(buf, size)
        if p == b"/proc/self/exe":
            target = self.argv0
        else:
            _, host = self._resolve(dirfd, p, follow=False)
            if not os.path.islink(host):
                raise Errno(errno.EINVAL)
            target = os.fsencode(os.readlink(host))
        out = target[:size]
        self.write(buf, out)
        return len(out)

    def sys_readlink(self, path: int, buf: int, size: int, *_: int) -> int:
        return self.sys_readlinkat(AT_FDCWD, path, buf, size)

    def sys_getdents64(self, fd: int, buf: int, count: int, *_: int) -> int:
        f = self._fd(fd)
        if f.kind != "dir" or f.entries is None:
            raise Errno(errno.ENOTDIR)
        self._check(buf, count)
        out = bytearray()
        while f.pos < len(f.entries):
            name, ino, t = f.entries[f.pos]
            nb = os.fsencode(name) + b"\0"
            reclen = (19 + len(nb) + 7) & ~7
            if len(out) + reclen > count:
                if not out:
                    raise Errno(errno.EINVAL)
                break
            out += struct.pack("<QqHB", ino, f.pos + 1, reclen, t) + nb.ljust(reclen - 19, b"\0")
            f.pos += 1
        self.write(buf, bytes(out))
        return len(out)

    def close(self) -> None:
        """Releases the host files it holds open."""
        # each host fd once: dup'ed descriptors share one, and a second close of the
        # number would close whatever another thread has opened under it meanwhile
        held = {f.host_fd for f in self.fds.values() if f.host_fd is not None}
        self.fds = {}
        for hfd in sorted(held):
            try:
                os.close(hfd)
            except OSError:
                pass

    def report(self) -> dict[str, object]:
        """What it served and what it did not (ENOSYS, by number and name where known)."""
        return {"calls": self.calls, "served": dict(self.counts),
                "enosys": {("other" if nr == -1 else f"{nr}") + (f" ({NAMES[nr]})" if nr in NAMES else ""): n
                           for nr, n in sorted(self.enosys.items())}}


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _s64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v
