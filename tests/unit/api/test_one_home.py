"""One home per mechanism (issue 23): the migration and the cache view reach the
hypervisor's hardware and machines through public methods only, and every "busy,
try again" above the hardware is the migration's one retry rule.

Read from the source with ``ast``, so a new reach into another object's private
attribute, or a new hand-written yield loop, fails here rather than in review."""
from __future__ import annotations

import ast
import errno
import threading

import locations
import pytest

import pyvswitch
from pyvswitch import VswError

PKG = locations.ROOT / "pyvswitch"

#: Modules that must use other objects' public attributes only (their own ``self._x`` is theirs).
PUBLIC_ONLY = ["migration.py", "store_cache.py", "bound.py"]

#: Where a "busy, try again" may yield: the one retry rule, and nowhere else in these modules.
RETRY_HOME = ("migration.py", "back_off")
NO_OWN_RETRY = ["api.py", "migration.py", "store_cache.py", "bound.py", *sorted(
    str(p.relative_to(PKG)) for p in (PKG / "kvm").glob("*.py"))]


def private_reaches(source: str) -> list[str]:
    """``obj._name`` where ``obj`` is not ``self``/``cls`` (dunders are the language's, not private)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        a = node.attr
        if not a.startswith("_") or (a.startswith("__") and a.endswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        out.append(f"line {node.lineno}: {ast.unparse(node)}")
    return out


def sleeps(source: str) -> list[tuple[str, int]]:
    """(enclosing function, line) of every ``time.sleep``/``sleep`` call."""
    out = []

    def visit(node: ast.AST, fn: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else fn
            if isinstance(child, ast.Call):
                f = child.func
                if (isinstance(f, ast.Attribute) and f.attr == "sleep") or (isinstance(f, ast.Name) and f.id == "sleep"):
                    out.append((fn, child.lineno))
            visit(child, name)

    visit(ast.parse(source), "<module>")
    return out


@pytest.mark.parametrize("module", PUBLIC_ONLY)
def test_uses_only_public_attributes_of_other_objects(module):
    found = private_reaches((PKG / module).read_text())
    assert not found, f"pyvswitch/{module} reaches into another object's private attributes: {found}"


@pytest.mark.parametrize("snippet, bad", [
    ("def f(self, hv):\n    return hv._path", True),
    ("def f(self):\n    return self.hv._pcpus[0]", True),
    ("def f(self, m):\n    return m._c is None", True),
    ("def f(self):\n    return self._hv.migration.epoch", False),
    ("def f(self, m):\n    return type(m).__name__, m.__class__", False),
])
def test_the_private_attribute_check_catches_a_reach(snippet, bad):
    """The checker above is not vacuous: it flags ``hv._x`` and ``self.x._y``, and
    passes ``self._x`` and dunders."""
    assert bool(private_reaches(snippet)) is bad


@pytest.mark.parametrize("module", NO_OWN_RETRY)
def test_no_busy_loop_outside_the_one_retry_rule(module):
    """A yield-and-try-again outside ``Migration.back_off`` is a second retry rule."""
    found = [(fn, line) for fn, line in sleeps((PKG / module).read_text())
             if (module, fn) != RETRY_HOME]
    assert not found, f"pyvswitch/{module} yields to try again itself at {found}: use Migration.retry"


def test_the_sleep_check_sees_a_loop():
    src = "import time\ndef f():\n    while g() == -11:\n        time.sleep(0)\n"
    assert sleeps(src) == [("f", 4)]
    assert [fn for fn, _ in sleeps((PKG / "migration.py").read_text())] == ["back_off"]


# --- the retry rule itself, on a live hypervisor ---------------------------------------
def test_retry_returns_the_first_answer_outside_the_rule():
    with pyvswitch.open() as hv:
        answers = iter([-errno.EAGAIN, -errno.ESTALE, -errno.EAGAIN, -errno.EIO])
        assert hv.migration.retry(lambda: next(answers)) == -errno.EIO
        assert hv.migration.retry(lambda: 7) == 7


def test_retry_counts_dropped_handles_as_busy():
    with pyvswitch.open() as hv:
        calls = []

        def call() -> int:
            calls.append(1)
            if len(calls) < 3:
                raise IndexError("handles dropped")
            return 0
        assert hv.migration.retry(call) == 0 and len(calls) == 3


def _migrating(mig) -> tuple[threading.Thread, threading.Event]:
    """A thread inside a migration of ``mig`` (begun when this returns) until the
    event it returns is set."""
    began, release = threading.Event(), threading.Event()

    def migrator() -> None:
        with mig.lock:
            mig.begin()
            began.set()
            release.wait(10)
            mig.end()

    t = threading.Thread(target=migrator)
    t.start()
    began.wait(10)
    return t, release


def test_a_busy_call_waits_for_the_migration_and_is_tried_after_it():
    """EAGAIN while another thread migrates: not tried again until the migration ends."""
    with pyvswitch.open() as hv:
        mig = hv.migration
        tries: list[bool] = []
        t, ended = _migrating(mig)
        result = []

        def call() -> int:
            tries.append(ended.is_set())
            return -errno.EAGAIN if len(tries) == 1 else 0

        w = threading.Thread(target=lambda: result.append(mig.retry(call)))
        w.start()
        while not tries and w.is_alive():   # its first try, refused
            w.join(0.01)
        ended.set()                         # a second try before this would be recorded False
        t.join(10)
        w.join(10)
        assert result == [0] and tries == [False, True]


def test_a_call_waiting_at_the_gate_ends_with_ebadf_when_the_hypervisor_closes():
    hv = pyvswitch.open()
    mig = hv.migration
    t, release = _migrating(mig)
    out: list[BaseException] = []

    def waiter() -> None:
        try:
            mig.retry(lambda: -errno.ESTALE)
        except VswError as exc:
            out.append(exc)

    w = threading.Thread(target=waiter)
    w.start()
    release.set()
    t.join(10)
    hv.close()
    w.join(10)
    assert not w.is_alive() and len(out) == 1 and out[0].errno == errno.EBADF


def test_pin_retries_under_the_rule_and_changes_nothing_on_a_real_refusal():
    """cache.pin goes through Migration.retry: a machine of another hypervisor is
    refused (EINVAL) at once, not retried, and pins nothing."""
    with pyvswitch.open() as hv, pyvswitch.open() as other:
        vm = hv.create_vm("a")
        stranger = other.create_vm("b")
        with pytest.raises(VswError) as e:
            hv.cache.pin(stranger)
        assert e.value.errno == errno.EINVAL
        hv.cache.pin(vm)
        assert hv.cache.where(vm).pinned and not other.cache.where(stranger).pinned


# --- the bound hardware: one holder, dropped and taken again by the migration only ----------
def test_the_bound_hardware_is_dropped_while_parked_and_taken_again_whole():
    """Unbinding a PCPU parks every context: the hardware holds no handle, no path, no
    cache, and the epoch moved (old handles are stale); binding it takes everything
    again - one PCPU and handle per PCPU, a switcher over them, the fast path - under a newer epoch,
    every register as it was.  close() drops it all for good."""
    hv = pyvswitch.open()
    hw = hv._hw
    vm = hv.create_vm("a")
    vm.regs["rax"] = 0x1234
    hv.switch_context(hv.host, vm)
    e0 = hv.migration.epoch
    hv.unbind("pcpu")
    assert hv.path == "none" and hv.migration.parked is not None
    assert (hw.pcpus, hw.handles, hw.path, hw.memory, hw.cache) == ([], [], None, None, None)
    assert hv._switcher is hw.switcher
    with pytest.raises(IndexError):
        hw.switcher.owner(0)                # a switcher over no PCPU
    assert hv.migration.epoch > e0
    with pytest.raises(VswError) as e:
        hv.switch_context(vm, hv.host)
    assert e.value.errno == errno.ENODEV
    e1 = hv.migration.epoch
    hv.bind("pcpu")
    assert hv.path == "store" and hw.fast and hw.cache is not None and hv.migration.epoch > e1
    assert len(hw.pcpus) == len(hw.handles) == hv.npcpus and hv._switcher is hw.switcher
    assert [hw.switcher.owner(i) for i in range(hv.npcpus)] == [p.owner for p in hw.pcpus]
    assert hv.running(0) is vm and vm.regs["rax"] == 0x1234
    hv.switch_context(vm, hv.host)
    hv.close()
    assert hw.handles == [] and hw.path is None and hv.migration.closed
    with pytest.raises(VswError) as e:
        hv.switch_context(hv.host, vm)
    assert e.value.errno == errno.EBADF
