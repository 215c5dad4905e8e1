"""`derive stationary`, `scaling`, `phases` and `check`: argument parsing and printing over derive.theory."""
from __future__ import annotations

import argparse

import sympy as sp

from ..regimes import FORMS, REGIMES
from ..theory.phases import signsgd_phases
from ..theory.scaling import CRITERIA, scaling_rule
from ..theory.stationary import sgd_full_matrix, stationary


def _curvature(text: str | None):
    return sp.Symbol("lambda", positive=True) if text is None else sp.nsimplify(sp.sympify(text))


def _cmd_stationary(args: argparse.Namespace) -> int:
    result = stationary(args.optimizer, args.noise, args.form, nu=args.nu, lam=_curvature(args.curvature), regime=args.regime)
    print(result.to_text())
    if args.full_matrix:
        if result.sde.optimizer != "sgd":
            print("  (--full-matrix applies to sgd only)")
        else:
            print(sgd_full_matrix(args.full_matrix).to_text())
    return 0


def _cmd_scaling(args: argparse.Namespace) -> int:
    print(scaling_rule(args.optimizer, args.regime, args.criterion, args.noise, args.form, nu=args.nu).to_text())
    return 0


def _cmd_phases(args: argparse.Namespace) -> int:
    print(signsgd_phases(args.noise, nu=args.nu, y1=sp.sympify(args.y1), y2=sp.sympify(args.y2)).to_text())
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from ..theory.checks import CHECKS, Sim, run_checks, table

    names = args.only.split(",") if args.only else None
    unknown = sorted(set(names or []) - set(CHECKS))
    if unknown:
        from ..errors import UnknownNameError

        raise UnknownNameError("check", ",".join(unknown), list(CHECKS))
    rows = run_checks(names, Sim(paths=args.paths, seed=args.seed))
    print(table(rows))
    if args.plots:
        from ..theory.plots import draw

        for path in draw(rows, args.plots):
            print(f"wrote {path}")
    failed = [r.name for r in rows if not r.ok]
    shown = sum(r.expect_equal is None for r in rows)
    print(f"{len(rows) - len(failed) - shown} passed, {len(failed)} failed, {shown} shown without a verdict")
    return 1 if failed else 0


def register(sub: "argparse._SubParsersAction") -> None:
    """Add `stationary`, `scaling` and `phases` to the ``derive`` parser."""
    def common(p: argparse.ArgumentParser, form_default: str) -> None:
        p.add_argument("optimizer", help="built-in optimizer or path/to/file.py:NAME")
        p.add_argument("--noise", default="gaussian")
        p.add_argument("--nu", default=None, help="Student-t degrees of freedom (a number)")
        p.add_argument("--regime", default="paper", choices=list(REGIMES))
        p.add_argument("--form", default=form_default, choices=list(FORMS))

    p = sub.add_parser("stationary", help="stationary law on the quadratic model (Lyapunov equation)")
    common(p, "full")
    p.add_argument("--curvature", default=None, help="lambda of f = lambda x^2/2 (default: a positive symbol)")
    p.add_argument("--full-matrix", type=int, default=0, metavar="D", help="sgd only: also full H and Sigma in D dimensions")
    p.set_defaults(func=_cmd_stationary)

    p = sub.add_parser("scaling", help="batch-size scaling rule solved from the SDE")
    common(p, "full")
    p.add_argument("--criterion", default="sde", choices=list(CRITERIA))
    p.set_defaults(func=_cmd_scaling)

    p = sub.add_parser("check", help="every closed-form result, derived and confirmed by simulation (table, plots)")
    p.add_argument("--plots", default=None, metavar="DIR", help="write the figures into DIR")
    p.add_argument("--only", default=None, help="comma-separated subset of the checks")
    p.add_argument("--paths", type=int, default=4000, help="Monte Carlo paths per run (default 4000)")
    p.add_argument("--seed", type=int, default=11)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("phases", help="the phases of the SignSGD SDE")
    p.add_argument("--noise", default="gaussian")
    p.add_argument("--nu", default=None)
    p.add_argument("--y1", default="1", help="upper end of the linear phase in Y = g/(sqrt(2) sigma)")
    p.add_argument("--y2", default="3/2", help="lower end of the sign phase")
    p.set_defaults(func=_cmd_phases)
