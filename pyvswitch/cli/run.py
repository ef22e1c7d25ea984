"""``pyvswitch run a.elf b.elf ...``: C guests preempted on one KVM vCPU through
the context store, each one's console output and exit status - and, with
``check_solo``, whether they equal what it gives running alone."""
from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import Any

from .. import api
from ..guest import GuestImage
from ..hw import VswError
from ..hw.kvm import why_unusable
from ..kvm.scheduler import Job, Scheduler, solo


def _row(path: str, job: Job) -> dict[str, Any]:
    return {"path": path, "machine": job.machine.name, "output": job.text, "exit_status": job.exit_status,
            "error": job.error, "slices": job.slices, "clock_ns": job.clock_ns}


def run_guests(paths: Sequence[str | os.PathLike[str]], slice_us: float = 50.0, order: str = "round-robin",
               check_solo: bool = False, seed: int = 0, mem_mib: int = 64,
               platform: str | None = None) -> dict[str, Any]:
    """Runs the guests together (and, with ``check_solo``, each alone first)."""
    if not paths:
        raise VswError(errno.EINVAL, "pyvswitch run needs at least one guest ELF image")
    why = why_unusable()
    if why is not None:
        raise VswError(errno.ENODEV, f"running guests needs a usable /dev/kvm: {why}")
    images = [GuestImage.read(p) for p in paths]
    names = [os.fspath(p) for p in paths]
    plat = platform or "reference-kvm"
    mem = mem_mib << 20
    alone: list[Job] = []
    if check_solo:
        with api.open(plat) as hv:
            alone = [solo(hv, hv.create_vm(f"solo{i}-{img.name}"), img, mem_bytes=mem) for i, img in enumerate(images)]
            alone_rows = [_row(n, j) for n, j in zip(names, alone)]
    with api.open(plat) as hv:
        sched = Scheduler(hv)
        jobs = [sched.add(hv.create_vm(f"vm{i}-{img.name}"), img, mem_bytes=mem) for i, img in enumerate(images)]
        rep = sched.run(slice_us=slice_us, order=order, rng_seed=seed)
        rows = [_row(n, j) for n, j in zip(names, jobs)]
    ok = all(j.error is None for j in jobs)
    for i, row in enumerate(rows):
        if check_solo:
            row["solo"] = alone_rows[i]
            row["matches_solo"] = jobs[i].outcome() == alone[i].outcome()
            ok = ok and row["matches_solo"]
    lines = []
    for row in rows:
        lines.append(f"== {row['path']} ({row['machine']}): exit status {row['exit_status']}, {row['slices']} slices"
                     + (f", ERROR {row['error']}" if row["error"] else "")
                     + ("" if not check_solo else ", same as alone" if row["matches_solo"] else ", DIFFERS from alone"))
        lines.append(row["output"].rstrip("\n"))
    kept = rep.slice_us()
    lines.append(f"{len(rows)} guests, {rep.slices} slices of {slice_us:g} us asked ({order}"
                 + (f"; kept p50 {kept['p50']:.0f} us, p99 {kept['p99']:.0f} us" if kept["n"] else "")
                 + f"), {rep.switches} switches over "
                 f"the {', '.join(rep.paths) or 'no'} path; per switch {rep.per_switch()['ioctl_us']:.1f} us in KVM "
                 "ioctls")
    return {"platform": plat, "slice_us": slice_us, "order": order, "check_solo": check_solo, "ok": ok,
            "guests": rows, "run": {k: v for k, v in rep.as_dict().items() if k != "jobs"}, "text": "\n".join(lines)}
