"""The fidelity of an SDE to its optimizer: paired differences, with a standard error and a BCa interval.

A validation runs the optimizer and the SDE on the same seeds (networks) or paths (quadratic), and
couples them (the SDE's first Brownian motion is driven by the optimizer's noise), so run i of both
shares its randomness. With L(i, k) the loss of run i at recorded step k and D(i, k) =
L_sde(i, k) - L_opt(i, k) the paired difference,

    fidelity = mean over k of |mean_i D(i, k)| / |mean_i L_opt(i, k)|,

the mean relative gap of the mean loss (the mean of the paired differences equals the difference of
the means; steps where a mean is not finite, after a divergence, are left out). Its standard error
and 95% interval come from ``scipy.stats.bootstrap`` over the runs i, resampled in pairs (BCa;
percentile where BCa is degenerate, e.g. with very few seeds). Coupling makes D small and smooth
across i, so a handful of seeds resolves what independent runs cannot: the standard error of a
mean of paired differences is that of D, not of L. :func:`difference` compares two SDEs coupled to
the same optimizer runs (a paired difference of fidelities, resolved when its interval excludes 0).
Applied to an independent replicate of the optimizer (not coupled), the same number is the Monte
Carlo floor of uncoupled runs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.stats


@dataclass
class Fidelity:
    value: float
    se: float
    low: float
    high: float
    steps_used: int
    method: str = "BCa"  #: how the interval was made: BCa, percentile, jackknife-t or none

    def to_json(self) -> dict:
        f = lambda v: None if not math.isfinite(v) else round(float(v), 6)  # noqa: E731
        return {
            "value": f(self.value),
            "se": f(self.se),
            "ci95": [f(self.low), f(self.high)],
            "steps_used": self.steps_used,
            "interval": self.method,
        }

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        return f"{self.value:.4f} +- {self.se:.4f} [{self.low:.4f}, {self.high:.4f}]"


def relative_gap(opt_mean: np.ndarray, sde_mean: np.ndarray) -> tuple[float, int]:
    """mean over steps of |sde - opt| / |opt| where both are finite and opt != 0, and the step count."""
    ok = np.isfinite(opt_mean) & np.isfinite(sde_mean) & (np.abs(opt_mean) > 0)
    if not ok.any():
        return math.nan, 0
    return float(np.mean(np.abs(sde_mean[ok] - opt_mean[ok]) / np.abs(opt_mean[ok]))), int(ok.sum())


#: below this many runs the bootstrap distribution is too coarse (3 seeds: 10 distinct resamples)
#: and the interval is a jackknife standard error with a Student-t quantile instead
JACKKNIFE_BELOW = 10


def _interval(statistic, n: int, n_boot: int, seed: int) -> tuple[float, float, float, str]:
    """(se, low, high, method) of ``statistic(indices)`` over the n runs, resampled together in
    every array (paired): BCa (percentile where BCa is degenerate) from ``n_boot`` resamples, or
    with fewer than :data:`JACKKNIFE_BELOW` runs the jackknife standard error and a t interval."""
    if n < 2 or n_boot <= 0:
        return math.nan, math.nan, math.nan, "none"
    if n < JACKKNIFE_BELOW:
        with np.errstate(invalid="ignore", divide="ignore"):
            full = statistic(np.arange(n))
            loo = np.array([statistic(np.delete(np.arange(n), i)) for i in range(n)])
        if not np.all(np.isfinite(loo)):
            return math.nan, math.nan, math.nan, "none"
        se = float(math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2)))
        half = float(scipy.stats.t.ppf(0.975, n - 1)) * se
        return se, full - half, full + half, "jackknife-t"
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore")  # degenerate resamples are handled below
            try:
                res = scipy.stats.bootstrap(
                    (np.arange(n),),
                    statistic,
                    vectorized=False,
                    n_resamples=n_boot,
                    method=method,
                    random_state=np.random.default_rng([seed, 99]),
                )
            except ValueError:
                continue
        low, high = res.confidence_interval
        if math.isfinite(low) and math.isfinite(high) and high > low:
            return float(res.standard_error), float(low), float(high), method
    return math.nan, math.nan, math.nan, "none"


def fidelity(opt_loss: np.ndarray, sde_loss: np.ndarray, n_boot: int = 1000, seed: int = 0) -> Fidelity:
    """``opt_loss[runs, steps]`` and ``sde_loss[runs, steps]`` (run i of both paired) -> :class:`Fidelity`."""
    opt_loss, sde_loss = np.asarray(opt_loss, float), np.asarray(sde_loss, float)
    if opt_loss.shape != sde_loss.shape:
        raise ValueError(f"paired runs need the same shape, got {opt_loss.shape} and {sde_loss.shape}")
    with np.errstate(invalid="ignore"):
        value, used = relative_gap(opt_loss.mean(axis=0), sde_loss.mean(axis=0))
    if not math.isfinite(value):
        return Fidelity(value, math.nan, math.nan, math.nan, used, "none")

    def stat(idx):
        return relative_gap(opt_loss[idx].mean(axis=0), sde_loss[idx].mean(axis=0))[0]

    se, low, high, method = _interval(stat, opt_loss.shape[0], n_boot, seed)
    return Fidelity(value, se, low, high, used, method)


@dataclass
class Difference:
    """fidelity(a) - fidelity(b) of two SDEs coupled to the same optimizer runs."""

    a: str
    b: str
    value: float
    se: float
    low: float
    high: float

    @property
    def resolved(self) -> bool:
        """True when the 95% interval excludes 0."""
        return math.isfinite(self.low) and (self.low > 0 or self.high < 0)

    def to_json(self) -> dict:
        f = lambda v: None if not math.isfinite(v) else round(float(v), 6)  # noqa: E731
        return {
            "a": self.a,
            "b": self.b,
            "value": f(self.value),
            "se": f(self.se),
            "ci95": [f(self.low), f(self.high)],
            "resolved": self.resolved,
        }


def difference(opt_loss, loss_a, loss_b, a: str = "a", b: str = "b", n_boot: int = 1000, seed: int = 0) -> Difference:
    """The paired difference of two fidelities (all three runs share run i), with a BCa interval."""
    opt_loss, loss_a, loss_b = (np.asarray(v, float) for v in (opt_loss, loss_a, loss_b))

    def stat(idx):
        o = opt_loss[idx].mean(axis=0)
        return relative_gap(o, loss_a[idx].mean(axis=0))[0] - relative_gap(o, loss_b[idx].mean(axis=0))[0]

    with np.errstate(invalid="ignore"):
        value = stat(np.arange(opt_loss.shape[0]))
    se, low, high, _ = _interval(stat, opt_loss.shape[0], n_boot, seed) if math.isfinite(value) else (math.nan,) * 4
    return Difference(a, b, float(value), se, low, high)
