"""`derive validate`, `derive weak-order` and `derive report`: argument parsing and printing
(see docs/validation.md)."""

from __future__ import annotations

import argparse
import json
import sys

from ..validate import ValidationInputError
from ..validate.runner import MODEL_CHOICES, run_validation
from .noise_options import add_noise_options, noise_model
from .where import add_where_options

#: where `derive report` runs its tasks without --scheduler, --workers or --serial
REPORT_WHERE = "local"


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValidationInputError(f"--{name} must be a number or a comma-separated list, got {text!r}") from None
    if not values:
        raise ValidationInputError(f"--{name} is empty")
    return values


def _seeds(text: str) -> list[int]:
    """``5`` -> seeds 0..4; ``0,3,7`` -> those seeds."""
    try:
        if "," in text:
            return [int(v) for v in text.split(",") if v.strip()]
        n = int(text)
    except ValueError:
        raise ValidationInputError(
            f"--seeds must be a count or a comma-separated list of integers, got {text!r}"
        ) from None
    if n < 1:
        raise ValidationInputError(f"--seeds must be >= 1, got {n}")
    return list(range(n))


def _show(result, files, fmt: str, header: str) -> None:
    """One validation's output: with ``--format json`` only the files written (on stderr; the JSON
    is printed once at the end), else the header line, the table, its notes and the files."""
    if fmt == "json":
        for f in files:
            print(f"wrote {f}", file=sys.stderr)
        return
    print(header)
    print(result.table())
    for note in result.notes:
        print(f"note: {note}")
    for f in files:
        print(f"wrote {f}")


def _cmd_validate(args: argparse.Namespace) -> int:
    if args.out is None and args.format == "text":
        raise ValidationInputError("give --out DIR for the JSON and PNG files, or --format json to print the JSON")
    if args.gradients == "minibatch":
        return _cmd_validate_minibatch(args)
    for flag, value in (
        ("--batch", args.batch),
        ("--variants", args.variants),
        ("--svag", args.svag),
        ("--top", args.top),
    ):
        if value is not None:
            raise ValidationInputError(f"{flag} is for --gradients minibatch (the default, injected, uses --sigma)")
    if args.sampling != "replacement" or args.form != "full":
        flag = "--sampling" if args.sampling != "replacement" else "--form"
        raise ValidationInputError(f"{flag} is for --gradients minibatch (the default, injected, uses --compare)")
    sigmas = _floats(args.sigma or "0.01", "sigma")
    etas = _floats(args.eta, "eta")
    seeds = _seeds(args.seeds)
    compare = args.compare.split(",") if args.compare else None
    results = []
    for sigma in sigmas:
        for eta in etas:
            tag = None if len(etas) == 1 else f"{args.model}_{args.optimizer}_sigma{sigma:g}_eta{eta:g}"
            result, files = run_validation(
                args.model,
                args.optimizer,
                noise=args.noise,
                nu=args.nu,
                sigma=sigma,
                eta=eta,
                steps=args.steps,
                seeds=seeds,
                paths=args.paths,
                compare=compare,
                out=args.out,
                progress=not args.quiet,
                tag=tag,
                scheme=args.scheme,
                substeps=args.substeps,
                coupled=not args.independent,
            )
            results.append(result.to_json())
            _show(
                result,
                files,
                args.format,
                f"{result.model} / {result.optimizer} | noise {result.noise} | eta {eta:g} | sigma {sigma:g} | "
                f"{result.steps} steps | {len(result.seeds) if result.unit == 'seeds' else args.paths} {result.unit} | "
                f"{result.dim} parameters | {result.seconds:.1f} s",
            )
    if args.format == "json":
        print(json.dumps({"results": results}, indent=1))
    return 0


