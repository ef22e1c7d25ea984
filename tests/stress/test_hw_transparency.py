"""Switching is invisible: interleaved runs leave every machine as if it ran alone."""
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from rigs import make_rig  # a state machine takes no fixtures
from strategies import register_values

pytestmark = pytest.mark.slow


class Interleaving(RuleBasedStateMachine):
    """Several machines share one PCPU; each also has a solo twin on a PCPU of its own."""

    layout = "x86_64"
    machines = 4

    def __init__(self) -> None:
        super().__init__()
        self.rig = make_rig(self.layout, max_burst=512, threshold=64)
        self.slots = {m: self.rig.store.alloc(m) for m in range(1, self.machines + 1)}
        self.twins = {}
        for m in self.slots:
            twin = make_rig(self.layout)
            twin.pcpu.switch(twin.mover, 0, twin.slot(m))
            self.twins[m] = twin
        self.running = 0

    def state_of(self, m: int) -> bytes:
        if m == self.running:
            return bytes(self.rig.pcpu.raw())
        return self.slots[m].read(0, self.rig.layout.size)

    @rule(m=st.integers(1, 4))
    def switch(self, m):
        if m != self.running:
            self.rig.pcpu.switch(self.rig.mover, self.running, self.slots[m])
            self.running = m

    @precondition(lambda self: self.running)
    @rule(steps=st.integers(0, 300))
    def run(self, steps):
        self.rig.pcpu.run(steps)
        self.twins[self.running].pcpu.run(steps)

    @precondition(lambda self: self.running)
    @rule(name=st.sampled_from(["rax", "xmm9", "zmm20", "k3", "msr.star", "dr7"]), value=register_values)
    def write(self, name, value):
        self.rig.pcpu.regs[name] = value
        self.twins[self.running].pcpu.regs[name] = value

    @invariant()
    def every_machine_is_as_if_alone(self):
        for m, twin in self.twins.items():
            assert self.state_of(m) == bytes(twin.pcpu.raw()), f"machine {m}"


class InterleavingArm(Interleaving):
    layout = "aarch64"

    @precondition(lambda self: self.running)
    @rule(name=st.sampled_from(["x0", "v31", "tpidr_el0", "sp"]), value=register_values)
    def write(self, name, value):
        self.rig.pcpu.regs[name] = value
        self.twins[self.running].pcpu.regs[name] = value


TestInterleaving = Interleaving.TestCase
TestInterleaving.settings = settings(max_examples=40, stateful_step_count=30)
TestInterleavingArm = InterleavingArm.TestCase
TestInterleavingArm.settings = settings(max_examples=20, stateful_step_count=30)
