"""`derive generate`: render the simulator modules (the built-in set into generated/, or one user combination)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..codegen.catalog import builtin_combinations
from ..codegen.printer import CodegenError
from ..codegen.render import GENERATED, stale_files, write
from ..combination import Combination
from ..noise import NAMES as NOISE_NAMES
from ..noise import get_noise
from ..optimizers import BUILTINS, get_optimizer
from ..regimes import FORMS, REGIMES


def _combos(args: argparse.Namespace) -> list[Combination]:
    if args.optimizer is None:
        return builtin_combinations()
    regimes = [args.regime] if args.regime else list(REGIMES)
    forms = [args.form] if args.form else list(FORMS)
    return [Combination(args.optimizer, args.noise, r, f, nu=args.nu) for r in regimes for f in forms]


def _cmd_generate(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else GENERATED
    if args.optimizer is not None and args.out is None:
        raise CodegenError("a user combination is generated into a directory of your choice: add --out DIR")
    if args.optimizer is not None:  # a spec or law that cannot be loaded is an error, not a skipped sweep
        get_optimizer(args.optimizer)
        get_noise(args.noise, args.nu)
    combos = _combos(args)
    if args.check:
        stale = stale_files(out, combos)
        if stale:
            print(f"derive generate: {len(stale)} stale file(s) in {out}: " + ", ".join(stale), file=sys.stderr)
            return 1
        print(f"{len(combos)} generated module(s) in {out} are up to date")
        return 0
    from ..errors import DeriveError

    written, skipped = [], []
    one = args.optimizer is None or bool(args.regime and args.form)
    for c in combos:
        try:  # one named combination without an SDE is written optimizer-only; in a sweep it is skipped
            written.append(write(c, out, require_sde=not one))
        except DeriveError as exc:
            if one:
                raise
            skipped.append(f"{c.regime}/{c.form}: {exc}")
    for path in written:
        text = path.read_text()
        note = "" if "\nSDE_UNAVAILABLE = None\n" in text else " (optimizer only: no SDE, see its SDE_UNAVAILABLE)"
        print(f"wrote {path}{note}")
    for line in skipped:
        print(f"skipped {line}")
    if not written:
        raise DeriveError(f"no module written for {args.optimizer}: every regime and form was refused")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `generate` to the ``derive`` parser."""
    p = subparsers.add_parser("generate", help="render Numba simulator modules from templates/")
    p.add_argument(
        "optimizer",
        nargs="?",
        default=None,
        help=f"generate one user combination (built-in {', '.join(BUILTINS)} or path/to/file.py:NAME); "
        "omit to render the built-in set into generated/",
    )
    p.add_argument("--noise", default="gaussian", help=f"noise law: {', '.join(NOISE_NAMES)} (default gaussian)")
    p.add_argument(
        "--nu",
        default=None,
        help="Student-t degrees of freedom (a number > 0; where the SDE needs the "
        "incomplete beta function, e.g. non-integer nu, the module simulates the optimizer only)",
    )
    p.add_argument(
        "--regime", default=None, choices=list(REGIMES), help="one regime (default: every regime with an SDE)"
    )
    p.add_argument("--form", default=None, choices=list(FORMS), help="one form (default: both)")
    p.add_argument("--out", default=None, help="output directory (default generated/ for the built-in set)")
    p.add_argument("--check", action="store_true", help="exit 1 naming stale files instead of writing")
    p.set_defaults(func=_cmd_generate)
