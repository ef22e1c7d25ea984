"""Small guests written inline in a test module: each body (C after `#include
<vsw_guest.h>`) built into its own ELF, by the user's gcc as `pyvswitch guest build` would."""
from __future__ import annotations

from pathlib import Path

from pyvswitch.guest import build


def build_each(directory: Path, sources: dict[str, str]) -> dict[str, Path]:
    """``{name: body}`` -> ``{name: the built ELF}``, in ``directory``."""
    out = {}
    for name, body in sources.items():
        (directory / f"{name}.c").write_text("#include <vsw_guest.h>\n" + body + "\n")
        out[name] = build([directory / f"{name}.c"], directory / f"{name}.elf")
    return out
