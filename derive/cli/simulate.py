"""`derive simulate`: the optimizer and chosen SDEs on one quadratic, from one random start
(``--order 2`` or ``--compare ...,order2``: the order-2 SDE, docs/order2.md).

The table gives the mean loss with its standard error at a few times and, for each SDE, the
largest gap to the optimizer over the recorded steps in combined standard errors,
max_k |L_sde(k) - L_opt(k)| / sqrt(se_sde(k)^2 + se_opt(k)^2).
"""

from __future__ import annotations

import argparse

import numpy as np

from ..combination import Combination
from ..errors import DeriveError
from ..io import atomic_savez
from ..noise import NAMES as NOISE_NAMES
from ..plots import run_trajectories
from ..regimes import FORMS
from .noise_options import add_noise_options, noise_model

CHOICES = ("optimizer", "sde", "full", "published", "noise-dominated", "order2")


def _targets(items: list[str], form: str, order: int = 1) -> list[tuple[str, str, str | None, str | None, int]]:
    """(label, kind, regime, form, order) for each --compare item: ``order`` applies to 'sde' (the
    only run whose form --form chooses), 'order2' is the order-2 SDE of the full form. An order-2
    SDE exists in the paper regime and the full form only: other requests are refused."""
    if order not in (1, 2):
        raise DeriveError(f"--order must be 1 or 2, got {order}")
    if order == 2 and form != "full":
        raise DeriveError(
            f"--order 2 --form {form}: no published form is order 2 (without the second-moment noise "
            "the one-step second moments differ at O(eta^2)); use --form full"
        )
    if order == 2 and "noise-dominated" in items:
        raise DeriveError(
            "--order 2 with --compare noise-dominated: order 2 is derived in the paper regime only; "
            "compare 'sde' or 'order2'"
        )
    tail = " order 2" if order == 2 else ""
    table = {
        "optimizer": ("optimizer", "optimizer", None, None, 1),
        "sde": (f"SDE paper/{form}{tail}", "sde", "paper", form, order),
        "full": ("SDE paper/full", "sde", "paper", "full", 1),
        "published": ("SDE paper/published", "sde", "paper", "published", 1),
        "noise-dominated": (f"SDE noise-dominated/{form}", "sde", "noise-dominated", form, 1),
        "order2": ("SDE paper/full order 2", "sde", "paper", "full", 2),
    }
    bad = [i for i in items if i not in table]
    if bad:
        raise DeriveError(f"unknown --compare item(s) {', '.join(bad)}; allowed: {', '.join(CHOICES)}")
    return list(dict.fromkeys(table[i] for i in items))


def table(runs: dict, columns: int = 4) -> str:
    from .. import simulate as sim

    """Mean loss +- SE at ``columns`` recorded times (the last is the end) and the gap to the optimizer."""
    first = next(iter(runs.values()))
    idx = np.unique(np.linspace(0, len(first.steps) - 1, columns).round().astype(int))
    head = f"{'run':28s}" + "".join(f"{'t=' + format(first.times[i], '.4g'):>22s}" for i in idx)
    has_ref = "optimizer" in runs
    lines = [head + ("   max gap to optimizer" if has_ref else "")]
    for label, r in runs.items():
        cells = "".join(f"{format(r.loss_mean[i], '.5g') + ' +- ' + format(r.loss_se[i], '.2g'):>22s}" for i in idx)
        gap = f"   {sim.gap_in_se(r, runs['optimizer']):.2f} SE" if has_ref and label != "optimizer" else ""
        lines.append(f"{label:28s}{cells}{gap}")
    return "\n".join(lines)


