"""Default model parameters, each with where it comes from (README: "Defaults").

The built-in reference platform uses exactly these; platform files override them.
"""
from __future__ import annotations

from .hw import BusParams, MoverParams

#: PCPU clock, MHz: a typical server core.
CPU_MHZ = 3000
#: VM exit + entry, PCPU cycles, paid by both paths: published round trips are
#: roughly 1,300-2,000 cycles on recent x86 (DESIGN.md); we take the middle.
EXIT_ENTRY_CYCLES = 1500
#: The storage bus: on-die, point-to-point, a 64-byte (cache-line) data path at
#: 2 GHz with a 4-cycle descriptor setup, like an uncore interconnect link.
STORAGE_BUS = BusParams(kind="storage", width_bytes=64, clock_mhz=2000, setup_cycles=4)
#: The memory bus: one DDR4-3200 channel, 8 bytes per transfer at 3200 MT/s; each
#: transaction first waits CL22 (13.75 ns = 44 transfer clocks, JEDEC DDR4-3200AA);
#: other masters move 64-byte cache lines.
MEMORY_BUS = BusParams(kind="memory", width_bytes=8, clock_mhz=3200, setup_cycles=44, shared=True,
                       utilisation=0.0, other_bytes=64, seed=1)
#: The mover: 4 KiB bursts (one x86_64 context in one burst); the patent's thresholds.
MOVER = MoverParams(max_burst=8192, write_threshold=16, read_threshold=16)
#: Context store capacity: 8 MiB of SRAM (how many contexts: python scripts/platforms).
STORE_BYTES = 8 << 20
#: The prior art's MEM region for contexts.
MEM_BYTES = 64 << 20
