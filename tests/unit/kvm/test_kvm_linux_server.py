"""The Linux system-call server and loader without KVM: a LinuxProcess over a
plain buffer, driven call by call as a guest would."""
from __future__ import annotations

import errno
import os
import struct

import pytest
from effort import examples
from hypothesis import given, settings
from hypothesis import strategies as hst

from pyvswitch.errors import VswError
from pyvswitch.guest.linux import NR, LinuxImage, LinuxProcess, build_stack
from pyvswitch.guest.linux.image import AT_ENTRY, AT_NULL, AT_PHDR, AT_PHNUM, AT_RANDOM
from pyvswitch.guest.linux.server import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE

SIZE = 16 << 20
FLOOR = 2 << 20
BUF = 0x300000          # scratch guest memory for the tests


def proc(ro_dir: str | None = None, seed: int = 1, stdin: bytes = b"") -> LinuxProcess:
    return LinuxProcess(memoryview(bytearray(SIZE)), SIZE, brk_start=0x280000, mmap_top=SIZE - (4 << 20),
                        ro_dir=ro_dir, seed=seed, stdin=stdin, argv0=b"/prog")


def put(p: LinuxProcess, va: int, data: bytes) -> int:
    p.mem[va:va + len(data)] = data
    return va


def sc(p: LinuxProcess, name: str, *args: int) -> int:
    return p.call(NR[name], tuple(args) + (0,) * (6 - len(args)))


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "ro"
    (root / "d").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\nbeta\n")
    (root / "d" / "b.txt").write_bytes(b"B" * 5000)
    (root / "d" / "up").symlink_to("../a.txt")
    (root / "d" / "abs").symlink_to("/a.txt")             # absolute: inside the root, not the host's /
    (root / "d" / "loop").symlink_to("loop")
    (tmp_path / "secret").write_bytes(b"outside")
    (root / "d" / "out").symlink_to(str(tmp_path / "secret"))
    return root


def test_write_stdout_stderr_and_writev():
    p = proc()
    put(p, BUF, b"hello world")
    assert sc(p, "write", 1, BUF, 5) == 5
    assert sc(p, "write", 2, BUF + 6, 5) == 5
    iov = struct.pack("<QQQQQQ", BUF, 5, 0, 0, BUF + 5, 6)      # a NULL base of length 0 is fine
    assert sc(p, "writev", 1, put(p, BUF + 0x100, iov), 3) == 11
    assert bytes(p.stdout) == b"hellohello world" and bytes(p.stderr) == b"world"
    assert sc(p, "write", 5, BUF, 1) == -errno.EBADF
    assert sc(p, "write", 0, BUF, 1) == -errno.EBADF


@pytest.mark.parametrize("va,n", [(0, 1), (FLOOR - 1, 2), (SIZE - 1, 2), (SIZE, 1), ((1 << 64) - 8, 8),
                                  (0x7FFFFFFFFFFF, 4096)])
def test_bad_pointers_are_efault_never_outside(va, n):
    p = proc()
    before = bytes(p.mem)
    assert sc(p, "write", 1, va, n) == -errno.EFAULT
    assert sc(p, "read", 0, va, n) in (-errno.EFAULT, 0) or n == 0
    assert sc(p, "uname", va) == -errno.EFAULT
    assert sc(p, "clock_gettime", 0, va) == -errno.EFAULT
    assert sc(p, "getrandom", va, n, 0) == -errno.EFAULT
    inside = FLOOR <= va < SIZE                          # a string may start on the last byte (an empty one)
    assert sc(p, "openat", -100 & 0xFFFFFFFF, va, 0) == (-errno.ENOENT if inside else -errno.EFAULT)
    assert bytes(p.mem) == before and p.stdout == bytearray()


