"""Fuzz: register views, set_state and restore on running and saved machines.
A refused access changes nothing; an accepted write reads back."""
from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import atheris  # noqa: E402

with atheris.instrument_imports():
    import pyvswitch
    from pyvswitch import VswError

from _common import main  # noqa: E402

warnings.simplefilter("ignore", pyvswitch.FallbackWarning)
HV = pyvswitch.open()
VM = HV.create_vm("vm")
NAMES = list(HV.layout.fields)


def value(fdp: "atheris.FuzzedDataProvider") -> object:
    kind = fdp.ConsumeIntInRange(0, 5)
    if kind == 0:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 80))
    if kind == 1:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80))
    if kind == 2:
        return fdp.ConsumeBool()
    if kind == 3:
        return fdp.ConsumeUnicode(4)
    if kind == 4:
        return fdp.ConsumeFloat()
    return None


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    for _ in range(fdp.ConsumeIntInRange(1, 6)):
        m = VM if fdp.ConsumeBool() else HV.host
        op = fdp.ConsumeIntInRange(0, 4)
        name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)] if fdp.ConsumeBool() else (
            fdp.ConsumeUnicode(8) if fdp.ConsumeBool() else value(fdp))
        before = m.state()
        try:
            if op == 0:
                m.regs[name]                # type: ignore[index]
                continue
            if op == 1:
                v = value(fdp)
                m.regs[name] = v            # type: ignore[index]
                f = HV.layout.field(name)   # type: ignore[arg-type]
                got = m.regs.get_bytes(name)  # type: ignore[arg-type]
                want = v.to_bytes(f.size, "little") if isinstance(v, int) else bytes(v)  # type: ignore[arg-type]
                assert got == want, (name, v)
            elif op == 2:
                raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 5000))
                m.set_state(raw)
                assert m.state() == raw
                m.set_state(before)
            elif op == 3:
                m.restore(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 5000)))
                m.restore(m.snapshot())
            else:
                HV.switch_context(HV.running(0), VM if HV.running(0) is HV.host else HV.host)
        except VswError:
            assert m.state() == before, f"a refused op {op} changed {m.name}"
        except AttributeError:
            assert False, "AttributeError escaped"


def seeds() -> list[bytes]:
    return [bytes(range(64)), bytes(64), b"\xff" * 64]


if __name__ == "__main__":
    main(test_one_input, seeds)
