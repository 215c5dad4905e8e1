"""The ``derive`` command line: the only place that parses arguments and prints.

Each submodule registers its subcommands and turns library objects into text. Errors the user
can fix (:class:`derive.errors.DeriveError`) are printed as one line, exit status 2; a closed pipe
(``derive sde adam --format json | head -1``) ends quietly; Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import DeriveError


def build_parser() -> argparse.ArgumentParser:
    from .commands import command_parser
    from .sweep import register

    return command_parser(extra=(register,))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()
        return status
    except DeriveError as exc:
        print(f"derive {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (e.g. `| head -1`): stop quietly; point stdout at devnull so the
        # interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"derive {args.command}: interrupted", file=sys.stderr)
        return 130
