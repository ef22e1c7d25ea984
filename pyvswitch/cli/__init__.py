"""pyvswitch <verb> (also python -m pyvswitch <verb>).  Every verb takes --json.

Exit status: ``EXIT_STATUS`` below is the one table of what each verb's means
(every ``--help`` ends with its verb's, the documentation renders it whole).  A
broken pipe (``pyvswitch probe | head -1``) ends a verb quietly, as coreutils
do; Ctrl-C ends it without a traceback.
"""
from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence

from ..errors import (
    DEFAULT_DEMO_SWITCHES,
    DEFAULT_DEMO_VMS,
    DEFAULT_GUEST_MEM_MIB,
    DEFAULT_SLICE_US,
    MAX_DEMO_SWITCHES,
    MAX_DEMO_VMS,
    MAX_GUEST_MEM_MIB,
    MAX_TRACE_SWITCHES,
    SLICE_US_RANGE,
)
from ..hw import VswError
from ..platform.description import DEFAULT_KVM_PLATFORM, DEFAULT_PLATFORM
from . import calibrate as calibrate_verb
from . import mrc as mrc_verb
from . import sweep as sweep_verb

#: Exit status after Ctrl-C (128 + SIGINT) and when the reader of stdout went away (128 + SIGPIPE).
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
#: What ``run --linux`` exits with when the program faulted (128 + SIGSEGV, as a shell says it).
FAULT_STATUS = 128 + signal.SIGSEGV


def int_in(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (usage and exit 2 otherwise),
    stated in ``unit`` (MiB, say) where the option takes one."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text[:40]!r}") from None
        if unit and not low <= v <= high:
            bound = f"at least {low} {unit}" if v < low else f"at most {high} {unit}"
            raise argparse.ArgumentTypeError(f"got {v} {unit}, {bound}")
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text[:40]}")
        return v
    parse.__name__ = "integer"
    return parse


def number_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high`` (not inf, not nan)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        if not math.isfinite(v) or not low <= v <= high:
            raise argparse.ArgumentTypeError(f"expected a number from {_num(low)} to {_num(high)}, got {text[:40]}")
        return v
    parse.__name__ = "number"
    return parse


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:g}"


SLICE_US = number_in(*SLICE_US_RANGE)
SLICE_HELP = f"{_num(SLICE_US_RANGE[0])} to {_num(SLICE_US_RANGE[1])}"


def _probe(args: argparse.Namespace) -> int:
    from .probe import as_json, as_text, probe
    report, host = probe(args.platform, host=not args.no_host)
    source = args.platform or "built-in reference"
    print(json.dumps(as_json(report, host, source), indent=2) if args.json
          else as_text(report, host, source, modalias=args.verbose))
    return report.exit_status


def _demo(args: argparse.Namespace) -> int:
    if args.kvm:
        from .demo_kvm import run_kvm_demo
        report = run_kvm_demo(platform=args.platform, slice_us=args.slice_us, vms=args.vms)
    else:
        from .demo import run_demo
        report = run_demo(platform=args.platform, vms=args.vms, switches=args.switches)
    text = report.pop("text")
    print(json.dumps(report, indent=2) if args.json else text)
    return 0 if report["ok"] else 1


def check_plot_file(path: str) -> None:
    """Before a long run: --plot names a file matplotlib can write (the formats this
    matplotlib supports, asked at run time) in a directory that exists."""
    from ..bench.report import pyplot
    plt = pyplot()
    fig = plt.figure()
    supported = fig.canvas.get_supported_filetypes()
    plt.close(fig)
    ext = os.path.splitext(path)[1][1:].lower()
    if ext and ext not in supported:
        raise VswError(errno.EINVAL, f"--plot {path}: matplotlib cannot write .{ext} files; "
                                     f"expected one of {', '.join('.' + e for e in sorted(supported))}")
    if os.path.isdir(path) or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise VswError(errno.ENOENT if not os.path.isdir(path) else errno.EISDIR,
                       f"--plot {path}: expected a file in a directory that exists")


def _bench(args: argparse.Namespace) -> int:
    from .. import bench
    if args.plot:
        check_plot_file(args.plot)
    doc = bench.run(platform=args.platform, quick=args.quick)
    if args.plot:
        bench.plot(doc, args.plot)
    print(json.dumps(doc, indent=2) if args.json else bench.format_text(doc))
    return 0


