"""One error contract at every public entry point: a VswError (an OSError with
the errno a kernel would use) and a message, for every input - each row of the
"inputs that escape the error contract" list, and the fallback behaviour."""
from __future__ import annotations

import errno
import json
import pathlib
import subprocess
import sys

import pytest

import pyvswitch
from pyvswitch import VswError
from pyvswitch.cli import main

from locations import EXPLICIT  # every parameter written out

REFERENCE = open(str(EXPLICIT)).read()


def edit(old: str, new: str) -> str:
    assert old in REFERENCE, old
    return REFERENCE.replace(old, new)


def raises(code: int, fn, *args, match: str = "", **kw) -> VswError:
    with pytest.raises(VswError) as e:
        fn(*args, **kw)
    assert e.value.errno == code, (e.value.errno, str(e.value))
    assert match in str(e.value)
    assert str(e.value).strip() != f"[{errno.errorcode[code]}]"     # it says what was wrong
    return e.value


@pytest.fixture
def hv():
    with pyvswitch.open() as h:
        yield h


def test_pcpu_indices_are_checked_the_same_way_everywhere(hv):
    vm = hv.create_vm("vm")
    for bad in (-1, 1, True, False, 1.0, "0", None):
        if bad is not None:                     # None: the default, PCPU 0
            raises(errno.EINVAL, hv.switch_context, hv.host, vm, pcpu=bad, match="pcpu must be an integer 0..0")
        raises(errno.EINVAL, hv.run, 1, pcpu=bad, match="pcpu must be an integer 0..0")
        raises(errno.EINVAL, hv.running, bad, match="pcpu must be an integer 0..0")
        raises(errno.EINVAL, hv.pcpu, bad, match="pcpu must be an integer 0..0")
    assert hv.running(0) is hv.host and vm.pcpu is None            # nothing was switched


def test_counts_are_integers_that_fit(hv):
    before = hv.host.state()
    raises(errno.ERANGE, hv.run, 2 ** 64, match="below 2**64")
    raises(errno.EINVAL, hv.run, True, match="must be an integer")
    raises(errno.EINVAL, hv.run, -1, match=">= 0")
    raises(errno.EINVAL, hv.run, 2.0, match="must be an integer")
    raises(errno.ERANGE, pyvswitch.replay, 2 ** 70)
    assert hv.host.state() == before


def test_open_refuses_what_is_not_a_platform(tmp_path):
    raises(errno.EISDIR, pyvswitch.open, ".", match="is a directory")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(REFERENCE.encode().replace(b"# ", b"\xe9 ", 1))
    raises(errno.EINVAL, pyvswitch.open, str(bad), match="not UTF-8")
    raises(errno.EINVAL, pyvswitch.open, 42, match="not int")
    raises(errno.ENOENT, pyvswitch.open, "no-such-platform", match="built-in")


@pytest.mark.parametrize("old,new,match", [
    ("capacity_bytes = 8388608", "capacity_bytes = 4611686018427387904", "at most"),
    ("max_burst = 8192", "max_burst = 1099511627776", "at most"),
    ("width_bytes = 64", "width_bytes = 1099511627776", "at most"),
    ("clock_mhz = 3200", "clock_mhz = 8589934592", "at most"),
    ("read_threshold = 16 }", "read_threshold = 16, channels = 1000000 }", "at most 64"),
    ('name = "mem0"', 'name = "mem0"\nbus = "sbus0"', "the storage bus connects only the context store"),
])
def test_parameters_that_size_things_have_bounds(old, new, match):
    raises(errno.EINVAL, pyvswitch.open, edit(old, new), match=match)


def test_register_views_take_names_and_say_what_is_wrong(hv):
    vm = hv.create_vm("vm")
    e = raises(errno.EINVAL, vm.regs.__getitem__, ["rax"], match="named by a string")
    assert isinstance(e, KeyError)
    assert ["rax"] not in vm.regs and vm.regs.get(["rax"]) is None
    raises(errno.ENOENT, vm.regs.__getitem__, "raxx", match="no register 'raxx'")
    vm.regs.rax = 5                                                 # attribute writes work like reads
    assert vm.regs.rax == 5 and vm.regs["rax"] == 5
    with pytest.raises(AttributeError, match="no register"):
        vm.regs.raxx = 1
    raises(errno.EINVAL, hv.create_vm, "x", layout=["x86_64"], match="layout is a name or a Layout")
    raises(errno.EINVAL, pyvswitch.Layout.get, ["x86_64"])
    assert len(repr(hv.layout)) < 100 and "x86_64" in repr(hv.layout)


