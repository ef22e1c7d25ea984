"""Fuzz: module parameter strings, through the kernel's public paths - a write to
/sys/module/<m>/parameters/<p> and ``modprobe "<m> p=v ..."`` - then the driver
unbound and bound again so the next probe reads them.  Every string is taken
(and reads back as the parameter's type shows it) or refused with a VswError
(KernelError) that leaves the parameter as it was; a probe with what was taken
binds or is refused (the switch path falls back, and the next input goes on
from there); and no context is ever lost."""
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
HV.run(41)
STATE = {m.name: m.state() for m in HV.machines}
SYSFS = HV.kernel.sysfs
PARAMS = sorted(p for p in SYSFS.tree() if p.startswith("module/") and "/parameters/" in p)
# the mover's module is the one with parameters; another module's would need its kind rebound below
assert PARAMS and all(p.startswith("module/vsw_mover/") for p in PARAMS), PARAMS
VALUES = ["0", "1", "8", "16", "4096", "8192", "-8", "0x1000", "0o20", "1_024", " 64 ", "65", "4294967296", "Y", "n",
          "1e3", "nan", "inf", "", "\n", "99999999999999999999", "lru", "belady"]
MOVER = HV.kernel.module("vsw_mover")


def params() -> dict[str, object]:
    """What the parameters hold (what sysfs shows them from; a sysfs read rebuilds its whole tree)."""
    return dict(MOVER.values)


BOUND_WITH = [params()]             # the parameters the mover was last probed with


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        path = PARAMS[fdp.ConsumeIntInRange(0, len(PARAMS) - 1)]
        value = VALUES[fdp.ConsumeIntInRange(0, len(VALUES) - 1)] if fdp.ConsumeBool() else fdp.ConsumeUnicode(16)
        before = params()
        try:
            if fdp.ConsumeBool():
                SYSFS.write(path, value)
            else:                   # modprobe of a loaded module keeps its parameters: nothing may change
                module, name = path.split("/")[1], path.rsplit("/", 1)[1]
                HV.kernel.modprobe(f"{module} {name}={value}")
                assert params() == before, "modprobe of a loaded module changed it"
        except KernelError:
            assert params() == before, f"a refused {path}={value!r} changed a parameter"
    now = params()
    name = path.rsplit("/", 1)[1]
    assert SYSFS.read(path) == str(now[name]), (path, now)     # every one an int the schema bounds: shown as such
    if now == BOUND_WITH[0]:
        return
    HV.unbind("mover")              # the next probe reads what was taken: it binds or is refused
    try:
        HV.bind("mover")
    except VswError:
        pass
    BOUND_WITH[0] = now             # the next input goes on from here (back to the fast path or not)
    assert HV.path in ("store", "memory"), HV.path
    assert (HV.path == "store") == (HV.kernel.device("mover0").driver is not None), HV.fallback_reasons()
    for m in HV.machines:
        assert m.state() == STATE[m.name], f"{m.name}'s context changed"


def seeds() -> list[bytes]:
    return [bytes(range(48)), bytes(48), b"\x01\x02\x03" * 16, b"\x05" * 48]


if __name__ == "__main__":
    main(test_one_input, seeds)
