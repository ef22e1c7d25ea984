"""The package's layers, enforced: a module imports only from its own layer or
below (DESIGN.md, docs/reference/architecture.md), never up, and modules import each other
without cycles.  Read from the source with ``ast``: imports under
``if TYPE_CHECKING:`` are annotations only and do not count; imports inside
functions count for the direction (they are still a call upwards) but not for
cycles (they run after both modules exist)."""
from __future__ import annotations

import ast
import functools
import pathlib

import locations
import pytest

ROOT = locations.ROOT / "pyvswitch"

#: Bottom to top.  A module belongs to the first entry its name starts with.
LAYERS = [
    ("pyvswitch._vsw", "pyvswitch._fastpath", "pyvswitch.errors", "pyvswitch.schema"),  # C core (and the switch's
    #                                                        extension); what every layer may read
    ("pyvswitch.hw",),                                                  # thin owners of the C models
    ("pyvswitch.kernel", "pyvswitch.host", "pyvswitch.guest"),          # driver core; beside: host, guest runtime
    ("pyvswitch.drivers",),
    ("pyvswitch.platform",),
    ("pyvswitch.controller",),
    ("pyvswitch.api", "pyvswitch.bound", "pyvswitch.migration", "pyvswitch.store_cache", "pyvswitch.replay"),
    ("pyvswitch.bench", "pyvswitch.kvm", "pyvswitch.workloads"),        # tools on the API
    ("pyvswitch",),                                                     # the public facade (__init__)
    ("pyvswitch.cli", "pyvswitch.__main__"),                            # every verb
]


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


MODULES = _modules()


def layer_of(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


@functools.lru_cache(maxsize=None)      # each module parsed once, for its own test and the cycle test
def imports(module: str) -> tuple[tuple[str, bool], ...]:
    """(imported pyvswitch module, at import time?) for each import of ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[:len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("pyvswitch"):
                    for alias in child.names:
                        sub = f"{target}.{alias.name}"
                        out.append((sub if sub in MODULES else target, top))
            elif isinstance(child, ast.Import):
                out.extend((a.name, top) for a in child.names if a.name.startswith("pyvswitch"))
            visit(child, top)

    visit(ast.parse(path.read_text()), True)
    return tuple(out)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_it(module):
    mine = layer_of(module)
    up = sorted({t for t, _ in imports(module) if t in MODULES and layer_of(t) > mine})
    assert not up, f"{module} (layer {mine}) imports from above: {up}"


def test_no_import_cycles():
    graph = {m: sorted({t for t, top in imports(m) if top and t in MODULES and t != m}) for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            # a package importing its own submodules (re-exports) is how packages are built
            if m == t.rpartition(".")[0] or t == m.rpartition(".")[0] and MODULES[t].name == "__init__.py":
                continue
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                walk(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)


def test_every_module_is_in_a_layer():
    for m in MODULES:
        layer_of(m)


def _listed(text: str, heading: str) -> list[str]:
    """The layers a page lists: the unindented lines of the code block after ``heading``."""
    block = text.split(heading, 1)[1].split("```", 2)[1]
    return [line.strip() for line in block.splitlines()[1:] if line.strip() and not line[0].isspace()]


def test_the_architecture_page_lists_these_layers():
    """docs/reference/architecture.md describes the layers in this test's order, each with
    this test's modules: add, move or rename a layer here and the page must follow."""
    page = (locations.ROOT / "docs" / "reference" / "architecture.md").read_text()
    assert _listed(page, "## Layers") == [", ".join(layer) for layer in reversed(LAYERS)]


def test_the_readme_leaves_the_layers_to_the_architecture_page():
    """The README does not keep a copy of the list (it went stale there once): it links the page."""
    readme = (locations.ROOT / "README.md").read_text()
    assert "docs/reference/architecture.md" in readme
    for layer in LAYERS:
        for name in layer:
            if name != "pyvswitch":
                assert not any(line.lstrip().startswith(name + " ") for line in readme.splitlines()), name