@given(va=hst.integers(0, (1 << 64) - 1), n=hst.integers(0, 1 << 26))
@settings(max_examples=examples(200))
def test_any_pointer_either_served_inside_or_efault(va, n):
    p = proc(stdin=b"x" * 100)
    r = sc(p, "read", 0, va, n)
    inside = n == 0 or (FLOOR <= va and va + min(n, 1 << 24) <= SIZE)
    assert (r >= 0) == inside and (r == -errno.EFAULT or r >= 0)


def test_read_stdin_in_pieces_then_eof():
    p = proc(stdin=b"abcdef")
    assert sc(p, "read", 0, BUF, 4) == 4 and bytes(p.mem[BUF:BUF + 4]) == b"abcd"
    assert sc(p, "read", 0, BUF, 4) == 2
    assert sc(p, "read", 0, BUF, 4) == 0
    assert sc(p, "lseek", 0, 0, 0) == -errno.ESPIPE


def test_exit_group_keeps_low_byte():
    p = proc()
    sc(p, "exit_group", 0x1234)
    assert p.exit_status == 0x34


def test_brk_grows_zeroed_and_refuses_beyond():
    p = proc()
    start = sc(p, "brk", 0)
    assert start == 0x280000
    assert sc(p, "brk", start + 10000) == start + 10000
    p.mem[start:start + 10] = b"x" * 10
    assert sc(p, "brk", start) == start
    assert sc(p, "brk", 1 << 40) == start             # refused: the break stays
    assert sc(p, "brk", FLOOR) == start


def test_mmap_munmap_mremap_inside_the_region():
    p = proc()
    a = sc(p, "mmap", 0, 8192, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1 & 0xFFFFFFFF, 0)
    assert FLOOR <= a < SIZE and a % 4096 == 0
    p.mem[a:a + 4] = b"data"
    b = sc(p, "mmap", 0, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1 & 0xFFFFFFFF, 0)
    assert b + 4096 <= a or b >= a + 8192
    c = sc(p, "mremap", a, 8192, 1 << 20, 1)          # MAYMOVE: the contents go along
    assert bytes(p.mem[c:c + 4]) == b"data" and bytes(p.mem[c + 8192:c + 8196]) == bytes(4)
    assert sc(p, "mremap", a + 4096 * 1000, 4096, 8192, 1) == -errno.EFAULT
    assert sc(p, "munmap", c, 1 << 20) == 0
    assert bytes(p.mem[c:c + 4]) == bytes(4)            # unmapped memory comes back as zeros
    assert sc(p, "mmap", 0, 1 << 40, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1 & 0xFFFFFFFF, 0) == -errno.EINVAL
    assert sc(p, "mmap", 0, 4096, 3, 0x1 | MAP_ANONYMOUS, -1 & 0xFFFFFFFF, 0) == -errno.EINVAL     # shared
    assert sc(p, "mmap", 1 << 40, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1 & 0xFFFFFFFF, 0) == \
        -errno.ENOMEM
    assert sc(p, "mprotect", a, 4096, 1) == 0
    assert sc(p, "mprotect", 1 << 40, 4096, 1) == -errno.ENOMEM


def test_mmap_runs_out_instead_of_crossing_the_break():
    p = proc()
    got = []
    while True:
        r = sc(p, "mmap", 0, 1 << 20, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1 & 0xFFFFFFFF, 0)
        if r < 0:
            assert r == -errno.ENOMEM
            break
        got.append(r)
    assert min(got) >= 0x280000 and len(got) == len(set(got))


def test_arch_prctl_fs_gs_and_ids():
    p = proc()
    assert sc(p, "arch_prctl", 0x1002, 0x1234000) == 0 and p.fs_base == 0x1234000
    assert sc(p, "arch_prctl", 0x1003, BUF) == 0 and struct.unpack("<Q", p.mem[BUF:BUF + 8])[0] == 0x1234000
    assert sc(p, "arch_prctl", 0x9999, 0) == -errno.EINVAL
    assert sc(p, "set_tid_address", BUF) == sc(p, "getpid") == sc(p, "gettid")
    assert sc(p, "set_robust_list", BUF, 24) == 0
    assert sc(p, "rseq", BUF, 32, 0, 0) == -errno.ENOSYS
    assert sc(p, "ioctl", 1, 0x5401, BUF) == -errno.ENOTTY
    assert sc(p, "ioctl", 9, 0x5401, BUF) == -errno.EBADF


