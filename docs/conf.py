"""Sphinx configuration of pyvswitch's documentation (``sphinx-build -W docs docs/_build``).

The pages are Markdown (MyST); the API reference comes from the docstrings (autodoc) and
every table of facts (platforms, defaults, errnos, exit codes, each verb's options) is
generated from the code at build time (``_ext/vsw_tables.py``), so none is written twice.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "pyvswitch"
author = "the pyvswitch engineers"
try:
    from importlib.metadata import version as _version
    release = _version("pyvswitch")
except Exception:  # building from a tree that is not installed
    release = "unknown"

extensions = ["myst_parser", "sphinx.ext.autodoc", "vsw_tables"]
source_suffix = {".md": "markdown"}
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
suppress_warnings = ["myst.xref_missing"]
