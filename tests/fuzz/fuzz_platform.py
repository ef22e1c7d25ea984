"""Fuzz: platform descriptions.  Any text is either a platform that comes up
(possibly on the memory path, with a FallbackWarning) or refused with a
VswError that names the file; nothing else escapes."""
from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import atheris  # noqa: E402

with atheris.instrument_imports():
    import pyvswitch
    from pyvswitch import Platform, VswError

from _common import main  # noqa: E402

warnings.simplefilter("ignore", pyvswitch.FallbackWarning)
BUILTINS = [(pyvswitch.__path__[0] + f"/platforms/{n}.toml") for n in Platform.builtin_names() if "kvm" not in n]


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        plat = Platform.from_text(text, "<fuzz>")
    except VswError as exc:
        assert "<fuzz>" in str(exc), exc
        return
    if any(s.kind == "pcpu" and "kvm" in ",".join(s.compatible) for s in plat.devices):
        return                              # a real vCPU per input is too slow for a fuzz loop
    try:
        hv = pyvswitch.open(plat)
    except VswError:
        return
    try:
        vm = hv.create_vm("vm")
        hv.run(3)
        hv.switch_context(hv.host, vm)
        hv.switch_context(vm, hv.host)
    except VswError:
        pass
    finally:
        hv.close()


def seeds() -> list[bytes]:
    return [open(p, "rb").read() for p in BUILTINS]


if __name__ == "__main__":
    main(test_one_input, seeds)
