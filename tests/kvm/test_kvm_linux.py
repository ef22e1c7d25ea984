"""Unmodified static Linux programs as KVM guests: Debian's busybox-static and C
programs built with musl-gcc -static, each one's stdout and exit status equal to
the same binary run natively, alone and preempted among others at 50 us."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

import pyvswitch
from pyvswitch.errors import VswError
from pyvswitch.guest.linux import LinuxImage
from pyvswitch.hw.kvm import why_unusable
from pyvswitch.kvm import Scheduler

WHY = why_unusable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"no usable KVM: {WHY}")

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def _static(path: str) -> str | None:
    """Why ``path`` cannot be a Linux guest, or None."""
    if not os.path.exists(path):
        return f"{path} is not installed (apt-get install busybox-static)"
    try:
        LinuxImage.read(path)
    except VswError as e:
        return f"{path} is not a static program ({e}); install busybox-static"
    return None


NO_BUSYBOX = _static(BUSYBOX)
NO_MUSL = None if shutil.which("musl-gcc") else "musl-gcc is not installed (apt-get install musl-tools)"
needs_busybox = pytest.mark.skipif(NO_BUSYBOX is not None, reason=str(NO_BUSYBOX))
needs_musl = pytest.mark.skipif(NO_MUSL is not None, reason=str(NO_MUSL))

#: busybox applets: awk programs, md5sum/sort/gzip -c of files under --ro-dir,
#: sh -c arithmetic and loops, expr, seq
CASES = {
    "awk-sum": ["awk", "{s += $1; n[$3 % 7]++} END {print s, NR; for (k = 0; k < 7; k++) printf \"%d \", n[k]; print \"\"}",
                "nums.txt"],
    "awk-fields": ["awk", "-F", ",", "{printf \"%-8s|%5.2f\\n\", toupper($1), $2 / 3}", "table.csv"],
    "md5sum": ["md5sum", "fruit.txt", "nums.txt", "d/deep.txt"],
    "sort": ["sort", "fruit.txt"],
    "sort-n": ["sort", "-n", "-r", "-k", "1", "nums.txt"],
    "gzip": ["gzip", "-c", "nums.txt"],
    "sh-loop": ["sh", "-c", "i=0; s=0; while [ $i -lt 200 ]; do s=$((s + i * i % 13)); i=$((i + 1)); done; "
                            "echo sum=$s; for w in a b c; do echo \"$w$((i / 3))\"; done; exit 7"],
    "expr": ["expr", "12", "*", "(", "7", "+", "5", ")"],
    "seq": ["seq", "-s", ",", "3", "4", "60"],
    "cat-dir": ["ls", "-1", "d"],
}


@pytest.fixture(scope="module")
def ro(tmp_path_factory):
    root = tmp_path_factory.mktemp("ro")
    (root / "fruit.txt").write_text("pear\napple\nfig\nbanana\ncherry\n")
    (root / "nums.txt").write_text("".join(f"{i * 7919 % 1013} x {i}\n" for i in range(1, 800)))
    (root / "table.csv").write_text("".join(f"item{i},{i * 3.5}\n" for i in range(20)))
    (root / "d").mkdir()
    (root / "d" / "deep.txt").write_text("deep\n" * 100)
    (root / "d" / "link").symlink_to("../fruit.txt")
    return str(root)


def native(argv: list[str], ro: str) -> tuple[bytes, int]:
    r = subprocess.run(argv, cwd=ro, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return r.stdout, r.returncode


def run_together(programs: list[tuple[str, list[str]]], ro: str, slice_us: float = 50.0,
                 order: str = "round-robin", extra: bool = True) -> list:
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        jobs = [s.add_linux(hv.create_vm(f"lx{i}"), path, argv, [], ro_dir=ro) for i, (path, argv) in
                enumerate(programs)]
        if extra:
            s.add(hv.create_vm("freestanding"), "hash", 500)          # a freestanding guest beside them
        s.run(slice_us=slice_us, order=order, rng_seed=7)
        out = [(bytes(j.output), j.exit_status, j.error or (str(j.crash) if j.crash else None), j.linux.report())
               for j in jobs]
        for j in jobs:
            j.linux.close()
        return out


@needs_busybox
@pytest.mark.parametrize("name", sorted(CASES))
def test_busybox_alone_equals_native(name, ro):
    argv = CASES[name]
    want = native([BUSYBOX, *argv], ro)
    (out, status, error, rep), = run_together([(BUSYBOX, ["busybox", *argv])], ro, slice_us=10_000, extra=False)
    assert error is None, (error, rep)
    assert (out, status) == want, rep
    assert want[0] or want[1]               # something to compare


@needs_busybox
@pytest.mark.slow
@pytest.mark.parametrize("reverse", [False, True])
def test_busybox_preempted_at_50us_both_orders(reverse, ro):
    names = sorted(CASES)[::-1] if reverse else sorted(CASES)
    progs = [(BUSYBOX, ["busybox", *CASES[n]]) for n in names]
    got = run_together(progs, ro, slice_us=50)
    for n, (out, status, error, rep) in zip(names, got):
        assert error is None, (n, error)
        assert (out, status) == native([BUSYBOX, *CASES[n]], ro), n


@needs_busybox
def test_busybox_random_order_preempted(ro):
    names = ["gzip", "sh-loop", "awk-sum"]
    got = run_together([(BUSYBOX, ["busybox", *CASES[n]]) for n in names], ro, slice_us=50, order="random")
    assert [(o, s) for o, s, _, _ in got] == [native([BUSYBOX, *CASES[n]], ro) for n in names]


@needs_busybox
def test_busybox_stays_inside_ro_dir(ro, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside\n")
    (out, status, error, _), = run_together(
        [(BUSYBOX, ["busybox", "cat", "../../" + os.path.relpath(str(secret), "/"), str(secret), "d/link"])], ro,
        extra=False)
    assert error is None and b"outside" not in out
    assert out == b"pear\napple\nfig\nbanana\ncherry\n" and status == 1


C_PROGRAM = r"""
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <fcntl.h>

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int *v = malloc(n * sizeof *v);
    unsigned x = 12345;
    for (int i = 0; i < n; i++) { x = x * 1103515245 + 12345; v[i] = (x >> 8) % 100000; }
    qsort(v, n, sizeof *v, cmp);
    double acc = 0;
    for (int i = 0; i < n; i += 7) acc += sqrt((double)v[i]) + sin(i) * cos(i / 3.0) + log1p(i);
    printf("n=%d min=%d max=%d acc=%.6f strtod=%g\n", n, v[0], v[n - 1], acc, strtod("2.5e3", 0));
    char *big = malloc(3 << 20);          /* mmap'd by musl's malloc */
    memset(big, 'q', 3 << 20);
    big = realloc(big, 6 << 20);          /* mremap */
    printf("big %c%c\n", big[0], big[(3 << 20) - 1]);
    free(big);
    long r = syscall(SYS_write, 1, (void *)8, 5);
    printf("bad pointer: %ld %s\n", r, strerror(errno));
    r = syscall(1000, 1, 2, 3);
    printf("unknown call: %ld %s\n", r, strerror(errno));
    int fd = open("d/deep.txt", O_RDONLY);
    char buf[16] = {0};
    printf("file: fd %d read %zd '%.4s'\n", fd, read(fd, buf, 10), buf);
    printf("missing: %d %s\n", open("nope/x.txt", O_RDONLY), strerror(errno));
    fflush(stdout);
    return n % 256;
}
"""


@pytest.fixture(scope="module")
def cprog(tmp_path_factory):
    if NO_MUSL:
        pytest.skip(NO_MUSL)
    d = tmp_path_factory.mktemp("musl")
    (d / "p.c").write_text(C_PROGRAM)
    subprocess.run(["musl-gcc", "-static", "-O2", "-o", str(d / "p"), str(d / "p.c"), "-lm"], check=True)
    return str(d / "p")


@needs_musl
def test_musl_program_alone_and_preempted_equals_native(cprog, ro):
    want = native([cprog, "3001"], ro)
    assert b"bad pointer: -1 Bad address" in want[0]
    alone = run_together([(cprog, ["p", "3001"])], ro, slice_us=10_000, extra=False)
    assert alone[0][:3] == (*want, None)
    progs = [(cprog, ["p", "3001"]), (cprog, ["p", "77"])]
    if not NO_BUSYBOX:
        progs.append((BUSYBOX, ["busybox", *CASES["gzip"]]))
    for order in (progs, progs[::-1]):
        got = run_together(order, ro, slice_us=50)
        for (path, argv), (out, status, error, rep) in zip(order, got):
            assert error is None
            assert (out, status) == native([path, *argv[1:]], ro)
    assert alone[0][3]["enosys"].get("1000") == 1


FAULT = r"""
#include <stdio.h>
int main(void) { puts("before"); fflush(stdout); return *(volatile int *)16; }
"""

MANY = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { long s = 0; for (int i = 0; i < 1300; i++) s += getppid(); printf("%ld\n", s); return 0; }
"""


