"""The reference a switched machine is checked against: the same work done alone.

The deterministic workload (``Hypervisor.run``) makes the state after ``n``
steps depend only on the register state before them - not on the machine's id
or name, nor on the PCPU, platform or path it runs on - and every machine
starts in its layout's reset state.  So a machine that ran ``a`` steps, was
switched out and in any number of times, and then ran ``b`` more holds exactly
``replay(a + b)``; anything else means a switch lost or leaked state.
"""
from __future__ import annotations

from .hw import Bus, Layout, Path, Pcpu, Store
from .hw.pcpu import check_count


def replay(steps: int, layout: "str | Layout" = "x86_64") -> bytes:
    """The register file (``layout.size`` bytes) of a machine that ran ``steps``
    steps of the workload alone from the reset state - compare it with
    ``Machine.state()``."""
    check_count(steps, "steps")
    lay = Layout.get(layout)
    store = Store(lay, 4 * lay.image_size + (64 << 10))
    path = Path.memory(store, Bus(kind="memory"))
    pcpu = Pcpu(lay)
    slot = store.alloc(1)
    pcpu.switch(path, 0, slot)
    pcpu.run(steps)
    return pcpu.read(0, lay.size)


__all__ = ["replay"]
