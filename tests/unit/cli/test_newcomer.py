"""What a newcomer should not have to guess: a public reference run with its
contract, PCPU counts and states, a state getter and comparison, restore
semantics, migration stats, and a CLI that explains itself."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import image_header
import locations
import pytest
from effort import examples
from hypothesis import given, settings
from hypothesis import strategies as st

import pyvswitch
from pyvswitch.cli import EXIT_CODES, main


@settings(max_examples=examples(15), deadline=None)
@given(splits=st.lists(st.integers(0, 300), min_size=1, max_size=6), layout=st.sampled_from(["x86_64", "aarch64"]),
       name=st.text("abcxyz", min_size=1, max_size=5))
def test_replay_contract_any_split_any_switches_any_name(splits, layout, name):
    """run(a) + switches + run(b) == replay(a + b): the workload depends only on the
    register state, never on the machine's id, name, PCPU or path."""
    with pyvswitch.open("aarch64" if layout == "aarch64" else None) as hv:
        vm = hv.create_vm(f"vm-{name}")
        other = hv.create_vm("other")
        cur = hv.host
        for i, steps in enumerate(splits):
            hv.switch_context(cur, vm)
            hv.run(steps)
            hv.switch_context(vm, other)
            hv.run(7)
            cur = other
        assert vm.compare(pyvswitch.replay(sum(splits), layout)) == []
        assert vm.state() == pyvswitch.replay(sum(splits), layout)


def test_a_fresh_host_starts_as_a_new_vm_does():
    with pyvswitch.open() as hv:
        assert hv.host.compare(hv.create_vm("vm")) == [] and hv.host.state() == pyvswitch.replay(0)


def test_pcpus_say_how_many_and_what_runs():
    with pyvswitch.open("datacenter") as hv:
        vm = hv.create_vm("vm")
        hv.switch_context(None, vm, pcpu=2)
        ps = hv.pcpus
        assert len(ps) == hv.npcpus == 4 and [p.index for p in ps] == [0, 1, 2, 3]
        assert ps[0].running is hv.host and ps[2].running is vm and ps[1].running is None
        assert ps[2].switches == 1
    assert [r["pcpus"] for r in (pyvswitch.Platform.load(n).summary() for n in ("reference", "datacenter", "aarch64"))] \
        == [1, 4, 2]


def test_state_getter_setter_round_trip_and_compare_names_groups():
    with pyvswitch.open() as hv:
        a, b = hv.create_vm("a"), hv.create_vm("b")
        a.regs.update({"rax": 5, "xmm3": 7})
        b.set_state(a.state())
        assert b.compare(a) == [] and b.state() == a.state()
        b.regs["cr3"] = 0x1000
        assert b.compare(a) == ["sregs"]
        with pytest.raises(pyvswitch.VswError):
            b.compare(b"short")


def test_restoring_one_machines_image_into_another_clones_it():
    with pyvswitch.open() as hv:
        a = hv.create_vm("a")
        a.regs["rbx"] = 0xABC
        img = a.snapshot()
        hv.destroy_vm(a)
        again = hv.create_vm("a-again")                # a new id
        again.restore(img)
        assert again.regs["rbx"] == 0xABC and again.id != image_header.get(img, "owner")