def test_set_state_counts_bytes_not_items(hv):
    vm = hv.create_vm("vm")
    raw = hv.host.state()
    words = memoryview(raw).cast("Q")                               # len() is size / 8
    vm.set_state(words)
    assert vm.state() == raw
    raises(errno.EINVAL, vm.set_state, raw[:-1], match=f"is {hv.layout.size} bytes, got {hv.layout.size - 1}")
    raises(errno.EINVAL, vm.set_state, "text", match="not str")


def test_sysfs_paths_are_strings(hv):
    from pyvswitch.kernel import KernelError
    for bad in (None, b"bus/platform/drivers/vsw-mover/unbind", 3):
        with pytest.raises(KernelError) as e:
            hv.kernel.sysfs.write(bad, "mover0")
        assert e.value.errno == errno.EINVAL and "a path is a string" in str(e.value)
        with pytest.raises(KernelError):
            hv.kernel.sysfs.read(bad)
    assert hv.path == "store"


def test_a_closed_hypervisor_refuses_everything_with_ebadf():
    hv = pyvswitch.open()
    vm = hv.create_vm("vm")
    hv.close()
    assert "closed" in repr(hv)
    for call in (lambda: hv.path, hv.report, hv.__enter__, lambda: hv.create_vm("b"), lambda: hv.run(1),
                 lambda: hv.switch_context(hv.host, vm), lambda: vm.regs["rax"], vm.snapshot, lambda: hv.machines,
                 lambda: hv.running(0), lambda: hv.pcpu(0), hv.fallback_reasons, lambda: hv.machine("vm")):
        raises(errno.EBADF, call)
    hv.close()                                                      # closing twice is fine


def test_repr_says_what_it_is(hv):
    r = repr(hv)
    assert "reference" in r and "1 PCPU" in r and "store path" in r


def test_demo_exits_1_when_a_declared_fast_path_does_not_come_up(tmp_path, capsys):
    f = tmp_path / "typo.toml"
    f.write_text(edit('compatible = ["vsw,mover"]', 'compatible = ["vsw,movr"]'))
    assert main(["demo", "--platform", str(f), "--switches", "20", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["fallback"] and "did you mean 'vsw,mover'" in doc["fallback"][0]
    assert main(["demo", "--platform", "no-mover", "--switches", "20"]) == 0     # never declared one
    assert main(["probe", "--platform", str(f), "--no-host"]) == 1
    assert "did you mean 'vsw,mover'" in capsys.readouterr().out


def test_bench_refuses_a_mover_the_mover_would_refuse(tmp_path):
    f = tmp_path / "thresholds.toml"
    f.write_text(edit("write_threshold = 16", "write_threshold = 1"))
    r = subprocess.run([sys.executable, "-m", "pyvswitch", "bench", "--quick", "--platform", str(f)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "[E2BIG]" in r.stderr and "raise max_burst or the thresholds" in r.stderr
    with pytest.warns(pyvswitch.FallbackWarning) as w:
        pyvswitch.open(str(f)).close()
    assert r.stderr.split("[E2BIG] ", 1)[1].strip() in str(w[0].message)     # the same message


def test_hardware_owners_refuse_integers_c_cannot_take(hv):
    import pyvswitch.hw as hw
    pcpu, path = hv.pcpu(0), hv.controller.channel.context
    for call in (lambda: pcpu.mark_dirty(2 ** 70), lambda: hw.Store("x86_64", 2 ** 70), lambda: hw.Trace(2 ** 40),
                 lambda: hv.host._slot.corrupt(2 ** 40), lambda: path.inject("save", 2 ** 40),
                 lambda: hw.Bus(kind="memory", width_bytes=2 ** 40), lambda: pcpu.run(2 ** 64)):
        raises(errno.ERANGE, call, match="must be below 2**")
    for call in (lambda: pcpu.mark_dirty(True), lambda: hw.Store("x86_64", 0), lambda: hw.Trace(-1),
                 lambda: path.inject("save", 1.0), lambda: hw.Bus(kind="memory", width_bytes=0)):
        raises(errno.EINVAL, call)
    assert hv.switch_context(hv.host, hv.create_vm("still-works")).path == "store"


def test_the_errors_table_names_real_errnos():
    # the documentation's errors table is rendered from this dict: every key must be an errno
    from pyvswitch.errors import ERRNO_MEANINGS
    from pyvswitch.kernel.errors import EPROBE_DEFER
    for name in ERRNO_MEANINGS:
        assert name == "EPROBE_DEFER" or isinstance(getattr(errno, name, None), int), name
    assert EPROBE_DEFER == 517 and "517" in ERRNO_MEANINGS["EPROBE_DEFER"]