def _cmd_validate_minibatch(args: argparse.Namespace) -> int:
    """`validate --gradients minibatch`: the real optimizer on minibatches against the SDE variants."""
    from ..validate import require_torch
    from ..validate.runner import run_minibatch_validation

    require_torch()  # a one-line error when PyTorch is missing
    if args.batch is None:
        raise ValidationInputError("--gradients minibatch needs --batch B (the minibatch size, 1 <= B <= N)")
    refused = [
        (args.sigma is not None, "--sigma (the noise is measured from the minibatches)"),
        (args.compare is not None, "--compare (the SDEs are the variants: use --variants)"),
        (args.scheme != "euler", "--scheme weak2 (split-step Euler only)"),
        (args.independent, "--independent (minibatch runs are always independent)"),
        (args.noise != "gaussian" or args.nu is not None, "--noise/--nu (the Gaussian closure is the model)"),
    ]
    for given, what in refused:
        if given:
            raise ValidationInputError(f"--gradients minibatch takes no {what}")
    variants = args.variants.split(",") if args.variants else None
    results = []
    for eta in _floats(args.eta, "eta"):
        tag = None if "," not in args.eta else f"{args.model}_{args.optimizer}_minibatch_B{args.batch}_eta{eta:g}"
        result, files = run_minibatch_validation(
            args.model,
            args.optimizer,
            batch=args.batch,
            sampling=args.sampling,
            eta=eta,
            steps=args.steps,
            seeds=_seeds(args.seeds),
            form=args.form,
            substeps=args.substeps,
            variants=variants,
            svag=[int(v) for v in _floats(args.svag, "svag")] if args.svag else (),
            top=10 if args.top is None else args.top,
            out=args.out,
            progress=not args.quiet,
            tag=tag,
        )
        results.append(result.to_json())
        _show(
            result,
            files,
            args.format,
            f"{result.model} / {result.optimizer} | minibatch gradients, B = {result.batch} ({result.sampling}) | "
            f"eta {eta:g} | {result.steps} steps | {len(result.seeds)} seeds | {result.dim} parameters | "
            f"{result.seconds:.1f} s",
        )
    if args.format == "json":
        print(json.dumps({"results": results}, indent=1))
    return 0