def test_unknown_calls_are_enosys_and_counted():
    p = proc()
    assert p.call(57, (0,) * 6) == -errno.ENOSYS            # fork
    assert p.call(57, (0,) * 6) == -errno.ENOSYS
    assert p.call(100000, (0,) * 6) == -errno.ENOSYS
    rep = p.report()
    assert rep["enosys"] == {"57": 2, "100000": 1}


def test_clock_and_random_are_the_guests_own_and_deterministic():
    a, b, c = proc(seed=5), proc(seed=5), proc(seed=6)
    for p in (a, b, c):
        sc(p, "getrandom", BUF, 32, 0)
        sc(p, "clock_gettime", 0, BUF + 64)
    assert bytes(a.mem[BUF:BUF + 80]) == bytes(b.mem[BUF:BUF + 80])
    assert bytes(a.mem[BUF:BUF + 32]) != bytes(c.mem[BUF:BUF + 32])
    t1 = struct.unpack("<qq", a.mem[BUF + 64:BUF + 80])
    sc(a, "clock_gettime", 0, BUF + 64)
    t2 = struct.unpack("<qq", a.mem[BUF + 64:BUF + 80])
    assert t2 > t1
    assert sc(a, "time", 0) == t2[0]


def test_uname_and_sigaction_recorded():
    p = proc()
    assert sc(p, "uname", BUF) == 0
    assert bytes(p.mem[BUF:BUF + 6]) == b"Linux\0" and bytes(p.mem[BUF + 4 * 65:BUF + 4 * 65 + 7]) == b"x86_64\0"
    act = put(p, BUF, bytes(range(32)))
    assert sc(p, "rt_sigaction", 2, act, 0, 8) == 0
    assert sc(p, "rt_sigaction", 2, 0, BUF + 64, 8) == 0 and bytes(p.mem[BUF + 64:BUF + 96]) == bytes(range(32))
    assert sc(p, "rt_sigaction", 9, act, 0, 8) == -errno.EINVAL
    assert sc(p, "rt_sigaction", 2, act, 0, 4) == -errno.EINVAL
    put(p, BUF, struct.pack("<Q", 1 << 1 | 1 << 8))
    assert sc(p, "rt_sigprocmask", 0, BUF, BUF + 8, 8) == 0
    assert p.sigmask == 1 << 1                             # SIGKILL cannot be blocked
    assert sc(p, "prlimit64", 0, 3, 0, BUF) == 0 and struct.unpack("<QQ", p.mem[BUF:BUF + 16])[0] == 8 << 20
    assert sc(p, "prlimit64", 0, 3, BUF, 0) == -errno.EPERM


def path(p: LinuxProcess, text: bytes, at: int = BUF + 0x1000) -> int:
    return put(p, at, text + b"\0")


