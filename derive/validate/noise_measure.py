"""``derive noise``: the minibatch noise of a model measured at points of a training run.

At each requested step of a plain SGD run on minibatches (the start, step 0, included by default)
the per-sample gradients give Sigma(x) (:class:`derive.validate.minibatch.GradientSample`: trace,
top eigenvalues, effective rank, spread of the variances) and the law of the standardised
minibatch gradient coordinates (:mod:`derive.validate.noise_law`): M minibatches of B samples
drawn independently from the per-sample gradients (with replacement, or B distinct samples for
``epoch``), at k coordinates chosen at random (seeded) among those a sample moves,

    z[m, i] = (mean_{n in batch m} G[n, i] - g_i) / sqrt(c Sigma_ii / B),

so that every z[m, i] has mean 0 and variance 1 exactly. A minibatch gradient is a mean of
per-sample gradients, so the draws need no further backward passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import ValidationInputError
from .minibatch import GradientSample, check_batch, check_sampling, population_factor, torch_threads
from .noise_law import NoiseLaw, fit_law
from .torch_adapter import Problem

#: how many of the largest eigenvalues a point reports
TOP = 10


def usable_coordinates(sample: GradientSample) -> np.ndarray:
    """Coordinates whose variance is above the rounding of the centring (Sigma_ii > (1e-12 max_n
    |G[n, i]|)^2): a parameter no sample moves has no law to fit."""
    G = sample.grads.numpy()
    floor = (1e-12 * np.abs(G).max(axis=0)) ** 2
    return np.flatnonzero(sample.variances > np.maximum(floor, 1e-300))


def standardised_draws(
    sample: GradientSample,
    batch: int,
    sampling: str = "replacement",
    *,
    draws: int = 256,
    coordinates: int = 128,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z [draws, k], the coordinates used, their k x k correlation under Sigma) (module docstring)."""
    n = sample.n
    batch, sampling = check_batch(batch, n), check_sampling(sampling)
    c = population_factor(n, batch, sampling)
    if c == 0:
        raise ValidationInputError(f"one batch of all N = {n} samples without replacement has no noise; take B < N")
    usable = usable_coordinates(sample)
    if usable.size == 0:
        raise ValidationInputError("no coordinate of the gradient varies across samples: there is no noise")
    coords = np.sort(rng.choice(usable, size=min(coordinates, usable.size), replace=False))
    G = sample.grads.numpy()[:, coords]
    g, var = G.mean(axis=0), sample.variances[coords]
    if sampling == "replacement":
        idx = rng.integers(0, n, size=(draws, batch))
    else:
        idx = np.stack([rng.choice(n, size=batch, replace=False) for _ in range(draws)])
    z = (G[idx].mean(axis=1) - g) / np.sqrt(c * var / batch)
    Gc = G - g
    cov = Gc.T @ Gc / n
    corr = cov / np.sqrt(np.outer(var, var))
    return z, coords, corr


def exact_kurtosis(sample: GradientSample, coords: np.ndarray, batch: int) -> float:
    """The pooled excess kurtosis of z over ``coords`` for B indices drawn with replacement:
    mean_i kappa_1i / B, kappa_1i = m4_i / m2_i^2 - 3 the per-sample excess kurtosis."""
    Gc = sample.centred.numpy()[:, coords]
    m2, m4 = (Gc**2).mean(axis=0), (Gc**4).mean(axis=0)
    return float(np.mean(m4 / m2**2 - 3.0) / batch)


@dataclass
class NoisePoint:
    """The noise at one step of the run."""

    step: int
    loss: float
    batch: int
    sampling: str
    trace: float
    eigenvalues: np.ndarray  #: every eigenvalue of Sigma beyond its null space, largest first
    effective_rank: float
    entropy_rank: float
    variance_spread: dict
    law: NoiseLaw
    z: np.ndarray  #: the pooled standardised draws (for the figure)

    def to_json(self) -> dict:
        return {
            "step": self.step,
            "loss": self.loss,
            "batch": self.batch,
            "sampling": self.sampling,
            "trace": self.trace,
            "top_eigenvalues": [float(v) for v in self.eigenvalues[:TOP]],
            "effective_rank": self.effective_rank,
            "effective_rank_entropy": self.entropy_rank,
            "variance_spread": self.variance_spread,
            **self.law.to_json(),
        }

    def text(self) -> str:
        law, s = self.law, self.variance_spread
        lo, hi = law.nu_ci
        exact = (
            "" if law.kurtosis_exact is None else f" (exact, from the per-sample gradients: {law.kurtosis_exact:.4g})"
        )
        return "\n".join(
            [
                f"step {self.step}: loss {self.loss:.4g} | batch {self.batch} ({self.sampling})",
                f"  Sigma(x): trace {self.trace:.4g}; top eigenvalues "
                + ", ".join(f"{v:.3g}" for v in self.eigenvalues[:5])
                + f"; effective rank {self.effective_rank:.2f} (participation ratio), {self.entropy_rank:.2f} (entropy)",
                f"  variances Sigma_ii: median {s['median']:.3g}, 10%-90% [{s['q10']:.3g}, {s['q90']:.3g}], "
                f"max {s['max']:.3g}, cv {s['cv']:.2f}, zero for {100 * s['zero_share']:.1f}% of coordinates",
                f"  law of the standardised coordinates ({law.rows} minibatches x {law.points // law.rows} coordinates): "
                f"excess kurtosis {law.kurtosis:.3g} +- {law.kurtosis_se:.2g}{exact}",
                f"  student-t fit: nu {law.nu:.3g} [{lo:.3g}, {hi:.3g}] (95% bootstrap over minibatches), scale {law.scale:.3g}",
                f"  log-likelihood student-t - gaussian {law.log_likelihood_ratio:.4g}; 2L/w = {law.statistic:.3g} "
                f"(design effect w {law.design_effect:.3g}), p = {law.p_value:.3g}",
                f"  law: {law.law} (student-t when p < {law.level:g})",
            ]
            + [f"  note: {note}" for note in law.notes]
        )


