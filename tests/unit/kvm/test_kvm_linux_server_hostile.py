"""A hostile guest and a clumsy host directory against the Linux system-call
server (no KVM): host file descriptors that must stay the guest's own, reads and
writes bounded before the host allocates, offsets past what a host call takes,
names that are not UTF-8, memory handed back."""
from __future__ import annotations

import errno
import os
import struct

import pytest

from pyvswitch.guest.linux import NR, LinuxProcess
from pyvswitch.guest.linux import server as srv
from pyvswitch.guest.linux.server import MAP_PRIVATE, MAX_FDS, MAX_IO

SIZE = 40 << 20
BUF = 0x300000


def proc(ro_dir: str | None = None) -> LinuxProcess:
    return LinuxProcess(memoryview(bytearray(SIZE)), SIZE, brk_start=0x280000, mmap_top=SIZE - (4 << 20),
                        ro_dir=ro_dir, seed=1, argv0=b"/prog")


def put(p: LinuxProcess, va: int, data: bytes) -> int:
    p.mem[va:va + len(data)] = data
    return va


def sc(p: LinuxProcess, name: str, *args: int) -> int:
    return p.call(NR[name], tuple(args) + (0,) * (6 - len(args)))


def path(p: LinuxProcess, text: bytes, at: int = BUF + 0x1000) -> int:
    return put(p, at, text + b"\0")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha\nbeta\n")
    return root


def test_dup_at_emfile_keeps_the_original_file(tree):
    """dup/F_DUPFD with the table full fail with EMFILE and leave the file they
    were asked to copy open: its host fd must not be closed (the number could be
    reused by another guest's file or the emulator's own)."""
    p = proc(str(tree))
    fd = sc(p, "openat", -100, path(p, b"/a.txt"), 0)
    assert fd >= 3
    hfd = p.fds[fd].host_fd
    while sc(p, "dup", fd) >= 0:
        pass
    assert len(p.fds) == MAX_FDS
    assert sc(p, "dup", fd) == -errno.EMFILE
    assert sc(p, "fcntl", fd, 0, 0) == -errno.EMFILE
    os.fstat(hfd)                                   # still open on the host
    assert sc(p, "pread64", fd, BUF, 5, 0) == 5 and bytes(p.mem[BUF:BUF + 5]) == b"alpha"
    p.close()


def test_close_closes_each_host_fd_once(tree, monkeypatch):
    """close() with dup'ed descriptors: each host fd closed exactly once (a second
    close of the same number would close whatever another thread opened meanwhile)."""
    p = proc(str(tree))
    fd = sc(p, "openat", -100, path(p, b"/a.txt"), 0)
    for _ in range(3):
        assert sc(p, "dup", fd) > fd
    closed: list[int] = []
    real = os.close

    def spy(n: int) -> None:
        closed.append(n)
        real(n)

    monkeypatch.setattr(srv.os, "close", spy)
    p.close()
    assert len(closed) == len(set(closed)) == 1


def test_writev_looping_iovecs_bounded_before_reading(monkeypatch):
    """1024 iovecs all naming one 16 MiB buffer: Linux moves at most MAX_RW_COUNT;
    the server must not gather 16 GiB of host memory before refusing."""
    p = proc()
    gathered = [0]
    real = p.read

    def counting(va: int, n: int) -> bytes:
        gathered[0] += n
        if gathered[0] > 2 * MAX_IO + (1 << 16):
            raise AssertionError(f"gathered {gathered[0]} bytes for one writev")
        return real(va, n)

    monkeypatch.setattr(p, "read", counting)
    iov = struct.pack("<QQ", 4 << 20, MAX_IO) * 1024
    r = sc(p, "writev", 1, put(p, BUF, iov), 1024)
    assert 0 < r <= MAX_IO and len(p.stdout) == r


