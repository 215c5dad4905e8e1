"""Command-line subcommands of the code-generation stage (wired into derive.cli)."""
from __future__ import annotations

import argparse


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the code-generation subcommands to the ``derive`` parser."""