def test_files_under_ro_dir(tree):
    p = proc(str(tree))
    fd = sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"/a.txt"), 0)
    assert fd == 3
    assert sc(p, "read", fd, BUF, 100) == 11 and bytes(p.mem[BUF:BUF + 11]) == b"alpha\nbeta\n"
    assert sc(p, "pread64", fd, BUF, 4, 6) == 4 and bytes(p.mem[BUF:BUF + 4]) == b"beta"
    assert sc(p, "lseek", fd, 2, 0) == 2
    assert sc(p, "fstat", fd, BUF) == 0 and struct.unpack_from("<q", p.mem, BUF + 48)[0] == 11
    assert sc(p, "close", fd) == 0 and sc(p, "close", fd) == -errno.EBADF
    d = sc(p, "open", path(p, b"d"), 0o200000)
    n = sc(p, "getdents64", d, BUF, 4096)
    names, off = [], 0
    while off < n:
        reclen = struct.unpack_from("<H", p.mem, BUF + off + 16)[0]
        names.append(bytes(p.mem[BUF + off + 19:BUF + off + reclen]).rstrip(b"\0").decode())
        off += reclen
    assert names == [".", "..", "abs", "b.txt", "loop", "out", "up"]
    assert sc(p, "getdents64", d, BUF, 4096) == 0
    assert sc(p, "read", d, BUF, 10) == -errno.EISDIR
    # symlinks and .. stay inside the root
    for via in (b"d/up", b"d/abs", b"/d/../../../a.txt", b"../../a.txt"):
        f = sc(p, "openat", -100 & 0xFFFFFFFF, path(p, via), 0)
        assert f >= 0, via
        assert sc(p, "read", f, BUF, 5) == 5 and bytes(p.mem[BUF:BUF + 5]) == b"alpha"
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"d/out"), 0) == -errno.ENOENT
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"d/loop"), 0) == -errno.ELOOP
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"d/up"), 0o400000) == -errno.ELOOP      # O_NOFOLLOW
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"a.txt/x"), 0) == -errno.ENOTDIR
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"a.txt"), 1) == -errno.EROFS
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"new"), 0o101) == -errno.ENOENT
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b""), 0) == -errno.ENOENT
    # relative to a directory fd
    f = sc(p, "openat", d, path(p, b"b.txt"), 0)
    assert f >= 0 and sc(p, "fstat", f, BUF) == 0 and struct.unpack_from("<q", p.mem, BUF + 48)[0] == 5000
    assert sc(p, "newfstatat", -100 & 0xFFFFFFFF, path(p, b"d/up"), BUF, 0x100) == 0
    assert struct.unpack_from("<I", p.mem, BUF + 24)[0] & 0o170000 == 0o120000          # the link itself
    assert sc(p, "readlinkat", -100 & 0xFFFFFFFF, path(p, b"d/up"), BUF, 100) == 8
    assert bytes(p.mem[BUF:BUF + 8]) == b"../a.txt"
    assert sc(p, "readlinkat", -100 & 0xFFFFFFFF, path(p, b"a.txt"), BUF, 100) == -errno.EINVAL
    assert sc(p, "readlinkat", -100 & 0xFFFFFFFF, path(p, b"/proc/self/exe"), BUF, 100) == 5
    p.close()


def test_no_ro_dir_no_files(tmp_path):
    p = proc()
    assert sc(p, "openat", -100 & 0xFFFFFFFF, path(p, str(tmp_path).encode()), 0) == -errno.ENOENT
    with pytest.raises(VswError) as e:
        proc(str(tmp_path / "nope"))
    assert e.value.errno == errno.ENOTDIR


def test_fd_table_bounded(tree):
    p = proc(str(tree))
    fds = [sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"a.txt"), 0) for _ in range(300)]
    assert fds[-1] == -errno.EMFILE and max(fds) == 255
    p.close()


# ---- the loader --------------------------------------------------------------

def _elf(e_type: int = 2, interp: bytes | None = None, vaddr: int = 0x400000) -> bytes:
    """A minimal ELF64 x86-64 file: one PT_LOAD from offset 0 (and a PT_INTERP)."""
    phnum = 2 if interp else 1
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, e_type, 62, 1, vaddr + 0x100, 64, 0, 0,
                       64, 56, phnum, 64, 0, 0)
    body = bytearray(0x200)
    body[0:64] = ehdr
    body[64:120] = struct.pack("<IIQQQQQQ", 1, 5, 0, vaddr, vaddr, 0x200, 0x1000, 0x1000)
    if interp:
        body[0x180:0x180 + len(interp) + 1] = interp + b"\0"
        body[120:176] = struct.pack("<IIQQQQQQ", 3, 4, 0x180, vaddr + 0x180, vaddr + 0x180, len(interp) + 1,
                                    len(interp) + 1, 1)
    return bytes(body)