def _cmd_weak_order(args: argparse.Namespace) -> int:
    from ..validate.runner import progress_bar
    from ..validate.weak_order import weak_order

    etas = _floats(args.etas, "etas") if args.etas else None
    sdes = args.form.split(",") if args.form else None
    bar = None if args.quiet else progress_bar(f"weak order {args.optimizer}")
    try:
        study = weak_order(
            args.optimizer,
            noise=args.noise,
            nu=args.nu,
            sdes=sdes,
            landscape=args.landscape,
            **({"etas": etas} if etas else {}),
            paths=args.paths,
            scheme=args.scheme,
            substeps=args.substeps,
            seed=args.seed,
            boundary=args.boundary,
            burn=not args.from_initial,
            order=args.order,
            progress=bar,
            noise_model=noise_model(args, 2, None),
        )
    finally:
        if bar is not None:
            bar.close()
    if args.format == "json":
        print(json.dumps(study.to_json(), indent=1))
    else:
        print(study.text())
    if args.plot:
        from ..validate.weak_order import figure

        print(f"wrote {figure(study, args.plot)}", file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def _integrator_flags(p: argparse.ArgumentParser, scheme: str, substeps) -> None:
    p.add_argument(
        "--scheme",
        default=scheme,
        choices=("euler", "weak2"),
        help="SDE integrator: split-step Euler (weak order 1) or its Talay-Tubaro extrapolation "
        f"(weak order 2); default {scheme}",
    )
    p.add_argument(
        "--substeps",
        type=int,
        default=substeps,
        help="SDE steps per optimizer step, dt = eta/R"
        + (f" (default {substeps})" if substeps else " (default: the fewest with dt <= 0.005)"),
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from .. import report
    from ..executor import open_executor
    from .where import wants_serial

    setting = report.QUICK if args.quick else report.FULL if args.full else report.DEFAULT
    serial = wants_serial(args)
    with open_executor(args.scheduler, args.workers, serial) as executor:
        path = report.build(args.out, setting=setting, progress=sys.stderr, executor=executor)
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `validate` and `report` to the ``derive`` parser."""
    p = sub.add_parser("validate", help="the optimizer against its SDEs on a network or a quadratic (JSON, PNG)")
    p.add_argument("--model", required=True, choices=MODEL_CHOICES)
    p.add_argument("--optimizer", required=True, help="sgd, signsgd, rmsprop, rmspropw, adam, adamw")
    p.add_argument(
        "--noise", default="gaussian", help="gaussian (default), student-t (with --nu), cauchy, laplace, uniform"
    )
    p.add_argument("--nu", default=None, help="Student-t degrees of freedom")
    p.add_argument("--sigma", default=None, help="noise scale, or a comma-separated list (default 0.01)")
    p.add_argument("--eta", default="0.01", help="learning rate, or a comma-separated list (default 0.01)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps (default 300 on networks, 1000 on the quadratic, 100 with --gradients minibatch)",
    )
    p.add_argument(
        "--seeds",
        default="3",
        help="a count (seeds 0..n-1) or a list 0,4,9 (default 3); quadratic: the seed is the first",
    )
    p.add_argument("--paths", type=int, default=2000, help="quadratic only: paths (default 2000)")
    p.add_argument(
        "--compare", default=None, help="SDEs: full,published,noise-dominated (default: those that exist and differ)"
    )
    _integrator_flags(p, "euler", 1)
    p.add_argument(
        "--independent",
        action="store_true",
        help="drive the SDEs by independent noise (default: coupled with the optimizer's noise)",
    )
    p.add_argument(
        "--gradients",
        default="injected",
        choices=("injected", "minibatch"),
        help="injected (default): full-batch gradient + sigma zeta; minibatch: the real optimizer on minibatches "
        "against SDEs whose noise is measured at their own point (variants minibatch-full, minibatch-diag, isotropic)",
    )
    p.add_argument("--batch", type=int, default=None, help="--gradients minibatch: the batch size B (1 <= B <= N)")
    p.add_argument(
        "--sampling",
        default="replacement",
        choices=("replacement", "epoch"),
        help="--gradients minibatch: B indices with replacement (default, the SDE's assumption) or shuffled epochs",
    )
    p.add_argument(
        "--variants",
        default=None,
        help="--gradients minibatch: a comma-separated subset of minibatch-full,minibatch-diag,isotropic (default all)",
    )
    p.add_argument(
        "--svag",
        default=None,
        help="--gradients minibatch, sgd: SVAG runs with these l (e.g. 4,16), compared with minibatch-full",
    )
    p.add_argument(
        "--top",
        type=int,
        default=None,
        help="--gradients minibatch: split the distance into its projection onto the top K eigenvectors of "
        "Sigma(x_ref) and the rest (default 10; 0: no split)",
    )
    p.add_argument(
        "--form",
        default="full",
        choices=("full", "published"),
        help="--gradients minibatch: the derived SDE's form (default full)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default=None, help="folder for the JSON and PNG (required with --format text)")
    p.add_argument(
        "--format",
        default="text",
        choices=("text", "json"),
        help="text: tables (and files in --out); json: print {'results': [one object per sigma and eta]}, "
        "the objects the JSON files hold",
    )
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("weak-order", help="weak error of the SDEs against the optimizer as eta varies (coupled runs)")
    p.add_argument("optimizer", help="sgd, signsgd, rmsprop, rmspropw, adam, adamw (or path/to/file.py:NAME)")
    p.add_argument(
        "--noise",
        default="gaussian",
        help="gaussian (default), student-t (with --nu), cauchy, laplace, uniform, cdf:EXPR",
    )
    p.add_argument("--nu", default=None, help="Student-t degrees of freedom")
    p.add_argument(
        "--form",
        default=None,
        help="the SDEs: full, published, noise-dominated, order2, or a comma-separated list "
        "(default: those that exist and differ; with --order 2: full,order2)",
    )
    p.add_argument(
        "--order",
        type=int,
        default=1,
        choices=(1, 2),
        help="2: add the order-2 SDE of the full form (run 'order2') beside 'full' (docs/order2.md)",
    )
    p.add_argument("--landscape", default="quadratic", choices=("quadratic", "double-well", "rotated"))
    p.add_argument(
        "--etas",
        default=None,
        help="comma-separated step sizes (default 0.16,0.08,0.04,0.02,0.01; with --order 2: 0.08,0.04,0.02,0.01; "
        "with a fast state, beta fixed (sgd_momentum, nesterov, adam_fixed): 0.002,0.001,0.0005,0.00025 "
        "x ((1 - beta)/0.1)^2)",
    )
    p.add_argument("--paths", type=int, default=20_000, help="coupled paths per eta (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    _integrator_flags(p, "weak2", None)
    p.add_argument(
        "--boundary",
        default="reflect",
        choices=("reflect", "floor"),
        help="rule for positive states (v) below 0 after a step: reflect (default) or an absorbing floor",
    )
    p.add_argument(
        "--from-initial",
        action="store_true",
        help="start from the initial states (m = v = 0, the initial layer included) instead of burned-in ones",
    )
    p.add_argument("--format", default="text", choices=("text", "json"))
    p.add_argument("--plot", default=None, help="draw the errors against eta (log-log) to an image")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_noise_options(p)  # d = 2; with either, phi adds x_1 x_2
    p.set_defaults(func=_cmd_weak_order)

    p = sub.add_parser("report", help="derivations, checks and validations in one report (report/REPORT.md)")
    p.add_argument("--out", default="report", help="folder of REPORT.md and its figures (default report)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the tests' size: a few rows per section, small sizes")
    size.add_argument("--full", action="store_true", help="every row at the larger sizes (several times longer)")
    add_where_options(p, REPORT_WHERE)
    p.set_defaults(func=_cmd_report)