def _trace(args: argparse.Namespace) -> int:
    from .trace import run_trace
    doc, stats = run_trace(args.switches, args.out, platform=args.platform, fallback=args.fallback)
    slices = sum(1 for e in doc["traceEvents"] if e["ph"] == "X")
    if args.json:
        print(json.dumps({"out": args.out, "slices": slices, "path": doc["otherData"]["path"], "switches": stats},
                         indent=2))
    else:
        print(f"wrote {args.out}: {args.switches} switches over the {doc['otherData']['path']} path, {slices} slices "
              f"(open it in https://ui.perfetto.dev or chrome://tracing)")
    return 0


def _run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .run import run_guests
    out = sys.stderr if args.json else sys.stdout

    def stream(line: str) -> None:
        print(line, file=out, flush=True)

    interrupted = threading.Event()
    old = None
    if threading.current_thread() is threading.main_thread():   # Ctrl-C: stop between slices, report, 130
        old = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
    try:
        doc = run_guests(args.images, slice_us=args.slice_us, order=args.order, check_solo=args.check_solo,
                         seed=args.seed, mem_mib=args.mem_mib, platform=args.platform, timeout=args.timeout,
                         stream=None if args.quiet else stream, stop=interrupted.is_set)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    text = doc.pop("text")
    print(json.dumps(doc, indent=2) if args.json else text)
    if doc["stopped"] == "interrupted":
        return EXIT_INTERRUPTED
    return 0 if doc["ok"] else 1


def _guest(args: argparse.Namespace) -> int:
    from ..guest import build, runtime_dir
    if args.action == "build":
        if not args.output:
            raise VswError(errno.EINVAL, "guest build needs -o OUT.elf")
        out = build(args.sources, args.output, args.cflags, libc=args.libc)
        print(json.dumps({"out": str(out)}) if args.json else f"built {out}")
    else:
        print(json.dumps({"runtime": str(runtime_dir())}) if args.json else runtime_dir())
    return 0


#: What a verb that does one job exits with.
EXIT_DONE: dict[int, str] = {0: "done", 2: "an error"}
#: The one table of exit statuses: per verb, each status and what it means.  Every --help ends with
#: its verb's (the top-level one with all), docs/reference/cli.md renders it, and
#: tests/unit/test_one_fact.py checks every exit status the README and the docs state against it.
EXIT_STATUS: dict[str, dict[int, str]] = {
    "probe": {0: "the fast switch path is usable", 1: "only the fallback path",
              2: "no switch path (a PCPU, MEM or the memory bus did not bind: what open() refuses with ENODEV) "
                 "or an error"},
    "demo": {0: "every machine's state checked out", 1: "a mismatch or a declared fast path that did not come up",
             2: "an error"},
    "run": {0: "every guest ended by returning from main or vsw_exit (and, with --check-solo, matched its solo run)",
            1: "otherwise (a crash, a guest unfinished at the slice budget or --timeout, a difference)",
            2: "an error (with --linux PROG, which exits with the program's own status: it could not run it)",
            FAULT_STATUS: "with --linux PROG: the program faulted (as a shell reports a SIGSEGV)"},
    "bench": EXIT_DONE, "trace": EXIT_DONE, "guest": EXIT_DONE,
    "sweep": sweep_verb.EXIT, "mrc": EXIT_DONE, "calibrate": EXIT_DONE,
}
#: What every verb's exit status can also be.
EXIT_EVERY_VERB: dict[int, str] = {2: "an option it cannot take (with its usage)", EXIT_INTERRUPTED: "after Ctrl-C",
                                   EXIT_BROKEN_PIPE: "when the reader of its output went away"}


def exit_text(codes: dict[int, str]) -> str:
    """A verb's exit statuses in one line: "0 done, 2 an error"."""
    return ", ".join(f"{code} {meaning}" for code, meaning in codes.items())


#: Each verb's exit statuses as one line of text (the tables above, rendered).
EXIT_CODES = {verb: exit_text(codes) for verb, codes in EXIT_STATUS.items()}
EVERY_VERB = exit_text(EXIT_EVERY_VERB)


PLATFORM_HELP = f"platform TOML file or built-in name (default: {DEFAULT_PLATFORM})"


def _verb(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, help_: str, json_help: str,
          platform_help: str | None = PLATFORM_HELP) -> argparse.ArgumentParser:
    """A verb's sub-parser with the options every verb shares: --json, and --platform where it takes one."""
    p = sub.add_parser(name, help=help_, epilog=f"exit status: {EXIT_CODES[name]}; {EVERY_VERB}")
    if platform_help:
        p.add_argument("--platform", metavar="FILE", help=platform_help)
    p.add_argument("--json", action="store_true", help=json_help)
    return p


