"""A model of the whole public API (issue 21, deliverable 6): hypothesis drives
switch, run, run_schedule, snapshot/restore, pin/unpin, create/destroy,
unbind/bind of every kind, fault injection and close against a plain-Python
model of what each machine must hold - the replay contract: a machine that ran
``n`` steps in all, however it was switched, moved or restored, holds
``pyvswitch.replay(n)``.  A second form runs the same kinds of calls from
several threads at once, each thread keeping its own ledger.
"""
from __future__ import annotations

import errno
import functools
import random
import threading
import time
import warnings
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import pyvswitch
from pyvswitch import FallbackWarning, VswError

pytestmark = pytest.mark.slow

from sized_platform import sized_platform
KINDS = ("pcpu", "mem", "memory-bus", "storage-bus", "context-store", "mover")
NEEDED = ("pcpu", "mem", "memory-bus")          # without one of them the contexts are parked
CAP, NPCPUS, MAX_VMS = 4, 2, 6


def platform(slots: int = CAP, npcpus: int = NPCPUS, homes: int = 16) -> str:
    return sized_platform(slots, npcpus, homes)


@functools.lru_cache(maxsize=None)
def replay(steps: int) -> bytes:
    return pyvswitch.replay(steps)


class ApiModel(RuleBasedStateMachine):
    """The hypervisor against its model: steps per machine, who runs where, pins,
    an armed fault, images taken - and what each call may answer."""

    @initialize()
    def boot(self) -> None:
        self.hv = pyvswitch.open(platform())
        self.steps: dict[str, int] = {"host": 0}
        self.running: dict[int, str | None] = {0: "host", **{i: None for i in range(1, NPCPUS)}}
        self.pinned = {"host"}
        self.fault = False                  # an injected cache fault not yet struck
        self.images: list[tuple[bytes, int]] = []
        self.closed = False
        self.made = 0
        self.taken = 0                      # steps so far
        for _ in range(3):
            self.create()

    def teardown(self) -> None:
        if hasattr(self, "hv"):
            self.hv.close()

    # --- what the model knows ------------------------------------------------------
    def parked(self) -> bool:
        return self.hv.path == "none"

    def store(self) -> bool:
        return self.hv.path == "store"

    def over(self, *extra: str | None) -> bool:
        """Whether the contexts that must be in the store (pinned, running, ``extra``) exceed it."""
        need = self.pinned | {m for m in self.running.values() if m} | {m for m in extra if m}
        return len(need) > CAP

    def call(self, fn, allowed: dict[int, bool]):
        """fn() -> (result, None), or (None, errno) for an errno ``allowed`` says may
        come (its value: whether it may); ENODEV always while parked, and then only it."""
        if self.parked():
            allowed = {**allowed, errno.ENODEV: True}
        try:
            return fn(), None
        except VswError as exc:
            assert allowed.get(exc.errno, False), f"{exc} was not expected (allowed {allowed})"
            if exc.errno == errno.EIO:
                self.fault = False
            return None, exc.errno

    def names(self) -> list[str]:
        return sorted(self.steps)

    # --- rules ---------------------------------------------------------------------------
    @precondition(lambda self: not self.closed and len(self.steps) <= MAX_VMS)
    @rule()
    def create(self) -> None:
        name = f"v{self.made}"
        m, err = self.call(lambda: self.hv.create_vm(name), {})
        if err is None:
            self.made += 1
            self.steps[name] = 0
            assert m.state() == replay(0)

    @precondition(lambda self: not self.closed)
    @rule(data=st.data())
    def destroy(self, data) -> None:
        name = data.draw(st.sampled_from(self.names()))
        on = name in self.running.values()
        _, err = self.call(lambda: self.hv.destroy_vm(self.hv.machine(name)),
                           {errno.EBUSY: on and name != "host", errno.EPERM: name == "host"})
        if err is None:
            assert name != "host" and not on
            del self.steps[name]
            self.pinned.discard(name)

    @precondition(lambda self: not self.closed)
    @rule(pcpu=st.integers(0, NPCPUS - 1), data=st.data())
    def switch(self, pcpu, data) -> None:
        to = data.draw(st.sampled_from([None, *self.names()]))
        frm = self.running[pcpu]
        elsewhere = to is not None and to in [m for i, m in self.running.items() if i != pcpu]
        hv = self.hv
        _, err = self.call(lambda: hv.switch_context(frm and hv.machine(frm), to and hv.machine(to), pcpu), {
            errno.EINVAL: frm is None and to is None, errno.EALREADY: to is not None and to == frm,
            errno.EBUSY: elsewhere, errno.ENOSPC: self.store() and self.over(to), errno.EIO: self.fault})
        if err is None:
            assert not elsewhere and to != frm or to is None and frm is None
            self.running[pcpu] = to

    @precondition(lambda self: not self.closed)
    @rule(pcpu=st.integers(0, NPCPUS - 1), n=st.integers(0, 5))
    def run(self, pcpu, n) -> None:
        on = self.running[pcpu]
        _, err = self.call(lambda: self.hv.run(n, pcpu=pcpu), {errno.ESRCH: on is None})
        if err is None:
            assert on is not None
            self.steps[on] += n

    @precondition(lambda self: not self.closed)
    @rule(pcpu=st.integers(0, NPCPUS - 1), switches=st.integers(0, 12), steps=st.integers(0, 3), data=st.data())
    def run_schedule(self, pcpu, switches, steps, data) -> None:
        on = self.running[pcpu]
        free = [n for n in self.names() if n not in self.running.values()]
        if on is None or not free:
            return
        others = data.draw(st.lists(st.sampled_from(free), min_size=1, max_size=3, unique=True))
        names = [on, *others]
        hv = self.hv
        s, err = self.call(lambda: hv.run_schedule([hv.machine(n) for n in names], switches, steps, pcpu=pcpu),
                           {errno.ENOSPC: self.store() and self.over(*others), errno.EIO: self.fault})
        if err is not None:
            return
        assert s.running.name == names[s.switches % len(names)]
        if s.why:
            assert s.errno == errno.EIO and self.fault or s.errno == errno.ENOSPC and self.over(*others), s.why
            self.fault = self.fault and s.errno != errno.EIO
        else:
            assert s.switches == switches
        if steps:
            for k in range(s.steps // steps):
                self.steps[names[k % len(names)]] += steps
        self.running[pcpu] = s.running.name

    @precondition(lambda self: not self.closed)
    @rule(data=st.data())
    def snapshot(self, data) -> None:
        name = data.draw(st.sampled_from(self.names()))
        img, err = self.call(lambda: self.hv.machine(name).snapshot(), {})
        if err is None:
            self.images.append((img, self.steps[name]))

    @precondition(lambda self: not self.closed and self.images)
    @rule(data=st.data())
    def restore(self, data) -> None:
        name = data.draw(st.sampled_from(self.names()))
        img, steps = data.draw(st.sampled_from(self.images))
        if data.draw(st.booleans()):
            with pytest.raises(VswError):       # truncated: refused, nothing changed
                self.hv.machine(name).restore(img[:-1])
            return
        _, err = self.call(lambda: self.hv.machine(name).restore(img), {})
        if err is None:
            self.steps[name] = steps

    @precondition(lambda self: not self.closed)
    @rule(data=st.data(), pinned=st.booleans())
    def pin(self, data, pinned) -> None:
        name = data.draw(st.sampled_from(self.names()))
        store = self.store()
        _, err = self.call(lambda: self.hv.cache.pin(self.hv.machine(name), pinned), {
            errno.ENODEV: not store, errno.ENOSPC: store and pinned and self.over(name),
            errno.EIO: self.fault and pinned})
        if err is None:
            (self.pinned.add if pinned else self.pinned.discard)(name)

    @precondition(lambda self: not self.closed)
    @rule(kind=st.sampled_from(["fetch", "writeback"]), group=st.integers(0, 3))
    def inject(self, kind, group) -> None:
        _, err = self.call(lambda: self.hv.cache.inject(kind, group), {errno.ENODEV: not self.store()})
        if err is None:
            self.fault = True

    @precondition(lambda self: not self.closed)
    @rule(kind=st.sampled_from(KINDS), bind=st.booleans())
    def unbind_or_bind(self, kind, bind) -> None:
        before = self.hv.path
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", FallbackWarning)
            done = self.hv.bind(kind) if bind else self.hv.unbind(kind)
        fell_back = [w for w in seen if issubclass(w.category, FallbackWarning)]
        after = self.hv.path
        bound = {k: all(_bound(self.hv, s.name) for s in self.hv.platform.of_kind(k)) for k in KINDS}
        if not all(bound[k] for k in NEEDED):
            assert after == "none"
        elif not all(bound.values()):
            assert after == "memory"
        elif bind and done:                     # everything bound again: the move to the fast path ran
            assert after == ("memory" if self.over() else "store"), (after, self.pinned, self.running)
            assert bool(fell_back) == self.over()
        if after != before or after == "none":
            self.fault = False                  # the cache it was armed in is gone

    @precondition(lambda self: not self.closed and self.parked())
    @rule(data=st.data())
    def bind_back(self, data) -> None:
        """Parked: every kind bound again in a drawn order (so parking does not end every story)."""
        for kind in data.draw(st.permutations(KINDS)):
            self.unbind_or_bind(kind, True)

    @precondition(lambda self: self.taken >= 30)     # late: the other rules get their turn first
    @rule()
    def close(self) -> None:
        """Closes (again: nothing) - every call is EBADF from then on."""
        hv = self.hv
        hv.close()
        self.closed = True
        for fn in (lambda: hv.run(1), lambda: hv.create_vm("late"), lambda: hv.cache,
                   lambda: hv.machines, lambda: hv.bind("mover")):
            with pytest.raises(VswError) as e:
                fn()
            assert e.value.errno == errno.EBADF
        hv.close()                              # twice: nothing

    # --- invariants ------------------------------------------------------------------------
    @invariant()
    def every_machine_is_its_replay(self) -> None:
        if not hasattr(self, "hv") or self.closed:
            return
        self.taken += 1
        if self.parked():
            return
        hv = self.hv
        assert sorted(m.name for m in hv.machines) == self.names()
        for i in range(NPCPUS):
            on = hv.running(i)
            assert (on.name if on else None) == self.running[i], i
        for name, n in self.steps.items():
            assert hv.machine(name).state() == replay(n), f"{name} is not replay({n})"


def _bound(hv: pyvswitch.Hypervisor, name: str) -> bool:
    """Whether the device exists (the store goes with its bus) and has a driver."""
    try:
        return hv.kernel.device(name).driver is not None
    except VswError:
        return False


ApiModel.TestCase.settings = settings(max_examples=60, stateful_step_count=50, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_the_api_against_its_model = ApiModel.TestCase


# --- the threaded form --------------------------------------------------------------------
class Player(threading.Thread):
    """Random calls on its own PCPU and machines, from a seed, keeping a ledger of the
    steps the calls that succeeded ran.  Refusals allowed: ENODEV (parked), EIO (a
    fault another thread armed: nothing changed)."""

    def __init__(self, hv: pyvswitch.Hypervisor, pcpu: int, ms: list[pyvswitch.Machine], seed: int,
                 done: threading.Event) -> None:
        super().__init__(daemon=True)
        self.hv, self.pcpu, self.ms, self.rng, self.done = hv, pcpu, ms, random.Random(seed), done
        self.steps: Counter[str] = Counter()
        self.images: list[tuple[bytes, int]] = []
        self.errors: list[BaseException] = []
        self.calls = Counter()

    def on(self) -> pyvswitch.Machine | None:
        return self.hv.running(self.pcpu)

    def run(self) -> None:
        hv, rng = self.hv, self.rng
        while not self.done.is_set():
            what = rng.choice(("switch", "run", "schedule", "snapshot", "restore", "module"))
            try:
                on = self.on()
                if what == "switch":
                    to = rng.choice([m for m in self.ms if m is not on])
                    hv.switch_context(on, to, self.pcpu)
                elif what == "module" and on is not None:
                    pyvswitch.switch_context(on, rng.choice([m for m in self.ms if m is not on]))
                elif what == "run" and on is not None:
                    n = rng.randrange(1, 4)
                    hv.run(n, pcpu=self.pcpu)
                    self.steps[on.name] += n
                elif what == "schedule" and on is not None:
                    names = [on] + [m for m in self.ms if m is not on]
                    s = hv.run_schedule(names, rng.randrange(1, 20), steps=2, pcpu=self.pcpu)
                    for k in range(s.steps // 2):
                        self.steps[names[k % len(names)].name] += 2
                    if s.why and s.errno not in (errno.ENODEV, errno.EIO):
                        self.errors.append(AssertionError(s.why))
                elif what == "snapshot":
                    m = rng.choice(self.ms)
                    self.images.append((m.snapshot(), self.steps[m.name]))
                elif what == "restore" and self.images:
                    m = rng.choice(self.ms)
                    img, n = rng.choice(self.images)
                    m.restore(img)
                    self.steps[m.name] = n
                self.calls[what] += 1
            except VswError as exc:
                if exc.errno not in (errno.ENODEV, errno.EIO):
                    self.errors.append(exc)
            except BaseException as exc:        # noqa: BLE001 - any other type breaks the contract
                self.errors.append(exc)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_api_from_many_threads_keeps_every_machine_its_replay(seed):
    """Three players on three PCPUs (a 6-context store: never more than 5 pinned or
    running) while the main thread unbinds and binds every kind, pins, creates,
    destroys and injects faults for a few seconds."""
    rng = random.Random(seed)
    with pyvswitch.open(platform(slots=6, npcpus=3, homes=32)) as hv:
        groups = [[hv.host, hv.create_vm("a0")], *[[hv.create_vm(f"{c}{i}") for i in range(2)] for c in "bc"]]
        for i in (1, 2):
            hv.switch_context(None, groups[i][0], pcpu=i)
        done = threading.Event()
        players = [Player(hv, i, ms, seed * 10 + i, done) for i, ms in enumerate(groups)]
        for p in players:
            p.start()
        extra: list[pyvswitch.Machine] = []
        deadline = time.monotonic() + 5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FallbackWarning)
            while time.monotonic() < deadline:
                what = rng.choice(("cycle", "pin", "create", "destroy", "inject"))
                try:
                    if what == "cycle":
                        kind = rng.choice(KINDS)
                        hv.unbind(kind)
                        time.sleep(rng.random() / 500)
                        for k in KINDS:         # whatever went with it comes back
                            hv.bind(k)
                    elif what == "pin":
                        hv.cache.pin(rng.choice(groups[1] + groups[2]), rng.random() < 0.3)
                    elif what == "create" and len(extra) < 4:
                        extra.append(hv.create_vm(f"x{len(extra)}-{rng.randrange(10**6)}"))
                    elif what == "destroy" and extra:
                        hv.destroy_vm(extra.pop())
                    elif what == "inject":
                        hv.cache.inject(rng.choice(["fetch", "writeback"]), rng.randrange(4))
                except VswError as exc:
                    assert exc.errno in (errno.ENODEV, errno.EIO, errno.ENOSPC), exc
                time.sleep(0.002)
            for k in KINDS:
                hv.bind(k)
        done.set()
        for p in players:
            p.join(30)
            assert not p.is_alive()
        errors = [e for p in players for e in p.errors]
        assert not errors, errors[:3]
        assert all(sum(p.calls.values()) > 10 for p in players) and len(hv.migrations) > 5
        for p in players:
            for m in p.ms:
                assert m.state() == replay(p.steps[m.name]), m.name
        for m in extra:
            assert m.state() == replay(0)
