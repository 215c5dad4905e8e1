"""Sphinx configuration: the API reference (autodoc) and the Markdown pages of docs/ (MyST)."""

from __future__ import annotations

from importlib.metadata import version as _version

project = "derive"
author = "the derive developers"
release = _version("derive-sde")
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "alabaster"
nitpicky = False


def _absolute_values(app, what, name, obj, options, lines: list[str]) -> None:
    """Docstrings state the maths in plain text, where |z| is an absolute value, not a reST
    substitution reference: escape the bars before docutils reads them."""
    lines[:] = [line.replace("|", r"\|") for line in lines]


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _absolute_values)
