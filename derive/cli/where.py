"""The options that say where a command's independent tasks run (`derive report`, `derive check`;
`derive sweep` has its own): ``--scheduler ADDRESS | --workers N | --serial``."""

from __future__ import annotations

import argparse


def add_where_options(p: argparse.ArgumentParser, default: str) -> None:
    """Add the mutually exclusive ``--scheduler``, ``--workers`` and ``--serial``; ``default`` says
    (in the help) what runs when none is given."""
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the tasks on a running Dask cluster: tcp://HOST:8786 or a scheduler file",
    )
    where.add_argument(
        "--workers", type=int, default=None, metavar="N", help="run the tasks on a local Dask cluster of N processes"
    )
    where.add_argument("--serial", action="store_true", help="run every task in this process, one after the other")
    p.set_defaults(where_default=default)


def wants_serial(args: argparse.Namespace) -> bool:
    """Whether the tasks run here: ``--serial``, or no option and a serial default."""
    return args.serial or (args.scheduler is None and args.workers is None and args.where_default == "serial")
