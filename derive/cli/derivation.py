"""`derive sde`, `derive list` and `derive catalog`: the derivation engine on the command line."""

from __future__ import annotations

import argparse
import json
import time
from itertools import product

import sympy as sp

from ..engine import derive_sde
from ..errors import DeriveError
from ..noise import BUILTIN_LAWS
from ..noise import NAMES as NOISE_NAMES
from ..optimizers import BUILTINS
from ..order2 import ORDERS, on_curvature, parse_curvature
from ..pairs import derive_pairs
from ..regimes import FORMS, REGIMES


def add_sde_options(p: argparse.ArgumentParser) -> None:
    """The options that name one derivation: optimizer, law, nu, regime, form."""
    p.add_argument("optimizer", help=f"built-in ({', '.join(BUILTINS)}) or path/to/file.py:NAME")
    p.add_argument("--noise", default="gaussian", help=f"noise law: {', '.join(NOISE_NAMES)} (default gaussian)")
    p.add_argument("--nu", default=None, help="Student-t degrees of freedom: a number or 'nu' (symbolic, the default)")
    p.add_argument("--regime", default="paper", choices=list(REGIMES), help="scaling regime (default paper)")
    p.add_argument("--form", default="full", choices=list(FORMS), help="full or published (default full)")


def _cmd_sde(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if args.diffusion == "stationary":
        return _cmd_stationary_diffusion(args)
    correlated = args.correlated or args.correlation is not None
    if correlated and (args.order != 1 or args.curvature is not None):
        raise DeriveError(
            "--correlated derives the order-1 pair covariances; it is not combined with --order 2 or --curvature"
        )
    sde = derive_sde(args.optimizer, args.noise, args.regime, args.form, nu=args.nu, order=args.order)
    if args.curvature is not None:
        sde = on_curvature(sde, parse_curvature(args.curvature))
    if correlated:
        pairs = derive_pairs(args.optimizer, args.noise, args.regime, args.form, nu=args.nu)
        if args.correlation is not None:
            pairs = pairs.at_correlation(args.correlation)
        _print_correlated(sde, pairs, args.format)
    else:
        print(sde.format(args.format))
    if args.format == "text":
        print(f"  derived in {time.perf_counter() - start:.2f} s")
    return 0


def _print_correlated(sde, pairs, fmt: str) -> None:
    """The SDE followed by its pair covariances; in JSON the keys ``correlation`` (r's name, or the number
    given) and ``pair_covariance``."""
    if fmt == "json":
        print(json.dumps({**sde.to_dict(), "correlation": str(pairs.r), "pair_covariance": pairs.to_dict()}, indent=2))
    elif fmt == "latex":
        rows = " \\\\\n".join(
            f"\\operatorname{{Cov}}[d {a}_i, d {b}_j]/dt &= {sp.latex(pairs.entries[(a, b)])}"
            for a in pairs.states
            for b in pairs.states
        )
        print(sde.to_latex() + "\n\\begin{aligned}\n" + rows + "\n\\end{aligned}")
    else:
        print(sde.to_text() + "\n" + pairs.to_text())


def _cmd_stationary_diffusion(args: argparse.Namespace) -> int:
    """The order-2 SDE with the stationary diffusion correction on the quadratic, beside the chain,
    order 1 and order 2 with the finite-horizon diffusion."""
    from ..theory.stationary_order2 import stationary_comparison

    if args.order != 2 or args.form != "full" or args.regime != "paper":
        raise DeriveError(
            "--diffusion stationary is a correction of the order-2 SDE: use it with --order 2 (paper regime, full form)"
        )
    lam = parse_curvature(args.curvature if args.curvature is not None else "lambda")
    result = stationary_comparison(args.optimizer, args.noise, lam, nu=args.nu)
    print(json.dumps(result.to_dict(), indent=2) if args.format == "json" else result.to_text())
    return 0


def _cmd_catalog(args: argparse.Namespace) -> int:
    """Derive every built-in combination (laws at their defaults) and print each, or its refusal."""
    start = time.perf_counter()
    derived = refused = 0
    for opt, law, regime, form in product(BUILTINS, BUILTIN_LAWS, REGIMES, FORMS):
        t0 = time.perf_counter()
        try:
            text = derive_sde(opt, law, regime, form).to_text()
            derived += 1
        except DeriveError as exc:
            text = f"{opt} | noise {law} | regime {regime} | form {form}: refused: {exc}"
            refused += 1
        print(text + f"\n  ({time.perf_counter() - t0:.2f} s)\n")
    print(f"{derived} derived, {refused} refused, {time.perf_counter() - start:.2f} s in all")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    print("optimizers:")
    for spec in BUILTINS.values():
        print(f"  {spec.name:16s} {spec.doc}")
    print("  path/to/file.py:NAME   a user optimizer (see README)")
    print("noise laws:\n  " + ", ".join(NOISE_NAMES) + "   (student-t takes --nu)")
    print("regimes:")
    for r in REGIMES.values():
        print(f"  {r.name:16s} {r.reference}")
    print("forms:\n  " + ", ".join(FORMS))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `sde`, `list` and `catalog` to the ``derive`` parser."""
    p = sub.add_parser("sde", help="derive the SDE of an optimizer")
    add_sde_options(p)
    p.add_argument("--format", default="text", choices=["text", "latex", "json"])
    p.add_argument(
        "--order",
        type=int,
        default=1,
        choices=list(ORDERS),
        help="weak order: 1, or 2 (drift b0 + eta b1 with Hessian-vector products hvp(u); paper regime, full form)",
    )
    p.add_argument(
        "--curvature",
        default=None,
        metavar="LAMBDA",
        help="write the SDE on the diagonal quadratic f = LAMBDA x^2/2 (g = LAMBDA x, hvp(u) = LAMBDA u); "
        "a number or 'lambda'",
    )
    p.add_argument(
        "--diffusion",
        default="finite-horizon",
        choices=["finite-horizon", "stationary"],
        help="with --order 2: the order-1 diffusion (finite-horizon, weak order 2) or the correction that "
        "makes the stationary law on the quadratic right to O(eta^2) (linear chains: sgd, heavy ball)",
    )
    p.add_argument(
        "--correlated",
        action="store_true",
        help="also the pair covariances of two coordinates whose noise has correlation r (symbolic): "
        "Cov[d a_i, d b_j]/dt for every ordered pair of states (JSON key pair_covariance)",
    )
    p.add_argument(
        "--correlation",
        default=None,
        metavar="R",
        help="the pair covariances (implies --correlated) at this noise correlation, a number in [-1, 1]",
    )
    p.set_defaults(func=_cmd_sde)

    p = sub.add_parser("list", help="list built-in optimizers, noise laws, regimes and forms")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("catalog", help="derive and print every built-in combination (or why it is refused)")
    p.set_defaults(func=_cmd_catalog)
