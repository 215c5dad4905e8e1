"""`derive sweep`: one command over a grid of options, serially or on a Dask cluster; and
`derive sweep plot`: a figure from its table (see derive/sweep/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DeriveError

#: the exit status says how many tasks failed, up to this many (higher ones are the shell's)
MAX_STATUS = 125


def _cmd_sweep(args: argparse.Namespace) -> int:
    if args.sweep == "plot":
        return _plot(args)
    _only_for_plot(args)
    from ..executor import open_executor
    from ..sweep.spec import load_sweep
    from ..sweep.store import run_sweep

    if (args.out is None) == (args.resume is None):
        raise DeriveError("give --out DIR for a new sweep or --resume DIR to finish one (one of them)")
    sweep = load_sweep(args.sweep, allow_code=args.allow_code)
    with open_executor(args.scheduler, args.workers, args.serial) as executor:
        print(
            f"sweep {sweep.path}: {len(sweep.tasks)} task(s) of derive {sweep.command}; {executor.describe()}",
            file=sys.stderr,
        )
        summary = run_sweep(sweep, args.resume or args.out, executor, resume=args.resume is not None)
    for task, error in summary.failed:
        at = ", ".join(f"{k}={v!r}" for k, v in task.grid.items()) or "the task"
        print(f"failed: {at}: {error}", file=sys.stderr)
    print(
        f"{summary.tasks} task(s): {summary.already} already done, {summary.ok} ok and {len(summary.failed)} failed "
        f"in this run ({summary.seconds:.1f} s); results in {summary.results}"
    )
    return min(len(summary.failed), MAX_STATUS)


def _only_for_plot(args: argparse.Namespace) -> None:
    given = [f"--{n}" for n in ("x", "y", "hue") if getattr(args, n) is not None] + (["DIR"] if args.dir else [])
    if given:
        raise DeriveError(f"{', '.join(given)}: only for `derive sweep plot DIR --x X --y Y`")


def _plot(args: argparse.Namespace) -> int:
    from ..sweep.plot import sweep_figure
    from ..sweep.store import read_results

    if args.dir is None or args.x is None or args.y is None:
        raise DeriveError("derive sweep plot DIR --x X --y Y [--hue H] [--out FILE]: give DIR, --x and --y")
    if args.resume or args.scheduler or args.workers or args.serial:
        raise DeriveError(
            "derive sweep plot reads a finished table: --resume, --scheduler, --workers, --serial do not apply"
        )
    folder = Path(args.dir)
    frame = read_results(folder)
    out = Path(args.out) if args.out else folder / f"{args.y.replace('.', '_')}_vs_{args.x.replace('.', '_')}.png"
    title = f"{folder.name}: {int((frame['status'] == 'ok').sum())} ok row(s) of {len(frame)}"
    print(f"wrote {sweep_figure(frame, args.x, args.y, args.hue, out, title)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `sweep` (and `sweep plot`) to the ``derive`` parser."""
    p = sub.add_parser(
        "sweep",
        help="run a command over a grid of options (TOML), serially or on a Dask cluster; or plot its table",
        description="derive sweep SWEEP.toml --out DIR [--scheduler ADDRESS | --workers N | --serial]; "
        "derive sweep SWEEP.toml --resume DIR; derive sweep plot DIR --x X --y Y [--hue H] [--out FILE]",
    )
    p.add_argument("sweep", metavar="SWEEP.toml|plot", help="the sweep file, or 'plot' to draw a sweep's table")
    p.add_argument("dir", nargs="?", default=None, metavar="DIR", help="with plot: the sweep's directory")
    p.add_argument("--out", default=None, help="directory of a new sweep (with plot: the figure's file)")
    p.add_argument("--resume", default=None, metavar="DIR", help="run the tasks of DIR's sweep that have no ok row")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="join a Dask cluster: tcp://HOST:8786 or a scheduler file"
    )
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="a local Dask cluster of N worker processes (default: one per core)",
    )
    where.add_argument("--serial", action="store_true", help="run every task in this process, one after the other")
    p.add_argument(
        "--allow-code",
        action="store_true",
        help="allow options that name Python files (path/to/file.py:NAME): they run as code",
    )
    p.add_argument("--x", default=None, help="plot: a grid column or a dotted path into the result JSON (runs.0.etas)")
    p.add_argument("--y", default=None, help="plot: a grid column or a dotted path (runs.0.errors)")
    p.add_argument("--hue", default=None, help="plot: one line per value of this column or path (optimizer)")
    p.set_defaults(func=_cmd_sweep)
