"""`derive noise`: the minibatch gradient noise of a built-in model, measured (see docs/validation.md,
"Real noise")."""

from __future__ import annotations

import argparse
import json
import sys

from ..validate import ValidationInputError
from ..validate.models import MODELS


def _steps(text: str) -> list[int]:
    try:
        steps = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValidationInputError(f"--at must be step counts separated by commas, got {text!r}") from None
    if not steps or any(s < 0 for s in steps):
        raise ValidationInputError(f"--at must be step counts >= 0, got {text!r}")
    return steps


def _cmd_noise(args: argparse.Namespace) -> int:
    from ..validate.noise_measure import measure_noise
    from ..validate.runner import progress_bar

    if args.model not in MODELS:
        from ..errors import UnknownNameError

        raise UnknownNameError("model", args.model, MODELS)
    bar = None if args.quiet else progress_bar(f"noise {args.model}")
    try:
        report = measure_noise(
            args.model,
            args.batch,
            at=_steps(args.at),
            sampling=args.sampling,
            eta=args.eta,
            draws=args.draws,
            coordinates=args.coordinates,
            n_boot=args.boot,
            seed=args.seed,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(report.text())
    if args.plot:
        from ..validate.noise_plots import noise_figure

        print(f"wrote {noise_figure(report, args.plot)}", file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `noise` to the ``derive`` parser."""
    p = sub.add_parser("noise", help="measure a model's minibatch gradient noise: Sigma(x), its spectrum, its law")
    p.add_argument("--model", required=True, help="mlp, cnn, resnet or transformer")
    p.add_argument("--batch", required=True, type=int, help="the batch size B (1 <= B <= N)")
    p.add_argument("--at", default="0,300", help="steps of the SGD run at which to measure (default 0,300)")
    p.add_argument("--sampling", default="replacement", choices=("replacement", "epoch"))
    p.add_argument("--eta", type=float, default=0.1, help="SGD's step size for the run (default 0.1)")
    p.add_argument("--draws", type=int, default=256, help="minibatches drawn for the law (default 256)")
    p.add_argument("--coordinates", type=int, default=128, help="coordinates pooled for the law (default 128)")
    p.add_argument("--boot", type=int, default=200, help="bootstrap resamples for nu's interval (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", default="text", choices=("text", "json"))
    p.add_argument("--plot", default=None, help="draw the histograms and spectra to an image")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_noise)
