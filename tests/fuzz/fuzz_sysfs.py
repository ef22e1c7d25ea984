"""Fuzz: sysfs reads and writes.  Every access is served or refused with a
KernelError; a refused write changes no binding; the switch path always follows
what is bound, and no context is ever lost."""
from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import atheris  # noqa: E402

with atheris.instrument_imports():
    import pyvswitch
    from pyvswitch import KernelError, VswError

from _common import main  # noqa: E402

warnings.simplefilter("ignore", pyvswitch.FallbackWarning)
HV = pyvswitch.open()
VM = HV.create_vm("vm")
HV.run(77)
STATE = {m.name: m.state() for m in HV.machines}
TREE = sorted(HV.kernel.sysfs.tree())
WRITABLE = [p for p, mode in HV.kernel.sysfs.tree().items() if "w" in mode]
VALUES = ["mover0", "store0", "sbus0", "pcpu0", "mem0", "membus0", "vsw-mover", "add", "change", "remove", "bind",
          "unbind", "0", "1", "", "\n"]


def bindings() -> dict[str, str | None]:
    return {d.name: d.driver.name if d.driver else None for d in HV.kernel.devices}


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        pick = fdp.ConsumeIntInRange(0, 3)
        path = (WRITABLE[fdp.ConsumeIntInRange(0, len(WRITABLE) - 1)] if pick < 2 else
                TREE[fdp.ConsumeIntInRange(0, len(TREE) - 1)] if pick == 2 else fdp.ConsumeUnicode(30))
        value = VALUES[fdp.ConsumeIntInRange(0, len(VALUES) - 1)] if fdp.ConsumeBool() else fdp.ConsumeUnicode(12)
        before = bindings()
        try:
            if fdp.ConsumeBool():
                HV.kernel.sysfs.read(path)
            else:
                HV.kernel.sysfs.write(path, value)
        except KernelError:
            assert bindings() == before, f"a refused write to {path!r} changed a binding"
    # bring everything back, then nothing may be lost
    for _ in range(3):
        for d in HV.kernel.devices:
            if d.driver is None and d.bus is not None:
                try:
                    HV.kernel.probe(d)
                except (KernelError, VswError):
                    pass
    if HV.path != "none":
        for m in HV.machines:
            assert m.state() == STATE[m.name], f"{m.name}'s context changed"


def seeds() -> list[bytes]:
    return [bytes(range(48)), bytes(48), b"\x01\x02\x03" * 16]


if __name__ == "__main__":
    main(test_one_input, seeds)
