"""`derive stationary`, `scaling`, `phases` and `check`: argument parsing and printing over derive.theory."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..correlation import NoiseModel
from ..regimes import FORMS, REGIMES
from ..theory.evaluate import ValueInputError, parameter_values, parse_curvatures, parse_hyper
from ..theory.phases import signsgd_phases
from ..theory.scaling import CRITERIA, scaling_rule
from ..theory.stationary import sgd_full_matrix, stationary
from .noise_options import add_noise_options, noise_model
from .where import add_where_options, wants_serial

FORMATS = ("text", "json")


def _print(text_or_dict, fmt: str) -> None:
    print(json.dumps(text_or_dict, indent=2) if fmt == "json" else text_or_dict)


def _cmd_stationary(args: argparse.Namespace) -> int:
    if args.correlation is not None or args.noise_cov is not None or args.hessian is not None:
        return _cmd_stationary_correlated(args)
    result = stationary(args.optimizer, args.noise, args.form, nu=args.nu, regime=args.regime)
    hyper = parse_hyper(args.hyper)
    numbers = parameter_values(args.optimizer, args.eta, args.sigma, hyper)
    curvatures = parse_curvatures(args.curvature)
    if numbers and curvatures is None:
        raise ValueInputError(
            "give --curvature (one value, or one per coordinate separated by commas) with --eta, --sigma or --hyper"
        )
    values = result.evaluate(numbers, curvatures) if curvatures is not None else None
    full = sgd_full_matrix(args.full_matrix) if args.full_matrix and result.sde.optimizer == "sgd" else None
    if args.format == "json":
        out = result.to_dict()
        if values is not None:
            out.update(values.to_dict())
        if full is not None:
            out["full_matrix"] = full.to_dict()
        _print(out, "json")
        return 0
    print(result.to_text(hint=values is None))
    if values is not None:
        print(values.to_text())
    if args.full_matrix:
        print(full.to_text() if full is not None else "  (--full-matrix applies to sgd only)")
    return 0


def _cmd_stationary_correlated(args: argparse.Namespace) -> int:
    """``--correlation R`` / ``--noise-cov FILE`` / ``--hessian FILE``: the linearised stationary covariance of
    the d coordinates (reference section 9), numerically."""
    from ..theory.correlated_stationary import correlated_stationary, load_hessian

    if args.full_matrix:
        raise ValueInputError(
            "--full-matrix takes a symbolic Sigma; --correlation, --noise-cov and --hessian a numeric one: use one"
        )
    if args.regime != "paper":
        raise ValueInputError(f"the correlated stationary covariance is derived in the paper regime, not {args.regime}")
    curvatures = parse_curvatures(args.curvature)
    if args.hessian is not None:
        if curvatures is not None:
            raise ValueInputError("--hessian FILE gives the curvatures (the full H): drop --curvature")
        H = load_hessian(args.hessian)
    elif curvatures is None:
        raise ValueInputError("give --curvature (one value per coordinate, separated by commas) or --hessian FILE")
    else:
        bad = [c for c in curvatures if not c > 0]
        if bad:
            raise ValueInputError(f"curvature {bad[0]} is not positive: the quadratic model has no stationary law")
        H = np.diag([float(c) for c in curvatures])
    if args.eta is None:
        raise ValueInputError("give --eta: the correlated stationary covariance is computed numerically")
    sigma = None if args.sigma is None else parameter_values(args.optimizer, None, args.sigma)["sigma"]
    # a --noise-cov file is checked against the curvatures here, against --hessian by the Hessian's own check
    model = noise_model(args, None if args.noise_cov else H.shape[0], sigma, curvatures)
    if model is None:  # --hessian alone: independent noise of scale --sigma
        model = NoiseModel.correlated(0.0, H.shape[0], 1.0 if sigma is None else sigma, args.noise, args.nu)
    numbers = parameter_values(args.optimizer, args.eta, None, parse_hyper(args.hyper))
    origin = "the Hessian" if args.hessian is None else f"--hessian {args.hessian}"
    result = correlated_stationary(args.optimizer, model, H, numbers, args.form, origin)
    _print(result.to_dict() if args.format == "json" else result.to_text(), args.format)
    return 0


def _cmd_scaling(args: argparse.Namespace) -> int:
    rule = scaling_rule(args.optimizer, args.regime, args.criterion, args.noise, args.form, nu=args.nu)
    _print(rule.to_dict() if args.format == "json" else rule.to_text(), args.format)
    return 0


def _cmd_phases(args: argparse.Namespace) -> int:
    phases = signsgd_phases(
        args.noise, nu=args.nu, linear_tol=args.linear_tol, sign_tol=args.sign_tol, y1=args.y1, y2=args.y2
    )
    _print(phases.to_dict() if args.format == "json" else phases.to_text(), args.format)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from ..theory.checks import CHECKS, Sim, run_checks, summary, table, to_dict

    names = args.only.split(",") if args.only else None
    unknown = sorted(set(names or []) - set(CHECKS))
    if unknown:
        from ..errors import UnknownNameError

        raise UnknownNameError("check", ",".join(unknown), list(CHECKS))
    sim = Sim(paths=args.paths, seed=args.seed)
    if wants_serial(args):
        rows = run_checks(names, sim)
    else:
        from ..executor import open_executor

        with open_executor(args.scheduler, args.workers) as executor:
            print(f"derive check: {executor.describe()}", file=sys.stderr)
            rows = run_checks(names, sim, map_tasks=in_order(executor))
    paths = []
    if args.plots:
        from ..theory.plots import draw

        paths = draw(rows, args.plots)
    if args.format == "json":
        _print({**to_dict(rows), "figures": [str(p) for p in paths]}, "json")
    else:
        print(table(rows))
        for path in paths:
            print(f"wrote {path}")
        print(summary(rows))
    return 1 if any(not r.ok for r in rows) else 0


def in_order(executor):
    """``map_tasks`` for :func:`derive.theory.checks.run_checks` on ``executor``: each task's rows in
    the order of the tasks, as soon as they and every earlier task's are done; a task that failed
    stops the run with its message (and, for a bug, its traceback on stderr)."""
    from ..errors import DeriveError
    from ..executor import Task

    def map_tasks(function, tasks):
        outcomes, done = {}, 0
        submitted = [Task(f"{i:04d}/{t.check}", function, (t,)) for i, t in enumerate(tasks)]
        for outcome in executor.map(submitted, label="checks"):
            outcomes[int(outcome.key.partition("/")[0])] = outcome
            while done in outcomes:
                o = outcomes.pop(done)
                if not o.ok:
                    if o.traceback:
                        print(o.traceback, file=sys.stderr)
                    raise DeriveError(f"check {tasks[done].check} ({tasks[done].label}) failed: {o.error}")
                yield o.value
                done += 1

    return map_tasks


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add `stationary`, `scaling`, `phases` and `check` to the ``derive`` parser."""

    def common(p: argparse.ArgumentParser, form_default: str) -> None:
        p.add_argument("optimizer", help="built-in optimizer or path/to/file.py:NAME")
        p.add_argument("--noise", default="gaussian")
        p.add_argument("--nu", default=None, help="Student-t degrees of freedom (a number, or 'nu')")
        p.add_argument("--regime", default="paper", choices=list(REGIMES))
        p.add_argument("--form", default=form_default, choices=list(FORMS))
        p.add_argument("--format", default="text", choices=list(FORMATS))

    p = sub.add_parser(
        "stationary", help="stationary law on the quadratic model (Lyapunov equation, expansions, exact)"
    )
    common(p, "full")
    p.add_argument(
        "--curvature",
        default=None,
        help="lambda of f = lambda x^2/2: one value, or one per coordinate separated by commas",
    )
    p.add_argument("--eta", default=None, help="learning rate, to evaluate the laws numerically")
    p.add_argument("--sigma", default=None, help="noise scale, to evaluate the laws numerically")
    p.add_argument(
        "--hyper",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a hyperparameter by its PyTorch name (beta1=0.9, eps=0, theta=0.1); repeat for several",
    )
    p.add_argument(
        "--full-matrix", type=int, default=0, metavar="D", help="sgd only: also full H and Sigma in D dimensions"
    )
    p.add_argument(
        "--hessian",
        default=None,
        metavar="FILE",
        help="a .npy symmetric positive definite d x d H of f = x^T H x/2 (replaces --curvature)",
    )
    add_noise_options(p)
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
    p.add_argument("--format", default="text", choices=list(FORMATS))
    add_where_options(p, "serial")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("phases", help="the phases of the SignSGD SDE, thresholds from the law's own s(y)")
    p.add_argument("--noise", default="gaussian")
    p.add_argument("--nu", default=None)
    p.add_argument(
        "--linear-tol",
        type=_number,
        default=None,
        help="linear phase: |y| up to where 2 p(0) y exceeds s(y) by this fraction (default: the Gaussian's at Y = 1)",
    )
    p.add_argument(
        "--sign-tol",
        type=_number,
        default=None,
        help="sign phase: |y| from where s(y) is within this fraction of 1 (default: the Gaussian's at Y = 3/2)",
    )
    p.add_argument("--y1", type=_number, default=None, help="override: end of the linear phase in y = g/sigma")
    p.add_argument("--y2", type=_number, default=None, help="override: start of the sign phase in y = g/sigma")
    p.add_argument("--format", default="text", choices=list(FORMATS))
    p.set_defaults(func=_cmd_phases)
