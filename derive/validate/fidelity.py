"""The fidelity of an SDE to its optimizer, with a bootstrap interval over seeds.

fidelity = mean over recorded steps k of |L_sde(k) - L_opt(k)| / L_opt(k), where L(k) is the mean
loss over seeds at step k. Steps where either mean is not finite (after a divergence) are left out.
The interval resamples the seeds of both runs independently (they use independent noise), B times,
and takes the 2.5 and 97.5 percentiles; on the quadratic, where path i of every simulator starts from
the same random point, paths are resampled in pairs. Near zero the percentile interval sits above the
point estimate (|gap| is biased upward by resampling noise). Applied to an independent replicate of the optimizer, the
same number measures the Monte Carlo floor: an SDE cannot be resolved as better than that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Fidelity:
    value: float
    low: float
    high: float
    steps_used: int

    def to_json(self) -> dict:
        f = lambda v: None if not math.isfinite(v) else round(float(v), 6)  # noqa: E731
        return {"value": f(self.value), "ci95": [f(self.low), f(self.high)], "steps_used": self.steps_used}

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def relative_gap(opt_mean: np.ndarray, sde_mean: np.ndarray) -> tuple[float, int]:
    ok = np.isfinite(opt_mean) & np.isfinite(sde_mean) & (np.abs(opt_mean) > 0)
    if not ok.any():
        return math.nan, 0
    return float(np.mean(np.abs(sde_mean[ok] - opt_mean[ok]) / np.abs(opt_mean[ok]))), int(ok.sum())


def fidelity(opt_loss: np.ndarray, sde_loss: np.ndarray, n_boot: int = 1000, seed: int = 0,
             paired: bool = False) -> Fidelity:
    """``opt_loss[seeds, steps]`` and ``sde_loss[seeds', steps]`` -> :class:`Fidelity`.

    ``paired``: row i of both shares something besides the noise (on the quadratic, path i's random
    start), so rows are resampled together; otherwise each run's rows are resampled on their own."""
    opt_loss, sde_loss = np.asarray(opt_loss, float), np.asarray(sde_loss, float)
    with np.errstate(invalid="ignore"):
        value, used = relative_gap(opt_loss.mean(axis=0), sde_loss.mean(axis=0))
    if not math.isfinite(value) or n_boot <= 0:
        return Fidelity(value, math.nan, math.nan, used)
    rng = np.random.default_rng([seed, 99])
    a, b = opt_loss.shape[0], sde_loss.shape[0]
    boots = np.empty(n_boot)
    with np.errstate(invalid="ignore"):
        for i in range(n_boot):
            ia = rng.integers(0, a, a)
            ib = ia if paired and a == b else rng.integers(0, b, b)
            boots[i] = relative_gap(opt_loss[ia].mean(axis=0), sde_loss[ib].mean(axis=0))[0]
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return Fidelity(value, float(lo), float(hi), used)