def _guest_verbs(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """The verbs for real guests on KVM: run and guest."""
    r = _verb(sub, "run", "C guests (ELF images) preempted on one KVM vCPU through the context store",
              "one JSON document", f"a platform with a vsw,pcpu-kvm (default {DEFAULT_KVM_PLATFORM})")
    r.add_argument("images", nargs="+", metavar="GUEST.elf", help="images built with `pyvswitch guest build` "
                   "(or: run [--ro-dir DIR --stdin FILE --env N=V --copies N] --linux PROG [ARGS...], an "
                   "unmodified static Linux program)")
    r.add_argument("--slice-us", type=SLICE_US, default=DEFAULT_SLICE_US,
                   help=f"time slice in microseconds, {SLICE_HELP} (default %(default)s)")
    r.add_argument("--order", choices=("round-robin", "random"), default="round-robin", help="who runs next")
    r.add_argument("--seed", type=int, default=0, help="seed of the random order (default %(default)s)")
    r.add_argument("--check-solo", action="store_true", help="run each alone first; exit 1 if any differs")
    r.add_argument("--mem-mib", type=int_in(2, MAX_GUEST_MEM_MIB, "MiB"), default=DEFAULT_GUEST_MEM_MIB,
                   help=f"address space of each guest in MiB, an even number from 2 to {MAX_GUEST_MEM_MIB:,} "
                        "(default %(default)s)")
    r.add_argument("--timeout", type=float, metavar="SECONDS", help="stop a run after this much wall time (each "
                   "solo run too, with --check-solo); guests still running did not finish (exit 1)")
    r.add_argument("-q", "--quiet", action="store_true", help="no streamed console lines; each guest's output "
                   "comes with its summary (with --json, the lines stream to stderr unless --quiet)")
    r.set_defaults(run=_run)
    g = _verb(sub, "guest", "build freestanding C programs into guest images", "print JSON", platform_help=None)
    g.description = ("guest build [SOURCE.c and gcc flags, in any order] -o OUT.elf: everything that is not one of "
                     "its own options (-o/--output, --json, -h) goes to gcc, after the defaults, so "
                     "`pyvswitch guest build -O2 prog.c -o prog.elf` and -march=native work as they do with gcc. "
                     "guest runtime: where vsw_guest.h (what a guest has instead of libc) is.")
    g.add_argument("action", choices=("build", "runtime"), help="build: compile; runtime: where the header is")
    g.add_argument("sources", nargs="*", metavar="SOURCE.c|GCC-FLAG", help="C sources and gcc flags (with build)")
    g.add_argument("-o", "--output", metavar="OUT.elf", help="the image to write")
    g.add_argument("--libc", choices=("none", "musl"), default="none",
                   help="musl: link musl's printf/puts, <ctype.h> and libm (musl-tools); none: freestanding")
    g.set_defaults(run=_guest, cflags=[])


def _parser() -> "tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]":
    """Every verb with its options: one sub-parser each."""
    from .. import __version__
    parser = argparse.ArgumentParser(
        prog="pyvswitch", description="emulator of hardware-assisted VM switching (patent CN105718300B)",
        epilog="exit status: " + "; ".join(f"{v}: {c}" for v, c in EXIT_CODES.items()) + f"; every verb: {EVERY_VERB}")
    parser.add_argument("--version", action="version", version=f"pyvswitch {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = _verb(sub, "probe", "the invention's devices, their drivers, the fast path; and the host",
              "one JSON document (modaliases included)")
    p.add_argument("--no-host", action="store_true", help="skip the host section")
    p.add_argument("-v", "--verbose", action="store_true", help="the modalias column too")
    p.set_defaults(run=_probe)
    d = _verb(sub, "demo", "host and VMs switched many times over both paths, state checked", "one JSON document")
    d.add_argument("--vms", type=int_in(1, MAX_DEMO_VMS), default=DEFAULT_DEMO_VMS,
                   help=f"VMs besides the host, 1 to {MAX_DEMO_VMS:,} (default %(default)s); with --kvm, the guests "
                        "(the built-in programs in turn)")
    d.add_argument("--switches", type=int_in(1, MAX_DEMO_SWITCHES), default=DEFAULT_DEMO_SWITCHES,
                   help=f"switches per path, 1 to {MAX_DEMO_SWITCHES:,} (default %(default)s)")
    d.add_argument("--kvm", action="store_true", help="real guests preempted on a KVM vCPU (needs /dev/kvm; "
                   f"platform default {DEFAULT_KVM_PLATFORM})")
    d.add_argument("--slice-us", type=SLICE_US, default=DEFAULT_SLICE_US,
                   help=f"KVM time slice in microseconds, {SLICE_HELP} (default %(default)s)")
    d.set_defaults(run=_demo)
    b = _verb(sub, "bench", "the model (patented path vs prior art) and the emulator's own speed",
              "one JSON document, with the platform and the machine")
    b.add_argument("--quick", action="store_true", help="a first look in a few seconds")
    b.add_argument("--plot", metavar="FILE.png", help="latency vs memory-bus load and bursts vs max burst "
                   "(needs the 'plot' extra: matplotlib)")
    b.set_defaults(run=_bench)
    sweep_verb.add(sub, _verb)
    mrc_verb.add(sub, _verb)
    calibrate_verb.add(sub, _verb)
    t = _verb(sub, "trace", "bus transactions of a run of switches as Chrome trace-event JSON",
              "print a JSON summary with each switch's stats")
    t.add_argument("--switches", type=int_in(1, MAX_TRACE_SWITCHES), default=10,
                   help=f"switches to trace, 1 to {MAX_TRACE_SWITCHES:,} (default %(default)s)")
    t.add_argument("--out", default="trace.json", help="output file (default %(default)s)")
    t.add_argument("--fallback", action="store_true", help="unbind the mover first: trace the prior-art path")
    t.set_defaults(run=_trace)
    _guest_verbs(sub)
    return parser, sub


def _guest_build_args(argv: Sequence[str]) -> "argparse.Namespace | str":
    """``guest build ...`` read as gcc reads its command line: its own options
    (-o OUT, -oOUT, --output[=]OUT, --libc[=]LIBC, --json) taken out, every other word to gcc,
    sources among them (``split_gcc_args``); or what is wrong."""
    from ..guest.build import split_gcc_args
    rest, out, js, libc, it = [], None, False, "none", iter(argv)
    for a in it:
        if a == "--libc" or a.startswith("--libc="):
            libc = a.split("=", 1)[1] if "=" in a else next(it, "")
            if libc not in ("none", "musl"):
                return f"--libc is none or musl, not {libc!r}"
            continue
        if a in ("-o", "--output"):
            value = next(it, None)
        elif a.startswith("--output="):
            value = a.split("=", 1)[1]
        elif a.startswith("-o") and len(a) > 2:
            value = a[2:]
        elif a == "--json":
            js = True
            continue
        else:
            rest.append(a)
            continue
        if value is None or out is not None:
            return "-o OUT.elf is given once, with a file name"
        out = value
    if out is None:
        return "guest build needs -o OUT.elf"
    sources, flags = split_gcc_args(rest)
    return argparse.Namespace(verb="guest", action="build", sources=sources, output=out, cflags=flags, json=js,
                              libc=libc, run=_guest)


def _run_verb(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"] and "--linux" in argv:      # PROG's own arguments pass through verbatim
        from .run_linux import main_linux
        return main_linux(argv[1:])
    parser, sub = _parser()
    if argv[:2] == ["guest", "build"] and not {"-h", "--help"} & set(argv[2:]):
        args = _guest_build_args(argv[2:])
        if isinstance(args, str):
            sub.choices["guest"].error(args)
    else:
        args, extra = parser.parse_known_args(argv)
        if extra:                        # the verb's own usage, and exit 2
            sub.choices[args.verb].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        status = int(args.run(args))
        sys.stdout.flush()          # a reader that went away shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        if _stdout_gone():
            raise
        print(f"pyvswitch {args.verb}: {VswError(errno.EPIPE, 'a pipe it used was closed')}", file=sys.stderr)
        return 2
    except OSError as exc:          # a VswError, or e.g. an --out file that cannot be written
        print(f"pyvswitch {args.verb}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:       # Ctrl-C where a verb does not stop cleanly itself: no traceback
        print(f"pyvswitch {args.verb}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _stdout_gone() -> bool:
    """Whether stdout (or stderr) is a pipe whose reader went away (poll says POLLERR)."""
    import select
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            p = select.poll()
            p.register(fd, select.POLLOUT)
            if any(ev & select.POLLERR for _, ev in p.poll(0)):
                return True
        except (AttributeError, OSError, ValueError):   # no descriptor (captured), or closed
            continue
    return False


def _quiet_streams() -> None:
    """After the reader went away: stdout and stderr write to /dev/null from now on,
    so the interpreter's last flush finds nothing to complain about."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(null, stream.fileno())
            except (AttributeError, OSError, ValueError):
                pass
    finally:
        os.close(null)


def main(argv: Sequence[str] | None = None) -> int:
    """``pyvswitch VERB ...``: runs the verb; returns its exit status (EXIT_CODES):
    130 after Ctrl-C and 141 when the reader of its output went away, both quietly."""
    try:
        try:
            return _run_verb(argv)
        finally:                    # argparse's --help and usage too: their output may meet a closed pipe
            if sys.stdout is not None:
                sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:         # stdout's reader (``| head``) went away: quietly, as coreutils
        _quiet_streams()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
