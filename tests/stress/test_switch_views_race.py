"""The lock-free views of the switch (``Machine.pcpu``, ``repr`` of a machine)
while another thread moves every context between paths (atk_switch's attack):
each answers where the machine runs or None - never an exception from
reading the PCPUs of one bring-up beside the switcher of another."""
from __future__ import annotations

import sys
import threading
import warnings
from collections import Counter

import pyvswitch
from effort import effort


def test_machine_pcpu_while_another_thread_binds_and_unbinds_never_raises():
    cycles = effort(ci=1000, dev=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hv = pyvswitch.open("datacenter")
    try:
        a = hv.create_vm("a")
        hv.switch_context(None, a, pcpu=1)
        seen: Counter = Counter()
        errors: Counter = Counter()
        done = threading.Event()

        def reader() -> None:
            while not done.is_set():
                try:
                    seen[a.pcpu] += 1
                    repr(a)
                except Exception as exc:    # noqa: BLE001 - counted, asserted below
                    errors[f"{type(exc).__name__}: {exc}"] += 1

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)     # threads interleave often: the torn read showed within 100 cycles
        t = threading.Thread(target=reader)
        t.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(cycles):
                    hv.unbind("mover")
                    hv.bind("mover")
        finally:
            done.set()
            t.join(60)
            sys.setswitchinterval(interval)
        assert not errors, errors.most_common(3)
        assert set(seen) <= {1, None} and seen[1] > 0
        assert hv.running(1) is a and a.pcpu == 1
    finally:
        hv.close()