@dataclass
class NoiseReport:
    model: str
    dim: int
    samples: int
    batch: int
    sampling: str
    eta: float
    points: list[NoisePoint]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "parameters": self.dim,
            "samples": self.samples,
            "batch": self.batch,
            "sampling": self.sampling,
            "training": f"SGD, eta {self.eta:g}, minibatches of {self.batch} ({self.sampling}), seed 0",
            "points": [p.to_json() for p in self.points],
            "notes": self.notes,
        }

    def text(self) -> str:
        head = (
            f"{self.model}: {self.dim} parameters, N = {self.samples} samples, B = {self.batch} ({self.sampling}); "
            f"points of an SGD run, eta {self.eta:g}"
        )
        return "\n".join([head] + [p.text() for p in self.points] + [f"note: {n}" for n in self.notes])


def _check_steps(at) -> list[int]:
    steps = [at] if isinstance(at, (int, np.integer)) else list(at)
    if not steps or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in steps):
        raise ValidationInputError(f"the steps (--at) must be integers >= 0, got {at!r}")
    return sorted({int(s) for s in steps})


def measure_noise(
    problem: Problem | str,
    batch: int,
    *,
    at=(0, 300),
    sampling: str = "replacement",
    eta: float = 0.1,
    draws: int = 256,
    coordinates: int = 128,
    n_boot: int = 200,
    level: float = 0.01,
    seed: int = 0,
    init_seed: int = 0,
    chunk: int = 256,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> NoiseReport:
    """Measure the minibatch noise of ``problem`` (a :class:`Problem` with its dataset, or a
    built-in model name) at the steps ``at`` of an SGD run (step size ``eta``, minibatches of
    ``batch`` drawn as ``sampling``, seed ``seed``); ``draws`` minibatches at ``coordinates``
    coordinates for the law, ``n_boot`` bootstrap resamples for nu's interval, test ``level``.
    ``threads``: torch threads for the per-sample gradients (default: every core).
    ``progress(done, total)`` counts training steps and bootstrap resamples."""
    from .minibatch_runs import minibatch_training

    steps = _check_steps(at)
    if isinstance(problem, str):
        problem = Problem.builtin(problem, init_seed)
    n = problem.n_samples
    batch, sampling = check_batch(batch, n), check_sampling(sampling)
    for name, v, low in (
        ("draws (--draws)", draws, 2),
        ("coordinates (--coordinates)", coordinates, 1),
        ("n_boot (--boot)", n_boot, 0),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValidationInputError(f"{name} must be an integer >= {low}, got {v!r}")
    total, done = steps[-1] + len(steps) * (n_boot + 1), 0

    def tick(k: int = 1) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    x0 = problem.initial()
    run = minibatch_training(
        problem, "sgd", batch=batch, eta=eta, steps=steps[-1], seeds=[seed], sampling=sampling, record=steps,
        x0=x0, progress=tick,
    )  # fmt: skip
    if run.trajectory.diverged is not None:
        raise ValidationInputError(
            f"the SGD run diverged at step {run.trajectory.diverged['step']} (eta {eta:g}); take a smaller eta"
        )
    points = []
    with torch_threads(threads):
        for j, step in enumerate(run.record):
            sample = GradientSample.at(problem, run.params[0, j], chunk)
            rng = np.random.default_rng([seed, 7, int(step)])
            z, coords, corr = standardised_draws(sample, batch, sampling, draws=draws, coordinates=coordinates, rng=rng)
            exact = exact_kurtosis(sample, coords, batch) if sampling == "replacement" else None
            tick()
            law = fit_law(z, corr, level=level, n_boot=n_boot, seed=seed, kurtosis_exact=exact, progress=lambda: tick())
            points.append(
                NoisePoint(
                    int(step),
                    float(run.trajectory.loss[0, j]),
                    batch,
                    sampling,
                    sample.trace,
                    sample.eigenvalues(),
                    sample.effective_rank(),
                    sample.entropy_rank(),
                    sample.variance_spread(),
                    law,
                    z.ravel(),
                )
            )
    notes = []
    if not math.isclose(population_factor(n, batch, sampling), 1.0):
        notes.append(
            f"epoch sampling: Cov e = (N - B)/(N - 1) Sigma / B = {population_factor(n, batch, sampling):.4g} Sigma / B "
            "per batch; successive batches of an epoch are anti-correlated, which no Markov SDE models"
        )
    return NoiseReport(problem.name, problem.dim, n, batch, sampling, float(eta), points, notes)
