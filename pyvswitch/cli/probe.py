"""pyvswitch probe: lspci -k for the invention - which of its devices exist,
which driver is bound, whether the fast switch path is usable - and what the
host offers.  Its exit status (``ControllerReport.exit_status``) says which
switch path works: ``pyvswitch.cli.EXIT_STATUS["probe"]``.
"""
from __future__ import annotations

from typing import Any

from ..controller import Controller, ControllerReport
from ..host import HostReport, host_report
from ..platform import Platform, boot


def probe(platform: "str | None" = None, host: bool = True) -> tuple[ControllerReport, HostReport | None]:
    plat = Platform.load(platform)
    kernel = boot(plat)
    ctl = Controller(kernel, plat)
    report = ctl.enable()
    ctl.release()
    return report, (host_report() if host else None)


def as_json(report: ControllerReport, host: HostReport | None, source: str) -> dict[str, Any]:
    doc = report.as_dict()
    doc["source"] = source
    doc["host"] = host.as_dict() if host else None
    doc["exit_status"] = report.exit_status
    return doc


def as_text(report: ControllerReport, host: HostReport | None, source: str, modalias: bool = False) -> str:
    """lspci -k style; the modalias column with ``modalias`` (the JSON always has it)."""
    lines = [f"platform {report.platform} ({source})", ""]
    for d in report.devices:
        mark = "*" if d.invention else " "
        lines.append(f"{d.name:10} {mark} {d.kind or '?':14} {d.identifier}" + (f"  {d.modalias}" if modalias else ""))
        if d.driver:
            lines.append(f"{'':13}Kernel driver in use: {d.driver}")
        lines.append(f"{'':13}Kernel modules: {', '.join(d.modules) or '(none match)'}")
        if d.state != "bound":
            lines.append(f"{'':13}State: {d.state}" + (f" ({d.deferred})" if d.deferred else "")
                         + (f" - {d.error}" if d.error else ""))
    lines += ["", "* the invention's devices (storage bus, context store, mover)"]
    if not report.usable:
        lines += [f"Switch path: NONE usable - {report.reason}",
                  "open() refuses this platform (ENODEV) until these devices bind:",
                  *(f"  - {why}" for why in report.problems)]
    else:
        lines.append(f"Fast switch path: {'usable' if report.fast_path else 'NOT usable, switches take the memory path'}"
                     f" - {report.reason}")
    if report.fallback and report.usable:
        lines += ["The platform declares the fast path, and it did not come up:",
                  *(f"  - {why}" for why in report.problems)]
    if host is not None:
        k = host.kvm
        kvm = (f"present, {'accessible' if k.accessible else 'not accessible'}"
               + (f", API version {k.api_version}" if k.api_version is not None else "")
               if k.present else "absent")
        caps = ", ".join(f"{n} {'yes' if v else 'no'}" for n, v in k.capabilities.items())
        lines += ["", f"Host (via {host.udev}):",
                  f"  KVM {k.path}: {kvm}" + (f"; {caps}" if caps else "") + (f"; nested {k.nested}" if k.nested else ""),
                  *( [f"  KVM not usable: {k.reason}"] if k.reason else []),
                  f"  pyvswitch KVM backend (platform reference-kvm): {host.kvm_backend}"
                  + (f"; layout MSRs this host lacks: {', '.join(host.kvm_absent_msrs)}"
                     if host.kvm_absent_msrs else ""),
                  "  DMA engines (dma, dsa): " + (", ".join(f"{d.name} [{d.driver or 'no driver'}]" for d in host.dma)
                                                   or "none"),
                  f"  PCI devices: {len(host.pci)}"]
        for hd in host.pci:
            lines.append(f"    {hd.name} {hd.ident or '?':9} {hd.driver or '(no driver)'}")
    return "\n".join(lines)
