"""One fact, one place (issue 23, deliverable 4): each fact below is written down once and
everything else reads it, or is checked against it here.  Each test fails when the fact
is restated somewhere again (a default in a help text, a size in a signature, a table in
prose)."""
from __future__ import annotations

import argparse
import ast
import errno
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import locations
import pytest

import pyvswitch
from pyvswitch import errors
from pyvswitch.cli import _parser
from pyvswitch.cli.run_linux import linux_parser
from pyvswitch.platform.description import DEFAULT_KVM_PLATFORM, DEFAULT_PLATFORM

ROOT: Path = locations.ROOT


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    parser, sub = _parser()
    return [("pyvswitch", parser), *((f"pyvswitch {v}", p) for v, p in sub.choices.items()),
            ("pyvswitch run --linux", linux_parser())]


def _options() -> list[tuple[str, argparse.Action]]:
    return [(f"{name} {'/'.join(a.option_strings) or a.dest}", a) for name, p in _parsers() for a in p._actions
            if a.help and a.help is not argparse.SUPPRESS]


# --- 1. CLI defaults: argparse's own default, shown with %(default)s -------------------------
def test_every_stated_default_of_an_option_is_argparses_own() -> None:
    """A help text that says "default" shows the option's own default through %(default)s
    (where argparse has none - None: decided later, a platform by name - the rendered help is
    checked against the constants below)."""
    stated = 0
    for where, action in _options():
        m = re.search(r"\(default:? ([^)]*)\)", action.help)
        if not m:
            continue
        stated += 1
        if action.default not in (None, False, argparse.SUPPRESS) and action.default != []:
            assert "%(default)s" in action.help, f"{where}: restates its default {action.default!r} in its help " \
                                                 f"({action.help!r}); use %(default)s"
    assert stated >= 15, "the walk over the parsers found too few stated defaults: it no longer sees them"


def test_rendered_help_shows_the_constants() -> None:
    """What a user reads: the defaults the code runs with, not a copy."""
    _, sub = _parser()
    run_help, demo_help = sub.choices["run"].format_help(), sub.choices["demo"].format_help()
    flat = " ".join(run_help.split())
    assert f"(default {errors.DEFAULT_SLICE_US})" in flat
    assert f"(default {errors.DEFAULT_GUEST_MEM_MIB})" in flat
    assert f"(default {DEFAULT_KVM_PLATFORM})" in flat
    assert f"(default {errors.DEFAULT_SLICE_US})" in " ".join(demo_help.split())
    assert f"(default: {DEFAULT_PLATFORM})" in " ".join(sub.choices["probe"].format_help().split())
    linux = " ".join(linux_parser().format_help().split())
    assert f"(default {errors.DEFAULT_LINUX_MEM_MIB})" in linux and f"(default {errors.DEFAULT_SLICE_US})" in linux


def test_the_cli_parses_to_the_constants() -> None:
    parser, _ = _parser()
    run = parser.parse_args(["run", "a.elf"])
    assert (run.slice_us, run.mem_mib) == (errors.DEFAULT_SLICE_US, errors.DEFAULT_GUEST_MEM_MIB)
    assert parser.parse_args(["demo"]).slice_us == errors.DEFAULT_SLICE_US
    linux = linux_parser().parse_args([])
    assert (linux.slice_us, linux.mem_mib) == (errors.DEFAULT_SLICE_US, errors.DEFAULT_LINUX_MEM_MIB)


def _functions() -> list[tuple[str, object]]:
    """Every function and method of pyvswitch's modules (the KVM ones included: importing
    them needs no /dev/kvm)."""
    found = []
    for info in pkgutil.walk_packages(pyvswitch.__path__, "pyvswitch."):
        if info.name.startswith("pyvswitch.guest.runtime") or info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj):
                found.append((f"{mod.__name__}.{name}", obj))
            elif inspect.isclass(obj):
                found += [(f"{mod.__name__}.{name}.{m}", f) for m, f in vars(obj).items() if inspect.isfunction(f)]
    return found


#: Parameters of the same name that are another fact: the overhead measurements' own slices.
_NOT_THE_USERS_DEFAULT = {"pyvswitch.kvm.overhead.measure", "pyvswitch.kvm.overhead.throughput"}


