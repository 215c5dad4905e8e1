"""Render generated modules: a strict Jinja2 environment over the templates, and the file writer.

Rendering is deterministic (no timestamps, fixed ordering), so ``derive generate --check`` can
compare committed modules byte for byte with a fresh rendering. Files are written atomically
(:mod:`derive.io`), so two processes generating the same module never leave a broken file.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from ..combination import Combination
from ..io import atomic_write_text
from ..resources import GENERATED, TEMPLATES
from .model import module_data
from .printer import CodegenError

__all__ = ["GENERATED", "TEMPLATES", "environment", "render", "write", "stale_files"]


def environment() -> jinja2.Environment:
    """Strict environment: undefined names fail, block tags leave no blank lines."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["tuple"] = tuple
    env.filters["each"] = lambda seq, fmt: [fmt.format(item) for item in seq]
    env.filters["tuple_display"] = tuple_display
    return env


#: CPython builds a tuple display of more than 30 elements through a list (LIST_TO_TUPLE), which
#: Numba's bytecode front end fails on (AssertionError in peep_hole_list_to_tuple)
_TUPLE_CHUNK = 30


def tuple_display(items) -> str:
    """Source of the tuple of ``items`` (source strings): ``(a, b, )``, or for more than 30 items a
    sum of such tuples of at most 30 each (Numba concatenates tuples)."""
    items = list(items)
    chunks = [items[i : i + _TUPLE_CHUNK] for i in range(0, len(items), _TUPLE_CHUNK)] or [[]]
    return " + ".join("(" + "".join(f"{item}, " for item in chunk) + ")" for chunk in chunks)


def render(combo: Combination) -> str:
    """The source of the module of one combination."""
    return environment().get_template("module.py.j2").render(**module_data(combo).template_names())


def write(combo: Combination, out: Path, require_sde: bool = False) -> Path:
    """Render ``combo`` into ``out/<module>.py`` (atomically) and return the path.

    A combination without a compilable SDE is written as an optimizer-only module (its
    ``SDE_UNAVAILABLE`` says why), unless ``require_sde``: then that reason is raised as
    :class:`~derive.codegen.printer.CodegenError` and nothing is written.
    """
    data = module_data(combo)
    if require_sde and data.sde_unavailable:
        raise CodegenError(data.sde_unavailable)
    return atomic_write_text(
        Path(out) / f"{combo.module_name}.py",
        environment().get_template("module.py.j2").render(**data.template_names()),
    )


def stale_files(out: Path, combos: list[Combination]) -> list[str]:
    """Files of ``out`` that differ from a fresh rendering, are missing, or are not generated any more."""
    expected = {f"{c.module_name}.py": render(c) for c in combos}
    stale = [name for name, text in expected.items() if not (out / name).is_file() or (out / name).read_text() != text]
    extra = [p.name for p in sorted(out.glob("*.py")) if p.name not in expected]
    return sorted(stale) + [f"{name} (not generated any more)" for name in extra]
