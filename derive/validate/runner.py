"""Validation and weak-order runs as the command line asks for them, optionally saved (JSON, PNG),
with a tqdm progress bar."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UnknownNameError
from ..io import atomic_write_text

MODEL_CHOICES = ("mlp", "cnn", "resnet", "transformer", "quadratic")


def run_validation(
    model: str,
    optimizer: str,
    *,
    noise: str = "gaussian",
    nu=None,
    sigma: float = 0.01,
    eta: float = 0.01,
    steps: int | None = None,
    seeds=(0, 1, 2),
    paths: int = 2000,
    compare=None,
    out: str | Path | None = None,
    progress: bool = True,
    tag: str | None = None,
    scheme: str = "euler",
    substeps: int = 1,
    coupled: bool = True,
):
    """One validation (network or quadratic), optionally written to ``out`` as JSON + PNG."""
    from .experiment import validate, validate_quadratic

    if model not in MODEL_CHOICES:
        raise UnknownNameError("model", model, MODEL_CHOICES)
    integrator = dict(scheme=scheme, substeps=substeps, coupled=coupled)
    bar = progress_bar(f"{model}/{optimizer}") if progress else None
    try:
        if model == "quadratic":
            result = validate_quadratic(
                optimizer,
                noise=noise,
                nu=nu,
                eta=eta,
                sigma=sigma,
                steps=steps or 1000,
                paths=paths,
                seed=seeds[0],
                compare=compare,
                progress=bar,
                **integrator,
            )
        else:
            result = validate(
                model,
                optimizer,
                noise=noise,
                nu=nu,
                eta=eta,
                sigma=sigma,
                steps=steps or 300,
                seeds=seeds,
                compare=compare,
                progress=bar,
                **integrator,
            )
    finally:
        if bar is not None:
            bar.close()
    files = []
    if out is not None:
        from .plots import loss_figure

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        stem = tag or f"{model}_{optimizer}_sigma{sigma:g}"
        atomic_write_text(folder / f"{stem}.json", json.dumps(result.to_json(), indent=1))
        files = [folder / f"{stem}.json", loss_figure(result, folder / f"{stem}.png")]
    return result, files


def progress_bar(label: str):
    """A tqdm bar on stderr, called as ``bar(done, total)``; ``bar.close()`` at the end."""
    return _Bar(label)


class _Bar:
    def __init__(self, label: str):
        self.label, self.bar = label, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.label, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_minibatch_validation(
    model: str,
    optimizer: str,
    *,
    batch: int,
    sampling: str = "replacement",
    eta: float = 0.01,
    steps: int | None = None,
    seeds=(0, 1, 2),
    form: str = "full",
    substeps: int = 1,
    variants=None,
    svag=(),
    top: int = 10,
    out: str | Path | None = None,
    progress: bool = True,
    tag: str | None = None,
):
    """One minibatch validation (:func:`derive.validate.minibatch_validation.validate_minibatch`) on
    a built-in network, optionally written to ``out`` as JSON."""
    from .minibatch_validation import VARIANTS, validate_minibatch
    from .models import MODELS

    if model not in MODELS:
        raise UnknownNameError("model with a dataset (for --gradients minibatch)", model, MODELS)
    bar = progress_bar(f"{model}/{optimizer} B={batch}") if progress else None
    try:
        result = validate_minibatch(
            model,
            optimizer,
            batch=batch,
            sampling=sampling,
            eta=eta,
            steps=steps or 100,
            seeds=seeds,
            form=form,
            substeps=substeps,
            variants=variants or VARIANTS,
            svag=svag,
            top=top,
            progress=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    files = []
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{tag or f'{model}_{optimizer}_minibatch_B{batch}_{sampling}'}.json"
        atomic_write_text(path, json.dumps(result.to_json(), indent=1))
        files = [path]
    return result, files
