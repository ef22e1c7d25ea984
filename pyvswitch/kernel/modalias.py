"""Modaliases: the string a device announces and the globs a driver module
answers to (what the kernel's file2alias writes into modules.alias, and what
kmod matches with fnmatch)."""
from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .driver import Driver

ID_PREFIX = "vsw"
#: PLATFORM_MODULE_PREFIX: a legacy platform device's modalias is platform:<name>.
PLATFORM_PREFIX = "platform:"


def of_modalias(name: str, of_type: str | None, compatible: Iterable[str]) -> str:
    """of_device_uevent_modalias(): of:N<name>T<type>C<compatible>C<compatible>..."""
    return f"of:N{name}T{of_type or '<NULL>'}" + "".join(f"C{c}" for c in compatible)


def id_modalias(vendor: int | None, device: int | None, prefix: str = ID_PREFIX) -> str:
    """A numeric-id bus's modalias, PCI-style: vsw:v%08Xd%08X."""
    return f"{prefix}:v{vendor or 0:08X}d{device or 0:08X}"


def _hex_or_any(value: int | None, width: int) -> str:
    return "*" if value is None else f"{value:0{width}X}"


def driver_aliases(drv: "type[Driver] | Driver") -> list[str]:
    """The modules.alias globs of a driver's ID tables (file2alias: do_of_entry
    writes the exact form and the one with more compatibles following;
    do_platform_entry platform:<name> for each platform_device_id).  A driver
    matched by its own name has no alias of its own: its module says
    MODULE_ALIAS = ("platform:<name>",), as a Linux one does."""
    out = [f"{PLATFORM_PREFIX}{n}" for n in drv.platform_ids]
    for c in drv.of_match_table:
        out += [f"of:N*T*C{c}", f"of:N*T*C{c}C*"]
    for i in drv.id_table:
        out.append(f"{ID_PREFIX}:v{_hex_or_any(i.vendor, 8)}d{_hex_or_any(i.device, 8)}")
    return out


def pci_alias(vendor: int | None = None, device: int | None = None, subvendor: int | None = None,
              subdevice: int | None = None, class_: int | None = None) -> str:
    """file2alias's do_pci_entry() glob: pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X ('*' for any).
    Used to check the matcher against real MODALIAS strings from the host's /sys."""
    base = sub = iface = None
    if class_ is not None:
        base, sub, iface = class_ >> 16 & 0xFF, class_ >> 8 & 0xFF, class_ & 0xFF
    return (f"pci:v{_hex_or_any(vendor, 8)}d{_hex_or_any(device, 8)}sv{_hex_or_any(subvendor, 8)}"
            f"sd{_hex_or_any(subdevice, 8)}bc{_hex_or_any(base, 2)}sc{_hex_or_any(sub, 2)}i{_hex_or_any(iface, 2)}")


def alias_matches(alias_glob: str, modalias: str) -> bool:
    """kmod's test: glibc's fnmatch, case-sensitive - where, unlike Python's,
    a bracket expression opened by "[^" is negated as by "[!"."""
    return fnmatchcase(modalias, _glibc_brackets(alias_glob))


def _glibc_brackets(glob: str) -> str:
    """``glob`` with every "[^" that opens a bracket expression written "[!"."""
    out, i, inside = [], 0, False
    while i < len(glob):
        c = glob[i]
        if not inside and c == "[":
            inside = True
            out.append(c)
            if glob.startswith("^", i + 1):
                out.append("!")
                i += 1
            if glob.startswith("]", i + 1):     # a leading "]" is a member, not the end
                out.append("]")
                i += 1
        else:
            inside = inside and c != "]"
            out.append(c)
        i += 1
    return "".join(out)