def test_loader_static_pie_and_dynamic_refused():
    img = LinuxImage.read(_elf())
    assert img.entry == 0x400100 and img.phdr == 0x400040 and img.phnum == 1 and not img.pie
    pie = LinuxImage.read(_elf(e_type=3, vaddr=0))
    assert pie.pie and pie.entry == (4 << 20) + 0x100 and pie.phdr == (4 << 20) + 0x40
    with pytest.raises(VswError) as e:
        LinuxImage.read(_elf(interp=b"/lib64/ld-linux-x86-64.so.2"))
    assert e.value.errno == errno.ENOEXEC and "/lib64/ld-linux-x86-64.so.2" in str(e.value)
    with pytest.raises(VswError) as e:
        LinuxImage.read(_elf(vaddr=0x1000))
    assert e.value.errno == errno.ENOEXEC
    for bad in (b"", b"\x7fELF" + bytes(60), _elf()[:100]):
        with pytest.raises(VswError) as e:
            LinuxImage.read(bad)
        assert e.value.errno == errno.ENOEXEC


def test_loader_refuses_a_real_dynamic_program():
    prog = next((p for p in ("/bin/ls", "/usr/bin/env", "/bin/sh") if os.path.exists(p)), None)
    if prog is None:
        pytest.skip("no dynamically linked program on this host")
    try:
        LinuxImage.read(prog)
    except VswError as e:
        assert "interpreter" in str(e) or "static" in str(e)
    else:
        pytest.skip(f"{prog} is statically linked here")


def test_stack_layout_as_the_kernel_builds_it():
    img = LinuxImage.read(_elf())
    top = SIZE
    rsp, blob = build_stack(top, img, [b"prog", b"-x"], [b"A=1"], bytes(range(16)), hwcap=0x1234)
    assert rsp % 16 == 0 and rsp + len(blob) == top
    mem = bytearray(SIZE)
    mem[rsp:top] = blob

    def q(i: int) -> int:
        return struct.unpack_from("<Q", mem, rsp + 8 * i)[0]

    def s(a: int) -> bytes:
        return bytes(mem[a:mem.index(b"\0", a)])

    assert q(0) == 2 and s(q(1)) == b"prog" and s(q(2)) == b"-x" and q(3) == 0
    assert s(q(4)) == b"A=1" and q(5) == 0
    aux, i = {}, 6
    while q(i) != AT_NULL:
        aux[q(i)] = q(i + 1)
        i += 2
    assert aux[AT_PHDR] == img.phdr and aux[AT_PHNUM] == 1 and aux[AT_ENTRY] == img.entry
    assert bytes(mem[aux[AT_RANDOM]:aux[AT_RANDOM] + 16]) == bytes(range(16))
    with pytest.raises(VswError):
        build_stack(top, img, [b"p"], [], b"short")


def test_output_bound_is_efbig_and_keeps_what_was_written(monkeypatch):
    import pyvswitch.guest.linux.server as srv
    monkeypatch.setattr(srv, "MAX_OUTPUT", 10)
    p = proc()
    put(p, BUF, b"0123456789AB")
    assert sc(p, "write", 1, BUF, 6) == 6
    assert sc(p, "write", 2, BUF, 4) == 4            # exactly at the bound
    assert sc(p, "write", 1, BUF, 1) == -errno.EFBIG  # one past it
    assert bytes(p.stdout) == b"012345" and bytes(p.stderr) == b"0123"


def test_close_in_the_middle_releases_files(tree):
    p = proc(str(tree))
    fd = sc(p, "openat", -100 & 0xFFFFFFFF, path(p, b"a.txt"), 0)
    dup = sc(p, "dup", fd)
    assert sc(p, "close", fd) == 0
    assert sc(p, "read", dup, BUF, 5) == 5           # the dup keeps the host file open
    p.close()
    assert sc(p, "read", dup, BUF, 5) == -errno.EBADF
    assert sc(p, "write", 1, BUF, 1) == -errno.EBADF
    p.close()                                        # twice is fine