def _cmd_simulate(args: argparse.Namespace) -> int:
    import numba

    from .. import simulate as sim

    if args.threads is not None:
        if args.threads < 1 or args.threads > numba.config.NUMBA_NUM_THREADS:
            raise DeriveError(f"--threads must be in [1, {numba.config.NUMBA_NUM_THREADS}], got {args.threads}")
        numba.set_num_threads(args.threads)
    hyper = {}
    for item in args.hyper or []:
        name, sep, value = item.partition("=")
        try:
            hyper[name] = float(value)
        except ValueError:
            raise DeriveError(f"--hyper takes NAME=VALUE, got {item!r}") from None
    dtype = np.float32 if args.float32 else np.float64
    sim._check_counts(dim=args.dim, paths=args.paths, steps=args.steps)
    land = sim.quadratic(np.linspace(args.lam_min, args.lam_max, args.dim))
    x0 = sim.random_start(args.paths, args.dim, args.seed, args.start_scale, dtype)
    targets = [
        (
            label,
            kind,
            Combination(args.optimizer, args.noise, regime or "paper", form or "full", nu=args.nu, order=order),
        )
        for label, kind, regime, form, order in _targets(args.compare.split(","), args.form, args.order)
    ]
    # an SDE that starts after the optimizer's first steps (AdaGrad from s = 0): every run recorded from there
    first = max(
        (getattr(sim.load_module(c, args.module_dir), "START_STEPS", 0) for _, kind, c in targets if kind == "sde"),
        default=0,
    )
    record = np.unique(np.linspace(min(first, args.steps), args.steps, args.records).round().astype(np.int64))
    model = noise_model(args, args.dim, args.sigma)
    sigma = None if model is not None else (1.0 if args.sigma is None else args.sigma)
    runs = {}
    for label, kind, combo in targets:
        runs[label] = sim.run(
            kind,
            combo,
            x0,
            eta=args.eta,
            sigma=sigma,
            steps=args.steps,
            seed=args.seed,
            landscape=land,
            hyper=hyper,
            record=record,
            module_dir=args.module_dir,
            scheme=args.scheme,
            substeps=args.substeps,
            noise=model,
        )
    scale = f"sigma={sigma}" if model is None else f"noise {model.origin}"
    title = (
        f"{args.optimizer} | {args.noise} | d={args.dim} N={args.paths} eta={args.eta} {scale} | "
        f"SDEs: {args.scheme}, {args.substeps} substep(s) of eta/{args.substeps}"
    )
    print(title)
    print(table(runs))
    if args.out:
        arrays = {}
        for i, r in enumerate(runs.values()):
            arrays.update({f"run{i}_loss": r.loss, f"run{i}_mean": r.mean, f"run{i}_var": r.var})
        times = next(iter(runs.values())).times
        atomic_savez(args.out, labels=np.array(list(runs)), steps=record, times=times, **arrays)
        print(f"wrote {args.out}")
    if args.plot:
        run_trajectories(runs, title, args.plot)
        print(f"wrote {args.plot}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register ``derive simulate``."""
    p = subparsers.add_parser("simulate", help="simulate an optimizer and its SDEs on a quadratic")
    p.add_argument("optimizer", help="built-in name or path/to/file.py:NAME (then also --module-dir)")
    p.add_argument("--noise", default="gaussian", help=f"noise law: {', '.join(NOISE_NAMES)} (default gaussian)")
    p.add_argument("--nu", default=None, type=float, help="Student-t degrees of freedom (a number > 0, e.g. 2.5)")
    p.add_argument("--form", default="full", choices=list(FORMS), help="form of the 'sde' and 'noise-dominated' runs")
    p.add_argument(
        "--order",
        type=int,
        default=1,
        choices=(1, 2),
        help="weak order of the 'sde' run: 1, or 2 (the order-2 SDE: paper regime, full form; "
        "integrate it with --scheme weak2 to keep the order)",
    )
    p.add_argument("--dim", type=int, default=10, help="coordinates of the quadratic (default 10)")
    p.add_argument("--paths", type=int, default=1000, help="independent paths per run (default 1000)")
    p.add_argument(
        "--steps", type=int, default=1000, help="optimizer steps; the SDEs run to t = steps * eta (default 1000)"
    )
    p.add_argument("--eta", type=float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--sigma", type=float, default=None, help="gradient-noise scale (default 1)")
    add_noise_options(p)
    p.add_argument(
        "--seed", type=int, default=0, help="random seed; same seed, same numbers at any thread count (default 0)"
    )
    p.add_argument("--hyper", action="append", help="another hyperparameter, NAME=VALUE (repeatable)")
    p.add_argument("--compare", default="optimizer,sde", help=f"comma-separated runs from {', '.join(CHOICES)}")
    p.add_argument("--lam-min", type=float, default=1.0, help="smallest curvature of the quadratic (default 1)")
    p.add_argument("--lam-max", type=float, default=1.0, help="largest curvature (default 1)")
    p.add_argument("--start-scale", type=float, default=1.0, help="x0 ~ N(0, scale^2) per coordinate")
    p.add_argument("--records", type=int, default=51, help="number of recorded steps (default 51)")
    p.add_argument(
        "--scheme",
        default="euler",
        choices=("euler", "weak2"),
        help="SDE integrator: split-step Euler (weak order 1) or its Talay-Tubaro extrapolation (weak order 2)",
    )
    p.add_argument("--substeps", type=int, default=1, help="SDE steps per optimizer step, dt = eta/R (default 1)")
    p.add_argument("--float32", action="store_true", help="simulate in float32")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all cores)")
    p.add_argument("--module-dir", default=None, help="directory for modules outside the built-in set")
    p.add_argument("--out", default=None, help="save the recorded statistics to an .npz file")
    p.add_argument("--plot", default=None, help="draw the mean loss trajectories with bands to an image")
    p.set_defaults(func=_cmd_simulate)