def _build(tmp_path, name: str, src: str) -> str:
    (tmp_path / f"{name}.c").write_text(src)
    subprocess.run(["musl-gcc", "-static", "-O1", "-o", str(tmp_path / name), str(tmp_path / f"{name}.c")],
                   check=True)
    return str(tmp_path / name)


@needs_musl
def test_a_faulting_linux_guest_is_reported_and_the_others_go_on(tmp_path, cprog, ro):
    bad = _build(tmp_path, "fault", FAULT)
    got = run_together([(bad, ["fault"]), (cprog, ["p", "500"])], ro, slice_us=50)
    assert got[0][0] == b"before\n" and got[0][1] is None and "triple fault" in got[0][2]
    assert got[1][:2] == native([cprog, "500"], ro)


@needs_musl
@pytest.mark.parametrize("fresh", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_many_system_calls_on_one_vcpu_or_a_fresh_one_each(tmp_path, ro, fresh):
    """1300 calls; with ``fresh`` every call resumes on a new vCPU (the fallback for a
    host whose vCPU stays down after the shutdown that carries a call), and past
    KVM_CAP_MAX_VCPUS vCPUs a fresh VM takes over the same guest memory."""
    prog = _build(tmp_path, "many", MANY)
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        s.linux_fresh_vcpu = fresh
        job = s.add_linux(hv.create_vm("many"), prog, ["many"], ro_dir=ro)
        s.add(hv.create_vm("free"), "hash", 300)
        s.run(slice_us=50)
        assert job.error is None and job.exit_status == 0 and bytes(job.output) == b"1300\n"
        assert job.linux.report()["served"]["getppid"] == 1300


def test_dynamic_program_refused_naming_interpreter(tmp_path):
    prog = next((p for p in ("/bin/ls", "/usr/bin/env") if os.path.exists(p)), None)
    if prog is None or b"ld-linux" not in open(prog, "rb").read(4096):
        pytest.skip("no dynamically linked program here")
    with pyvswitch.open("reference-kvm") as hv:
        vm = hv.create_vm("dyn")
        before = vm.state()
        with pytest.raises(VswError) as e:
            Scheduler(hv).add_linux(vm, prog)
        assert e.value.errno == errno.ENOEXEC and "ld-linux" in str(e.value)
        assert vm.state() == before


@needs_busybox
def test_cli_run_linux_passes_arguments_and_exit_status(ro, capfd):
    from pyvswitch.cli import main
    rc = main(["run", "--ro-dir", ro, "--slice-us", "50", "--linux", BUSYBOX, "sh", "-c",
               "echo $((6 * 7)); exit 5"])
    out, err = capfd.readouterr()
    assert (rc, out) == (5, "42\n")
    rc = main(["run", "--copies", "2", "--json", "--ro-dir", ro, "--linux", BUSYBOX, "md5sum", "fruit.txt"])
    out, _ = capfd.readouterr()
    import json
    doc = json.loads(out)
    assert rc == 0 and doc["same"] and len(doc["copies"]) == 2
    assert doc["copies"][0]["stdout"].encode() == native([BUSYBOX, "md5sum", "fruit.txt"], ro)[0]


def test_cli_run_linux_refuses_dynamic_and_missing(tmp_path, capfd):
    from pyvswitch.cli import main
    assert main(["run", "--linux", str(tmp_path / "nope")]) == 2
    assert "nope" in capfd.readouterr().err
    prog = "/bin/ls"
    if os.path.exists(prog) and b"ld-linux" in open(prog, "rb").read(4096):
        assert main(["run", "--linux", prog, "-l"]) == 2
        assert "interpreter" in capfd.readouterr().err


@needs_busybox
@pytest.mark.parametrize("kw,code", [({"mem_bytes": 8 << 20}, errno.EINVAL),
                                     ({"argv": ["busybox", "x" * (5 << 20)]}, errno.E2BIG),
                                     ({"argv": ["busy\0box"]}, errno.EINVAL),
                                     ({"envp": ["A=\0"]}, errno.EINVAL),
                                     ({"ro_dir": "/nonexistent/dir"}, errno.ENOTDIR)])
def test_add_linux_refused_leaves_the_machine_as_it_was(kw, code):
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        vm = hv.create_vm("refused")
        before = vm.state()
        argv = kw.pop("argv", ["busybox", "true"])
        envp = kw.pop("envp", [])
        with pytest.raises(VswError) as e:
            s.add_linux(vm, BUSYBOX, argv, envp, **kw)
        assert e.value.errno == code
        assert vm.state() == before and s.jobs == []
        job = s.add_linux(vm, BUSYBOX, ["busybox", "true"])        # and it can still take a program
        s.run(slice_us=10_000)
        assert job.exit_status == 0


@needs_busybox
def test_stdin_from_bytes_like_a_native_pipe(ro):
    data = b"".join(b"%d w%d\n" % (i * 37 % 101, i) for i in range(300))
    argv = ["sort", "-n", "-k", "1"]
    want = subprocess.run([BUSYBOX, *argv], cwd=ro, env={}, input=data, capture_output=True, timeout=60)
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        job = s.add_linux(hv.create_vm("stdin"), BUSYBOX, ["busybox", *argv], ro_dir=ro, stdin=data)
        s.run(slice_us=50)
        assert (bytes(job.output), job.exit_status) == (want.stdout, want.returncode)


@needs_busybox
@pytest.mark.slow
def test_hypothesis_drawn_schedules(ro):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as hst
    names = ["awk-sum", "sh-loop"]
    want = [native([BUSYBOX, *CASES[n]], ro) for n in names]

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
    @given(picks=hst.lists(hst.integers(0, 2), min_size=1, max_size=64), slice_us=hst.sampled_from([20, 50, 200]))
    def check(picks, slice_us):
        turn = [0]

        def policy(runnable, last):
            turn[0] += 1
            return runnable[picks[turn[0] % len(picks)] % len(runnable)]

        with pyvswitch.open("reference-kvm") as hv:
            s = Scheduler(hv)
            jobs = [s.add_linux(hv.create_vm(n), BUSYBOX, ["busybox", *CASES[n]], ro_dir=ro) for n in names]
            s.add(hv.create_vm("free"), "vecsum", 200)
            s.run(slice_us=max(slice_us, s.vcpu.shortest_slice_ns() / 1000), order=policy)
            assert [(bytes(j.output), j.exit_status) for j in jobs] == want

    check()


HELLO = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static const char *table[] = {"zero", "one", "two", "three"};   /* pointers: relocated at start-up */
int main(int argc, char **argv) {
    char *p = malloc(50000);
    memset(p, 3, 50000);
    long s = 0;
    for (int i = 0; i < 50000; i++) s += p[i];
    printf("%s argc=%d last=%s sum=%ld at %s\n", table[argc % 4], argc, argv[argc - 1], s,
           (unsigned long)&table < 0x400000 ? "low" : "placed");
    return argc;
}
"""


@needs_musl
def test_static_pie_program(tmp_path, ro):
    """musl's rcrt1.o relocates a static-PIE program itself, from AT_PHDR/AT_BASE."""
    lib = "/usr/lib/x86_64-linux-musl"
    if not os.path.exists(f"{lib}/rcrt1.o"):
        pytest.skip(f"no {lib}/rcrt1.o (musl-tools without static-PIE start-up code)")
    (tmp_path / "h.c").write_text(HELLO)
    gcc_inc = subprocess.run(["gcc", "-print-file-name=include"], capture_output=True, text=True).stdout.strip()
    libgcc = subprocess.run(["gcc", "-print-libgcc-file-name"], capture_output=True, text=True).stdout.strip()
    prog = str(tmp_path / "h")
    subprocess.run(["gcc", "-fPIE", "-O2", "-nostdinc", "-isystem", "/usr/include/x86_64-linux-musl", "-isystem",
                    gcc_inc, "-c", str(tmp_path / "h.c"), "-o", prog + ".o"], check=True)
    subprocess.run(["gcc", "-static-pie", "-nostdlib", "-o", prog, f"{lib}/rcrt1.o", f"{lib}/crti.o", prog + ".o",
                    f"{lib}/libc.a", libgcc, f"{lib}/crtn.o"], check=True)
    img = LinuxImage.read(prog)
    assert img.pie
    want = native([prog, "a", "b"], ro)
    (out, status, error, _), = run_together([(prog, [prog, "a", "b"])], ro, slice_us=50)
    assert error is None and (out, status) == want


FORGED = r"""
#include <stdio.h>
/* A system call made by jumping to the entry stub with the caller's own R11
 * (SYSCALL would have put RFLAGS there) asking for IOPL 3, NT and TF's neighbours. */
int main(void)
{
    unsigned long flags, r;
    __asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
                     "mov $0x7202, %%r11\n\t"       /* IF, IOPL 3, NT */
                     "mov $110, %%eax\n\t"          /* getppid */
                     "jmp *%2\n\t"
                     "syscall\n"                    /* never run: RCX points past it, as after one */
                     "1:\n\t"
                     "pushfq\n\tpop %0"
                     : "=r"(flags), "=a"(r) : "r"(STUB_VA) : "rcx", "r11", "memory");
    printf("ppid %lu iopl %lu nt %lu\n", r, (flags >> 12) & 3, (flags >> 14) & 1);
    return 0;
}
"""


@needs_musl
def test_a_forged_system_call_cannot_raise_its_io_privilege(tmp_path, ro):
    """A guest that jumps to LSTAR itself, with an R11 of its choosing, is served as
    a system call; the RFLAGS it returns with are what Linux gives back (a real
    SYSCALL's RFLAGS have IOPL 0 at CPL 3), not IOPL 3 and NT: with IOPL 3 a CPL 3
    guest could CLI and reach I/O ports."""
    from pyvswitch.kvm.linux import STUB_VA
    (tmp_path / "forged.c").write_text(FORGED)
    subprocess.run(["musl-gcc", "-static", "-O1", f"-DSTUB_VA={STUB_VA:#x}ul", "-o", str(tmp_path / "forged"),
                    str(tmp_path / "forged.c")], check=True)
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        job = s.add_linux(hv.create_vm("forged"), str(tmp_path / "forged"), ["forged"], ro_dir=ro)
        s.run(slice_us=50)
    assert job.error is None and job.crash is None and job.exit_status == 0, job
    assert bytes(job.output) == b"ppid 1 iopl 0 nt 0\n"


UD_AFTER_CALL = r"""
int main(void)
{
    __asm__ volatile("mov $110, %%eax\n\tsyscall\n\tud2" ::: "rax", "rcx", "r11", "memory");
    return 0;
}
"""


@needs_musl
def test_a_guest_faulting_at_a_calls_return_does_not_put_the_others_on_fresh_vcpus(tmp_path, ro):
    """A shutdown at the return address of the call just served is taken as a vCPU
    that did not survive the call, and every later call of every Linux guest then
    resumes on a fresh vCPU.  A guest whose first instruction after a call faults
    (ud2) gives that shutdown too, and again once retried: it is its crash, and
    the scheduler must not stay on fresh vCPUs for everyone (it did)."""
    bad = _build(tmp_path, "ud", UD_AFTER_CALL)
    many = _build(tmp_path, "many", MANY)
    with pyvswitch.open("reference-kvm") as hv:
        s = Scheduler(hv)
        crash = s.add_linux(hv.create_vm("ud"), bad, ["ud"], ro_dir=ro)
        job = s.add_linux(hv.create_vm("many"), many, ["many"], ro_dir=ro)
        s.run(slice_us=50)
        assert crash.crash is not None and "triple fault" in str(crash.crash) and crash.exit_status is None
        assert job.error is None and job.exit_status == 0 and bytes(job.output) == b"1300\n"
        assert s.linux_fresh_vcpu is False