def test_each_move_between_paths_says_what_it_moved_and_its_cost():
    with pyvswitch.open() as hv:
        vm = hv.create_vm("vm")
        hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/unbind", "mover0")
        s = hv.switch_context(hv.host, vm)
        assert s.save_bursts == 0                       # saved during the move, not by this switch
        hv.kernel.sysfs.write("bus/platform/drivers/vsw-mover/bind", "mover0")
        out, back = hv.migrations
        assert (out.from_path, out.to_path, back.from_path, back.to_path) == ("store", "memory", "memory", "store")
        assert out.contexts == back.contexts == 2 and out.bytes > 0 and out.modeled_ns > 0 and "mover0" in out.reason


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``pyvswitch ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as e:             # argparse's --help and usage errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_version_verb_usage_exit_codes_and_probe_columns(capsys):
    """In-process (main(argv)), but for --version from ``python -m pyvswitch``, as a user runs it."""
    r = subprocess.run([sys.executable, "-m", "pyvswitch", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"pyvswitch {pyvswitch.__version__}"
    code, _, err = _cli(capsys, "probe", "--bogus")
    assert code == 2 and "usage: pyvswitch probe" in err and "unrecognized arguments: --bogus" in err
    for verb in EXIT_CODES:
        code, out, _ = _cli(capsys, verb, "--help")
        assert code == 0 and "exit status:" in out, verb
        assert "130 after Ctrl-C" in " ".join(out.split()), verb      # argparse wraps the epilog
    _, out, _ = _cli(capsys, "demo", "--help")          # what sizes time or memory says its limit
    assert "1 to 10,000,000" in out and "1 to 1,024" in out and "1 to 60,000,000" in out
    _, out, _ = _cli(capsys, "probe", "--no-host")
    assert "of:N" not in out
    assert "of:Npcpu0" in _cli(capsys, "probe", "--no-host", "-v")[1]
    assert "of:Npcpu0" in _cli(capsys, "probe", "--no-host", "--json")[1]


def test_tables_of_facts_are_generated_not_typed():
    """The platforms, defaults, errno, limits and exit-code tables of the documentation are
    rendered from the code when it is built (docs/_ext/vsw_tables.py); nothing restates them."""
    root = locations.ROOT
    pages = {p: (root / "docs" / p).read_text() for p in ("reference/platforms.md", "reference/errors.md",
                                                          "reference/cli.md", "guides/architects.md",
                                                          "guides/hypervisor.md")}
    for page, table in (("reference/platforms.md", "platforms"), ("reference/platforms.md", "defaults"),
                        ("reference/errors.md", "errnos"), ("reference/errors.md", "limits"),
                        ("reference/cli.md", "exit-codes"), ("guides/architects.md", "defaults"),
                        ("guides/hypervisor.md", "platforms")):
        assert "{vsw-table} " + table in pages[page], (page, table)
    everything = (root / "README.md").read_text() + "".join(pages.values())
    assert "| `vsw,pcpu` | `layout` |" not in everything and "| `EINVAL` |" not in everything
    for flags in ([], ["--defaults"]):          # the script the tables come from still prints them
        out = subprocess.run([sys.executable, str(root / "scripts" / "platforms"), *flags], capture_output=True,
                             text=True, check=True).stdout
        assert out.startswith("| ")


def test_readme_python_runs_and_its_links_exist():
    """What a newcomer copies from the README works, and every page it links to is there."""
    import re
    readme = (locations.ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(("import pyvswitch\n" if "import pyvswitch" not in block else "") + block, "README.md", "exec"),
             {})
    links = re.findall(r"\]\(((?:docs|scripts)/[^)#]+)\)", readme)
    assert links and all((locations.ROOT / link).exists() for link in links), links
    assert len(readme.splitlines()) < 200

def test_every_file_the_readme_hands_to_a_verb_is_in_the_tree():
    """A newcomer copies the README's commands as they stand: an input the repository does not
    ship (`pyvswitch mrc trace.csv`, where nothing made a trace.csv) fails at once with ENOENT.
    The grids, platforms and traces the sweep and mrc lines read are in the tree; an option that
    needs an extra says so on its line."""
    import re
    import shlex
    readme = (locations.ROOT / "README.md").read_text()
    lines = [ln for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.S) for ln in block.splitlines()]
    checked = 0
    for line in lines:
        cmd, _, comment = line.partition("#")
        words = shlex.split(cmd)
        if words[:1] != ["pyvswitch"] or words[1] not in ("mrc", "sweep"):
            continue
        positional = [w for i, w in enumerate(words[2:], 2) if not w.startswith("-")
                      and not words[i - 1].startswith("-")]
        assert positional and all((locations.ROOT / p).is_file() for p in positional), line
        if "--plot" in words:
            assert "plot" in comment and "extra" in comment, f"{line!r}: --plot needs the 'plot' extra"
        checked += 1
    assert checked >= 2


def test_the_source_distribution_carries_every_file_the_tests_and_build_read():
    """MANIFEST.in named tests' *.py, *.c and *.md but not the platform files the tests load
    (tests/platforms/*.toml, locations.EXPLICIT): tests run from an sdist would fail with ENOENT.
    Every tracked file of csrc/, tests/, scripts/ and pyvswitch/ matches a MANIFEST.in rule."""
    from setuptools._distutils.filelist import FileList
    root = locations.ROOT
    git = subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True, text=True)
    if git.returncode != 0:
        pytest.skip(f"not a git checkout (an sdist itself?): {git.stderr.strip()}")
    tracked = [f for f in git.stdout.split() if f.startswith(("csrc/", "tests/", "scripts/", "pyvswitch/"))]
    rules = FileList()
    rules.allfiles = tracked            # the tracked files only: no venv or build tree in the way
    for line in (root / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rules.process_template_line(line)
    packaged = set(rules.files) | {f for f in tracked if f.startswith("pyvswitch/") and f.endswith(".py")}
    assert len(tracked) > 100 and not [f for f in tracked if f not in packaged]