@pytest.mark.parametrize("param, allowed", [
    ("slice_us", {errors.DEFAULT_SLICE_US}),
    ("mem_mib", {errors.DEFAULT_GUEST_MEM_MIB, errors.DEFAULT_LINUX_MEM_MIB}),
    ("platform", {None}),
])
def test_every_signature_defaults_to_the_one_constant(param: str, allowed: set[object]) -> None:
    """Scheduler.run, run_guests, run_linux, run_kvm_demo...: a parameter a user may leave out
    has the one default (the scheduler said 100 us while the CLI said 50)."""
    seen = []
    for where, f in _functions():
        p = inspect.signature(f).parameters.get(param)
        if p is not None and p.default is not inspect.Parameter.empty and where not in _NOT_THE_USERS_DEFAULT:
            seen.append(where)
            assert p.default in allowed, f"{where}({param}={p.default!r}): expected one of {allowed}"
    assert len(seen) >= 2, f"only {seen} take {param}: the walk no longer sees the callers"


def test_the_slice_default_is_within_its_bound() -> None:
    low, high = errors.SLICE_US_RANGE
    assert low <= errors.DEFAULT_SLICE_US <= high
    assert 2 <= errors.DEFAULT_GUEST_MEM_MIB <= errors.MAX_GUEST_MEM_MIB and errors.DEFAULT_GUEST_MEM_MIB % 2 == 0
    assert errors.DEFAULT_LINUX_MEM_MIB % 2 == 0


# --- 2. the guest's address space: DEFAULT_GUEST_MEM_MIB, nowhere a literal --------------------
_SIZE_LITERALS = re.compile(r"\b(64 ?<< ?20|64 ?\* ?1024 ?\* ?1024|67108864|0x4000000|128 ?<< ?20)\b")
#: Literals that are other facts: the MEM region's default (a device parameter, in the schema),
#: and --stdin's bound (a limit, in pyvswitch.errors).
_OTHER_FACTS = {("pyvswitch/schema.py", "capacity_bytes"), ("pyvswitch/errors.py", "MAX_LINUX_STDIN_BYTES")}