def test_huge_file_offsets_are_errors_not_crashes(tree):
    """mmap of a file at an offset past 2**63, lseek past it, and the read after:
    errno answers (Linux: EOVERFLOW/EINVAL), never a host exception out of call()."""
    p = proc(str(tree))
    fd = sc(p, "openat", -100, path(p, b"/a.txt"), 0)
    assert sc(p, "mmap", 0, 4096, 1, MAP_PRIVATE, fd, (1 << 64) - 4096) in (-errno.EOVERFLOW, -errno.EINVAL)
    assert sc(p, "mmap", 0, 4096, 1, MAP_PRIVATE, fd, 1 << 63) in (-errno.EOVERFLOW, -errno.EINVAL)
    assert sc(p, "lseek", fd, (1 << 63) - 1, 0) == (1 << 63) - 1
    assert sc(p, "lseek", fd, 10, 1) == -errno.EINVAL           # past the largest offset
    assert sc(p, "lseek", fd, (1 << 63) - 1, 2) == -errno.EINVAL
    assert sc(p, "lseek", fd, 0, 0) == 0
    assert sc(p, "read", fd, BUF, 5) == 5


def test_names_that_are_not_utf8(tree):
    """A host directory with a file whose name is not UTF-8: getdents64 lists its
    bytes, and the guest can open it by them."""
    raw = b"caf\xe9.txt"
    try:
        with open(os.path.join(os.fsencode(str(tree)), raw), "wb") as f:
            f.write(b"latin")
    except OSError as exc:
        pytest.skip(f"this file system refuses non-UTF-8 names: {exc}")
    p = proc(str(tree))
    d = sc(p, "openat", -100, path(p, b"/"), 0o200000)
    n = sc(p, "getdents64", d, BUF, 4096)
    assert n > 0
    names, off = [], 0
    while off < n:
        reclen = struct.unpack_from("<H", p.mem, BUF + off + 16)[0]
        names.append(bytes(p.mem[BUF + off + 19:BUF + off + reclen]).split(b"\0")[0])
        off += reclen
    assert raw in names and b"a.txt" in names
    fd = sc(p, "openat", -100, path(p, b"/" + raw), 0)
    assert fd >= 0 and sc(p, "read", fd, BUF, 16) == 5 and bytes(p.mem[BUF:BUF + 5]) == b"latin"


def test_brk_shrunk_then_regrown_reads_zeros():
    """Linux unmaps the pages a shrinking break gives back: grown again they read
    as zeros, not as what the guest left there."""
    p = proc()
    start = sc(p, "brk", 0)
    assert sc(p, "brk", start + 3 * 4096) == start + 3 * 4096
    p.mem[start + 4096:start + 3 * 4096] = b"\xaa" * (2 * 4096)
    assert sc(p, "brk", start + 100) == start + 100
    assert sc(p, "brk", start + 3 * 4096) == start + 3 * 4096
    assert bytes(p.mem[start + 4096:start + 3 * 4096]) == bytes(2 * 4096)
    assert sc(p, "brk", start - 4096) == start + 3 * 4096        # below the start: refused, unchanged


@pytest.mark.parametrize("what", ["open", "scandir", "fstat"])
def test_host_refusals_are_the_guests_errno(tree, monkeypatch, what):
    """--ro-dir over files the host will not give (mode 000 as a non-root user, EIO,
    the host's own fd table full): the guest's call fails with that errno; no
    OSError escapes call() to end the run of every guest on the vCPU."""
    (tree / "sub").mkdir()
    p = proc(str(tree))
    fd = sc(p, "openat", -100, path(p, b"/a.txt"), 0)
    real = getattr(os, what)

    def refuse(*a, **kw):
        raise OSError(errno.EACCES if what != "fstat" else errno.EIO, "refused by the host")

    monkeypatch.setattr(srv.os, what, refuse)
    if what == "open":
        assert sc(p, "openat", -100, path(p, b"/a.txt"), 0) == -errno.EACCES
    elif what == "scandir":
        assert sc(p, "openat", -100, path(p, b"/sub"), 0o200000) == -errno.EACCES
    else:
        assert sc(p, "fstat", fd, BUF) == -errno.EIO
    monkeypatch.setattr(srv.os, what, real)
    assert sc(p, "fstat", fd, BUF) == 0 and sc(p, "read", fd, BUF, 5) == 5       # and it goes on
    p.close()


