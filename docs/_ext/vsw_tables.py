"""``{vsw-table} NAME``: the documentation's tables of facts, generated from the code.

NAME is one of ``platforms`` (the built-in platform files), ``defaults`` (every device
parameter, from pyvswitch.schema), ``errnos`` (pyvswitch.errors.ERRNO_MEANINGS),
``exit-codes [VERB]`` (pyvswitch.cli.EXIT_STATUS: every verb's, or one verb's), ``limits`` (the bounds on what a user hands in,
pyvswitch.errors, each with its ``#:`` comment) or ``cli VERB`` (that verb's ``--help``).
Markdown tables are produced by the same functions that print them on the command line
(scripts/platforms) and parsed as the page's own Markdown.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _platforms_script():
    """scripts/platforms as a module: the one formatter of the platform tables."""
    loader = importlib.machinery.SourceFileLoader("vsw_platforms_script", str(_SCRIPTS / "platforms"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _errnos() -> list[str]:
    from pyvswitch.errors import ERRNO_MEANINGS
    return ["| errno | when |", "|---|---|", *(f"| `{name}` | {text} |" for name, text in ERRNO_MEANINGS.items())]


def _limits() -> list[str]:
    """Each MAX_*/..._RANGE of pyvswitch.errors with its value and its ``#:`` comment."""
    from sphinx.pycode import ModuleAnalyzer

    import pyvswitch.errors as errors
    docs = ModuleAnalyzer.for_module("pyvswitch.errors").find_attr_docs()
    rows = ["| limit | value | what it bounds |", "|---|---|---|"]
    for name in vars(errors):
        if name.startswith("MAX_") or name.endswith("_RANGE"):
            value = getattr(errors, name)
            shown = f"{value[0]:g} to {value[1]:g}" if isinstance(value, tuple) else f"{value:,}"
            text = " ".join(docs.get(("", name), [])).strip()
            rows.append(f"| `{name}` | {shown} | {text} |")
    return rows


def _exit_codes(verb: str | None = None) -> list[str]:
    from pyvswitch.cli import EVERY_VERB, EXIT_CODES, EXIT_EVERY_VERB, EXIT_STATUS
    if verb is None:
        return ["| verb | exit status |", "|---|---|", *(f"| `{v}` | {text} |" for v, text in EXIT_CODES.items()),
                f"| every verb | {EVERY_VERB} |"]
    if verb not in EXIT_STATUS:
        raise ValueError(f"exit-codes: no verb {verb!r}, expected one of {', '.join(EXIT_STATUS)}")
    codes = {**EXIT_STATUS[verb], **{c: m for c, m in EXIT_EVERY_VERB.items() if c not in EXIT_STATUS[verb]}}
    return ["| status | when |", "|---|---|", *(f"| {code} | {meaning} |" for code, meaning in codes.items())]


def _cli_help(verb: str) -> str:
    from pyvswitch.cli import _parser
    _, sub = _parser()
    return sub.choices[verb].format_help()


class VswTable(Directive):
    """Inserts one generated table (or a verb's --help as a literal block)."""
    required_arguments = 1
    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        what = self.arguments[0]
        if what == "cli":
            text = _cli_help(self.arguments[1])
            return [nodes.literal_block(text, text)]
        if what == "exit-codes":
            try:
                rows = _exit_codes(*self.arguments[1:])
            except ValueError as exc:
                raise self.error(f"vsw-table: {exc}") from None
            return self._parse(rows)
        makers = {"platforms": lambda: _platforms_script().platforms_table(),
                  "defaults": lambda: _platforms_script().defaults_table(),
                  "errnos": _errnos, "limits": _limits}
        if what not in makers:
            raise self.error(f"vsw-table: unknown table {what!r}, expected one of {sorted(makers)}, "
                             "'exit-codes [VERB]' or 'cli VERB'")
        return self._parse(makers[what]())

    def _parse(self, rows: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(rows, source="vsw-table"), self.content_offset, container)
        return container.children


def setup(app) -> dict:
    app.add_directive("vsw-table", VswTable)
    return {"parallel_read_safe": True, "version": "1"}