def test_no_guest_size_literal_in_the_code() -> None:
    """64 MiB (a C guest) and 128 MiB (a Linux program) live in pyvswitch.errors only."""
    for path in sorted((ROOT / "pyvswitch").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _SIZE_LITERALS.search(line) and not any(rel == f and key in line for f, key in _OTHER_FACTS):
                raise AssertionError(f"{rel}:{n}: a guest size restated: {line.strip()}")


def test_prose_about_the_guest_size_states_the_constant() -> None:
    """Docs and the guest header may say the default in words; they are checked against it."""
    said = 0
    texts = [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md",
             *(ROOT / "pyvswitch" / "guest" / "runtime").glob("*.h")]
    for path in texts:
        for m in re.finditer(r"(\d+) MiB by default", path.read_text()):
            said += 1
            assert int(m.group(1)) == errors.DEFAULT_GUEST_MEM_MIB, f"{path}: {m.group(0)!r}"
    assert said >= 1, "the guide no longer states the default size: drop this test or the phrase it checks"
    stdin = re.findall(r"`--stdin` takes at most (\d+) MiB", (ROOT / "docs" / "guides" / "guests.md").read_text())
    assert stdin == [str(errors.MAX_LINUX_STDIN_BYTES >> 20)]


# --- 3. exit statuses: pyvswitch.cli.EXIT_STATUS ---------------------------------------------
def _prose() -> list[Path]:
    """Where people read about the verbs: the README, the docs' pages, the CLI's docstrings."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "pyvswitch" / "cli").glob("*.py"))]


def _docstrings(path: Path) -> str:
    """A module's text as people read it: Markdown whole, Python's docstrings and comments only
    (the code itself is the table's own use)."""
    text = path.read_text()
    if path.suffix != ".py":
        return text
    tree = ast.parse(text)
    docs = [ast.get_docstring(n) or "" for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    return "\n\n".join(docs)


def _sentences(text: str) -> list[str]:
    text = re.sub(r"```.*?```", lambda m: m.group(0) if "#" in m.group(0) else "", text, flags=re.S)
    return [" ".join(s.split()) for s in re.split(r"(?<=[.;:])\s+(?=[A-Z`(])|\n\s*\n|\n(?=\S*pyvswitch )", text)]


_EXIT_MENTION = re.compile(r"(?<![-\w])exit(?:s| status(?: is)?| with| codes?)?:? (\d+)", re.I)


def test_no_prose_restates_a_table_of_exit_statuses() -> None:
    """A sentence that lists a verb's exit statuses (0 ..., 1 ..., 2 ...) is a copy of the
    table: the docs render it ({vsw-table} exit-codes [VERB]), the README points there."""
    for path in _prose():
        for s in _sentences(_docstrings(path)):
            if re.search(r"\bexit", s, re.I) and re.search(r"\b0\b.*\b1\b.*\b2\b", s):
                raise AssertionError(f"{path.relative_to(ROOT)}: an exit-status table restated: {s[:160]!r}")


def test_every_exit_status_the_prose_states_is_in_the_table() -> None:
    """"demo exits 1", "exit 2 before any point runs": each status a sentence states is one
    that the verbs it names (any verb, when it names none) have in EXIT_STATUS."""
    from pyvswitch.cli import EXIT_EVERY_VERB, EXIT_STATUS
    every = set(EXIT_EVERY_VERB)
    checked = 0
    for path in _prose():
        for s in _sentences(_docstrings(path)):
            codes = {int(c) for c in _EXIT_MENTION.findall(s)}
            if not codes:
                continue
            checked += 1
            verbs = {v for v in EXIT_STATUS if re.search(rf"(pyvswitch |`){v}\b", s)}
            allowed = every.union(*(EXIT_STATUS[v] for v in (verbs or EXIT_STATUS)))
            assert codes <= allowed, f"{path.relative_to(ROOT)}: exit {sorted(codes - allowed)} is not in " \
                                     f"EXIT_STATUS for {sorted(verbs) or 'any verb'}: {s[:160]!r}"
    assert checked >= 5, "the scan found too few statements of an exit status: it no longer sees them"


def test_the_exit_table_is_what_the_code_returns() -> None:
    """The statuses in the table are the ones the code returns: the probe's report, Ctrl-C, a
    faulting Linux program, a sweep stopped by a signal."""
    import signal

    from pyvswitch.cli import EXIT_BROKEN_PIPE, EXIT_EVERY_VERB, EXIT_INTERRUPTED, EXIT_STATUS, FAULT_STATUS
    from pyvswitch.controller import ControllerReport
    for fast, usable in ((True, True), (False, True), (False, False)):
        status = ControllerReport("p", [], fast, "", usable=usable).exit_status
        assert status in EXIT_STATUS["probe"], (fast, usable, status)
    assert {EXIT_INTERRUPTED, EXIT_BROKEN_PIPE} <= set(EXIT_EVERY_VERB)
    assert FAULT_STATUS in EXIT_STATUS["run"] and FAULT_STATUS == 128 + signal.SIGSEGV
    assert {128 + signal.SIGINT, 128 + signal.SIGTERM} <= set(EXIT_STATUS["sweep"])
    _, sub = _parser()
    assert set(EXIT_STATUS) == set(sub.choices), "every verb has its exit statuses, and only verbs"


def test_every_help_ends_with_its_verbs_table() -> None:
    from pyvswitch.cli import EXIT_CODES
    parser, sub = _parser()
    for verb, p in sub.choices.items():
        assert " ".join(EXIT_CODES[verb].split()) in " ".join(p.format_help().split()), verb
    top = " ".join(parser.format_help().split())
    assert all(" ".join(text.split()) in top for text in EXIT_CODES.values())
    assert " ".join(EXIT_CODES["run"].split()) in " ".join(linux_parser().format_help().split())


# --- 4. bounds decided once: C the authority, the schema checked against it -------------------
def _make(kind: str, name: str, value: object) -> None:
    """The C model of ``kind`` with ``name`` = ``value`` (the rest at their defaults)."""
    from pyvswitch import hw
    if (kind, name) == ("pcpu", "guest_memory_bytes"):      # a vsw,pcpu-kvm's: the KVM backend's C
        from pyvswitch.hw.kvm import KvmVcpu, why_unusable
        if why_unusable() is not None and isinstance(value, int) and not isinstance(value, bool):
            pytest.skip(f"the KVM backend's bound needs a usable /dev/kvm: {why_unusable()}")
        KvmVcpu(mem_bytes=value).close()
    elif kind == "pcpu":
        hw.Pcpu("x86_64", **{name: value}).close()
    elif kind.endswith("-bus"):
        hw.Bus(hw.BusParams.of(kind[:-4], {name: value})).close()
    elif kind == "mover":           # the other parameters out of the way of the thresholds' rule
        loose = {"max_burst": 8192, "write_threshold": 1 << 30, "read_threshold": 1 << 30, name: value}
        hw.Path.mover(hw.Store("x86_64", 1 << 20), hw.Bus(), hw.MoverParams(**loose)).close()
    else:
        hw.Store("x86_64", value).close()


#: The parameters C bounds (built through hw, whose only checks are C's types).  Beside each,
#: where C's bound differs from the schema's on purpose: C decides, with its own errno.
_C_DECIDES = {
    ("pcpu", "cpu_mhz"): {}, ("pcpu", "exit_entry_cycles"): {},
    **{(bus, n): {} for bus in ("memory-bus", "storage-bus") for n in ("width_bytes", "clock_mhz", "setup_cycles")},
    ("memory-bus", "utilisation"): {}, ("memory-bus", "seed"): {}, ("memory-bus", "other_bytes"): {},
    ("storage-bus", "masters"): {65: "C arbitrates any number; the platform binds at most the schema's"},
    ("mover", "max_burst"): {},
    ("mover", "write_threshold"): {1: "N < 1 holds for no transfer: E2BIG when the path is made",
                                   2: "a save of scattered groups takes more than one burst: E2BIG"},
    ("mover", "read_threshold"): {1: "M < 1 holds for no transfer: E2BIG when the path is made"},
    ("context-store", "capacity_bytes"): {1: "a store smaller than one slot: ENOSPC", 2: "the same",
                                          1 << 40: "C counts slots: at most 16M of them (E2BIG)"},
    ("mem", "capacity_bytes"): {1: "a store smaller than one slot: ENOSPC", 2: "the same",
                                1 << 40: "C counts slots: at most 16M of them (E2BIG)"},
}
_C_DECIDES[("pcpu", "guest_memory_bytes")] = {}
#: Refusals C makes in words of its owner's (pyvswitch/hw/kvm.py), not yet the schema's.
_OWN_WORDS = {("pcpu", "guest_memory_bytes")}
#: Parameters no C model takes: the drivers read them, the schema bounds them.
_PYTHON_ONLY = {("pcpu", "layout"), ("pcpu", "kvm_device"), ("mover", "channels"), ("mover", "reaches_dram"),
                ("context-store", "policy")}


def _edges(p) -> list[object]:
    if p.type is float:
        return [p.minimum - 1e-9, p.minimum, p.maximum - 1e-9, p.maximum, p.maximum + 1, float("nan"), float("inf")]
    top = [] if p.maximum is None else [int(p.maximum) - p.multiple_of + 1, int(p.maximum), int(p.maximum) + 1]
    return [int(p.minimum) - 1, int(p.minimum), int(p.minimum) + 1, int(p.minimum) + p.multiple_of, *top]


def test_every_bounded_parameter_is_either_cs_or_pythons() -> None:
    from pyvswitch.schema import KINDS
    every = {(k, p.name) for k, kind in KINDS.items() for p in kind.params}
    assert every == set(_C_DECIDES) | _PYTHON_ONLY, "a parameter was added: say who bounds it"


@pytest.mark.parametrize("kind, name", sorted(_C_DECIDES))
def test_c_refuses_exactly_what_the_schema_refuses(kind: str, name: str) -> None:
    """Probe C at every edge of the schema's bounds: it accepts what the schema accepts and
    refuses the rest (except the differences listed, C's own rules); the error of a refusal
    names the parameter and says what was expected, in the schema's words."""
    from pyvswitch import hw
    from pyvswitch.schema import KINDS
    p = KINDS[kind].param(name)
    for v in _edges(p):
        try:
            _make(kind, name, v)
            took = True
        except hw.VswError as exc:
            took, err = False, exc
        expect = p.accepts(v) if v not in _C_DECIDES[(kind, name)] else not p.accepts(v)
        assert took == expect, f"{kind}.{name} = {v!r}: C {'took' if took else 'refused'} it, the schema " \
                               f"{'accepts' if p.accepts(v) else 'refuses'} it"
        if not took and v not in _C_DECIDES[(kind, name)] and (kind, name) not in _OWN_WORDS:
            # E2BIG: a rule between parameters, said so
            assert name in str(err) and (p.expected() in str(err) or err.errno == errno.E2BIG), \
                f"{kind}.{name} = {v!r}: {err}"


def test_hw_states_no_bound_of_its_own() -> None:
    """The hw owners convert and map; the numbers of a bound (a multiple of 8, [0, 1)) are C's."""
    for f in ("bus.py", "path.py", "pcpu.py", "store.py"):
        text = (ROOT / "pyvswitch" / "hw" / f).read_text()
        for smell in ("% 8", "< 1.0", "<= 1.0", "1 << 32", "== 0 or", "minimum=1"):
            assert smell not in text, f"pyvswitch/hw/{f} checks a bound itself ({smell!r}): let C decide"


# --- 5. a platform file states only what differs from the schema's defaults --------------------
def test_no_built_in_platform_restates_a_default() -> None:
    """reference-kvm.toml restated every default: a file that sets a parameter to the
    schema's default hides a later change of the default (and, being "given", wins over
    module parameters where the default would not)."""
    from pyvswitch import Platform
    from pyvswitch.schema import KINDS
    names = Platform.builtin_names()
    assert {"reference", "reference-kvm"} <= set(names)
    for name in names:
        for d in Platform.load(name).devices:
            for key in d.given:
                if d.kind is not None:
                    assert d.params[key] != KINDS[d.kind].param(key).default, \
                        f"platforms/{name}.toml, {d.name}: {key} = {d.params[key]!r} is the schema's default"


def test_the_kvm_reference_is_the_reference_with_a_kvm_pcpu() -> None:
    """Same devices, same parameters: only the PCPU's compatible differs."""
    from pyvswitch import Platform
    ref, kvm = Platform.load("reference"), Platform.load("reference-kvm")
    assert [(d.name, d.kind, d.params) for d in ref.devices] == [(d.name, d.kind, d.params) for d in kvm.devices]
    assert [d.compatible for d in kvm.devices if d.kind == "pcpu"] == [("vsw,pcpu-kvm",)]


# --- 7. one file per C handle: ctx.c owns every vsw_ctx_* -----------------------------------
def test_ctx_c_defines_every_vsw_ctx_function() -> None:
    """The context handle was split between ctx.c and cache.c."""
    defined = re.compile(r"^[a-z][\w ]*\*?\s*\b(vsw_ctx_\w+)\(", re.M)
    owners = {}
    for path in sorted((ROOT / "csrc").glob("*.c")):
        for name in defined.findall(path.read_text()):
            owners.setdefault(name, set()).add(path.name)
    assert len(owners) >= 10, f"the scan found only {sorted(owners)}"
    assert {n: f for n, f in owners.items() if f != {"ctx.c"}} == {}
    header = (ROOT / "csrc" / "vsw.h").read_text()
    assert set(re.findall(r"\b(vsw_ctx_\w+)\(", header)) <= set(owners), "a vsw_ctx_* declared, defined nowhere"


@pytest.mark.parametrize("kind, name", sorted(set(_C_DECIDES) - _OWN_WORDS))   # KvmVcpu: not yet
@pytest.mark.parametrize("bad", [True, "8", None, b"\x08"])
def test_a_value_of_the_wrong_type_never_reaches_c(kind: str, name: str, bad: object) -> None:
    from pyvswitch import hw
    from pyvswitch.schema import KINDS
    with pytest.raises(hw.VswError) as e:
        _make(kind, name, bad)
    assert e.value.errno == errno.EINVAL and name in str(e.value) and KINDS[kind].param(name).expected() in str(e.value)


def test_a_refused_reconfiguration_changes_nothing() -> None:
    """configure() with a value C refuses: the error in the schema's words, the old
    parameters still in force (the model prices as before)."""
    from pyvswitch import hw
    with hw.Bus(hw.BusParams.of("memory", {"utilisation": 0.25, "seed": 3})) as bus:
        before = bus.params
        for bad, code in (({"utilisation": 1.0}, errno.EDOM), ({"width_bytes": 0}, errno.EINVAL),
                          ({"other_bytes": 2 ** 32}, errno.ERANGE), ({"utilisation": float("nan")}, errno.EDOM)):
            with pytest.raises(hw.VswError) as e:
                bus.configure(**bad)
            assert e.value.errno == code and next(iter(bad)) in str(e.value), (bad, str(e.value))
            assert bus.params == before
        bus.reset()
        first = [bus.transact(64) for _ in range(20)]
        bus.configure(**{"utilisation": 0.25})      # the same parameters again: the same draws
        assert [bus.transact(64) for _ in range(20)] == first
    store = hw.Store("x86_64", 1 << 20)
    path = hw.Path.mover(store, hw.Bus(), hw.MoverParams())
    limits = path.limits()
    for bad in (hw.MoverParams(12, 16, 16), hw.MoverParams(64, 8, 8), hw.MoverParams(-8, 16, 16)):
        with pytest.raises(hw.VswError) as e:
            path.configure(bad)
        assert "max_burst" in str(e.value) or "threshold" in str(e.value), str(e.value)
        assert path.params == hw.MoverParams() and path.limits() == limits


def test_the_cached_prior_arts_reference_point_is_stated_where_its_source_says() -> None:
    """bench, sweep rows and sweep --help name where the XSAVE + XRSTOR reference point is
    written down; that page states it in the model's numbers (it said "the README's", after
    the README stopped quoting it)."""
    from pyvswitch.bench.calibrate import cached_save_ns
    from pyvswitch.bench.model import XSAVE_XRSTOR_CYCLES
    lo, hi = XSAVE_XRSTOR_CYCLES
    ns, source = cached_save_ns(None, 3000)
    assert ns == (lo + hi) / 2 / 3
    page = re.search(r"docs/[\w/.-]+\.md|README\.md", source)
    assert page, f"{source!r} names no page"
    assert f"{lo}-{hi} cycles" in " ".join((ROOT / page.group()).read_text().split()), (page.group(), lo, hi)
    sweep_help = " ".join(dict(_parsers())["pyvswitch sweep"].format_help().split())
    assert page.group() in sweep_help, sweep_help


def _prose_sources() -> list[Path]:
    """Every file whose words name the tree's files and modules: the README, the docs' pages
    and extension, the package, the C core, the scripts (the tests name some that must not exist)."""
    out = [ROOT / "README.md", ROOT / "setup.py", ROOT / "pyproject.toml", ROOT / ".ci" / "run",
           *sorted(p for p in (ROOT / "docs").rglob("*") if p.suffix in (".md", ".py") and "_build" not in p.parts),
           *sorted((ROOT / "pyvswitch").rglob("*.py")), *sorted((ROOT / "pyvswitch" / "guest" / "runtime").iterdir()),
           *sorted((ROOT / "csrc").iterdir()), *sorted(p for p in (ROOT / "scripts").rglob("*") if p.suffix != ".png")]
    # text only: not what Python or the build leave beside the sources (__pycache__, .so)
    return [p for p in out if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".so", ".o")]


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_file_and_module_the_text_names_exists() -> None:
    """After the moves (kvm/guests.py -> guest/loader.py, the layout out of hw/kvm.py, kvm.c
    split, keep_gil.h and StatsPool gone), a path or a dotted name a page or a docstring gives
    is one that is there: a reader who follows it finds the fact."""
    path = re.compile(r"(?<![\w/.-])((?:pyvswitch|csrc|tests|scripts|docs)/[\w/.-]*\w)")
    dotted = re.compile(r"(?<![\w.])(pyvswitch(?:\.\w+)+)")
    missing = set()
    for src in _prose_sources():
        text = src.read_text(errors="replace")
        where = str(src.relative_to(ROOT))
        for m in path.finditer(text):
            p = m.group(1)
            glob = text[m.end():m.end() + 1] == "*"             # tests/unit/kernel/test_kernel_*.py
            if not p.startswith("docs/_build") and not (ROOT / p).exists() and not (glob and any(ROOT.glob(p + "*"))):
                missing.add((where, p))
        for m in dotted.finditer(text):
            name = m.group(1)
            if "__main__" not in name and not _resolves(name):
                missing.add((where, name))
    assert not missing, sorted(missing)


def test_a_section_a_page_points_above_or_below_is_there() -> None:
    """'"The store as a cache of contexts" above' on the architecture page pointed at a section
    that had moved to the hypervisor guide when the README was split into pages: a quoted
    section said to be above (below) is a heading of the same page, before (after) the words."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page.read_text()
        heads = [(m.start(), m.group(1).strip()) for m in re.finditer(r"^#+ (.*)$", text, flags=re.M)]
        for m in re.finditer(r'"([^"]{3,80})"\s+(above|below)', text):      # a title may wrap
            title, where = " ".join(m.group(1).split()), m.group(2)
            at = [pos for pos, h in heads if h == title]
            assert at, f"{page.relative_to(ROOT)}: no section {title!r} on this page ({where})"
            assert any(pos < m.start() if where == "above" else pos > m.start() for pos in at), (page, title, where)


def test_the_demos_defaults_are_written_once() -> None:
    """`pyvswitch demo`'s three VMs and ten thousand switches were typed in the parser and again
    in run_demo's signature (and said in words by three pages): one constant each, in
    pyvswitch.errors beside their bounds; the parser, the function and the prose agree with it."""
    import pyvswitch.cli.demo as demo
    parser, _ = _parser()
    args = parser.parse_args(["demo"])
    sig = inspect.signature(demo.run_demo).parameters
    assert args.vms == sig["vms"].default == errors.DEFAULT_DEMO_VMS <= errors.MAX_DEMO_VMS
    assert args.switches == sig["switches"].default == errors.DEFAULT_DEMO_SWITCHES <= errors.MAX_DEMO_SWITCHES
    words = {3: "three", 10_000: "ten thousand"}
    said = 0
    for page in (ROOT / "README.md", ROOT / "docs" / "guides" / "demo-and-probe.md", ROOT / "docs" / "tutorial.md"):
        text = " ".join(page.read_text().split())
        for vms, switches in re.findall(r"a host and (\w+) VMs (?:round-robin )?([\w ]+?) times", text):
            said += 1
            assert (vms, switches) == (words.get(errors.DEFAULT_DEMO_VMS), words.get(errors.DEFAULT_DEMO_SWITCHES)), page
    assert said >= 3, "the pages no longer say the demo's defaults in words: drop that half of this test"


def test_the_architecture_page_states_the_layouts_c_builds() -> None:
    """The register layouts' sizes, version and MSR count are C's (csrc/layout_*.c); the
    architecture page says them in prose, so it is read against the tables."""
    from pyvswitch.hw import Layout
    page = " ".join((ROOT / "docs" / "reference" / "architecture.md").read_text().split())
    x86, arm = Layout.get("x86_64"), Layout.get("aarch64")
    assert f"`x86_64` ({x86.size:,} bytes, layout version {x86.version})" in page
    assert f"`aarch64` ({arm.size:,} bytes)" in page
    msrs = sum(1 for name in x86.fields if name.startswith("msr."))
    assert f"{msrs} MSRs as `kvm_msr_entry` records" in page
    assert f"`kvm_lapic_state` ({x86.group('lapic').size:,} B)" in page


def test_the_demo_page_states_the_reference_stores_size_as_computed() -> None:
    """"The reference store holds 618 contexts" is computed (capacity_bytes over the slot size);
    the demo guide says it in prose, so it is read against the store the reference brings up,
    and its example of a demo that misses (--vms N) still gives more machines than that."""
    with pyvswitch.open() as hv:
        capacity = hv.cache.stats().capacity
    page = " ".join((ROOT / "docs" / "guides" / "demo-and-probe.md").read_text().split())
    held = re.findall(r"reference store holds ([\d,]+) contexts", page)
    assert held == [f"{capacity:,}"], (held, capacity)
    more = [int(n.replace(",", "")) for n in re.findall(r"`--vms ([\d,]+)`", page)]
    assert more and all(capacity < n + 1 <= errors.MAX_DEMO_VMS + 1 for n in more), (more, capacity)
