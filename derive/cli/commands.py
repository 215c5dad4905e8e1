"""The ``derive`` parser with its commands, built in one place: the command line uses it with
``sweep`` added, and a sweep's tasks use it to run a command in-process."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .. import __version__
from .codegen import register as _codegen
from .compile import register as _compile
from .derivation import register as _derivation
from .noise import register as _noise
from .simulate import register as _simulate
from .theory import register as _theory
from .validate import register as _validate

Registrar = Callable[[argparse._SubParsersAction], None]


def command_parser(extra: tuple[Registrar, ...] = ()) -> argparse.ArgumentParser:
    """The parser of every command (and of those ``extra`` registers)."""
    parser = argparse.ArgumentParser(
        prog="derive", description="SDEs of stochastic optimizers, derived from their update rules."
    )
    parser.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (_derivation, _codegen, _compile, _simulate, _theory, _validate, _noise, *extra):
        register(sub)
    return parser