def test_mmap_of_a_file_longer_than_one_read(tree):
    """A file mapping longer than MAX_IO holds the whole file, as Linux maps it (its
    tail was zeros)."""
    n = MAX_IO + 3 * 4096 + 10
    data = bytes(range(251)) * (n // 251) + b"\x07" * (n % 251)
    (tree / "big").write_bytes(data)
    p = proc(str(tree))
    fd = sc(p, "openat", -100, path(p, b"/big"), 0)
    va = sc(p, "mmap", 0, n, 1, MAP_PRIVATE, fd, 4096)
    assert va > 0
    assert bytes(p.mem[va:va + n - 4096]) == data[4096:]
    assert bytes(p.mem[va + n - 4096:va + -(-n // 4096) * 4096]) == bytes(-(-n // 4096) * 4096 - n + 4096)


def test_enosys_counted_in_bounded_memory():
    """A guest calling 20000 different bogus numbers: each is ENOSYS, all are counted,
    but the per-number table does not grow with them (every one was a Counter key,
    and the CLI printed them all)."""
    p = proc()
    assert p.call(157, (0,) * 6) == -errno.ENOSYS                  # prctl: the first ones keep their number
    for i in range(20000):
        assert p.call(100000 + i * 7919, (0,) * 6) == -errno.ENOSYS
    assert p.call(157, (0,) * 6) == -errno.ENOSYS                  # ... and are counted on under it
    rep = p.report()
    assert sum(rep["enosys"].values()) == 20002 and len(p.enosys) <= srv.MAX_ENOSYS_KEYS + 1
    assert rep["enosys"]["157"] == 2 and rep["enosys"]["other"] == 20000 - (srv.MAX_ENOSYS_KEYS - 1)


def test_fcntl_dupfd_past_the_table_is_einval(tree):
    """F_DUPFD with a floor at or past RLIMIT_NOFILE (or a negative one) is EINVAL, as
    Linux says; one below the bound still works."""
    p = proc(str(tree))
    assert sc(p, "fcntl", 1, 0, MAX_FDS) == -errno.EINVAL
    assert sc(p, "fcntl", 1, 0, (1 << 64) - 1) == -errno.EINVAL
    assert sc(p, "fcntl", 1, 0, (1 << 32) + 5) == -errno.EINVAL
    assert sc(p, "fcntl", 1, 1030, MAX_FDS + 5) == -errno.EINVAL
    assert sc(p, "fcntl", 1, 0, MAX_FDS - 1) == MAX_FDS - 1


def test_a_file_followed_by_a_slash_or_dot_is_enotdir(tree):
    """"a.txt/." and "a.txt/" name a directory that is not one: ENOTDIR, as Linux
    says (a.txt/. opened the file); a symlink to a directory with a trailing slash is
    followed even under O_NOFOLLOW / AT_SYMLINK_NOFOLLOW."""
    (tree / "sub").mkdir()
    (tree / "ln").symlink_to("sub")
    p = proc(str(tree))
    for name in (b"/a.txt/.", b"/a.txt/", b"a.txt/./", b"/a.txt/.//."):
        assert sc(p, "openat", -100, path(p, name), 0) == -errno.ENOTDIR, name
        assert sc(p, "newfstatat", -100, path(p, name), BUF + 0x2000, 0) == -errno.ENOTDIR, name
    assert sc(p, "openat", -100, path(p, b"/sub/."), 0) >= 0
    assert sc(p, "openat", -100, path(p, b"/ln/"), 0o400000 | 0o200000) >= 0         # O_NOFOLLOW|O_DIRECTORY
    assert sc(p, "newfstatat", -100, path(p, b"/ln/"), BUF + 0x2000, 0x100) == 0
    mode = struct.unpack_from("<I", p.mem, BUF + 0x2000 + 24)[0]
    assert mode & 0o170000 == 0o040000                                                  # the directory's
    assert sc(p, "openat", -100, path(p, b"/ln"), 0o400000) == -errno.ELOOP
