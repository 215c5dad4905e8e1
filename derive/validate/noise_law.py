"""The law of the minibatch noise: Gaussian or Student-t, by likelihood (reference section 10).

Data: z[m, i], the standardised minibatch gradient coordinates (g~_i - g_i) / sqrt(c Sigma_ii / B)
of M independently drawn minibatches m (the rows, "blocks") at k coordinates i (the columns),
pooled. Rows are independent; the coordinates of one row are not (they share the batch), so every
interval and test below resamples or calibrates by rows, never by single points.

* **Excess kurtosis** of the pool, mean(z^4) / mean(z^2)^2 - 3, with a jackknife standard error
  over rows. With replacement its exact value follows from the per-sample gradients (the mean of B
  iid draws has excess kurtosis kappa_1 / B): :func:`exact_kurtosis`. The mean of B per-sample draws
  of a t(3) law is therefore not t(3); only B = 1 keeps the per-sample law.
* **Student-t fit**: location fixed at 0 (the standardisation centres z exactly), scale s and
  degrees of freedom nu free, by maximum likelihood (SLSQP on log nu, log s with the analytic
  gradient; log density -betaln(nu/2, 1/2) - log(nu)/2 - log s - (nu + 1)/2 log(1 + z^2/(nu s^2)),
  exact for large nu). nu is bounded to [NU_MIN, NU_MAX]; NU_MAX = 1000 is a Gaussian for every
  purpose here (excess kurtosis 0.006). Its 95% interval: the percentile bootstrap over rows
  (``scipy.stats.bootstrap``, fixed seed). The scale is free so that s * t(nu) maps onto the
  project's noise laws (standard t zeta, scale sigma = s sqrt(c Sigma_ii / B)).
* **Gaussian against Student-t**: the log-likelihood ratio L = ll_t - ll_gauss >= 0 (the Gaussian
  with location 0 and free scale is the t's limit nu -> oo). Under a Gaussian law with independent
  points 2L ~ (chi2_0 + chi2_1)/2 (nu = oo is on the boundary, Self and Liang 1987). The points
  of a row are correlated, which inflates 2L by the design effect w: the t's score at nu = oo (after
  the scale's is projected out) is He4(z)/4, He4 = z^4 - 6 z^2 + 3, and for a standard Gaussian pair
  with correlation r, Cov(He4(z_i), He4(z_j)) = 24 r^4, so w = sum_{i,j} r_ij^4 / k over the k
  coordinates, computed from Sigma itself (the null's correlations; 1 for independent coordinates).
  The rule: ``law`` is ``student-t`` when 2L / w exceeds the level-``LEVEL`` quantile of
  (chi2_0 + chi2_1)/2, i.e. p = P(chi2_1 > 2L / w) / 2 < LEVEL, else ``gaussian``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

NU_MIN, NU_MAX = 0.2, 1000.0
LEVEL = 0.01


def t_loglik(z2: np.ndarray, nu: float, scale: float) -> float:
    """sum of log t-densities (location 0) at the points whose squares are ``z2``."""
    n = z2.size
    return float(
        n * (-scipy.special.betaln(nu / 2, 0.5) - 0.5 * math.log(nu) - math.log(scale))
        - (nu + 1) / 2 * np.log1p(z2 / (nu * scale * scale)).sum()
    )


def gaussian_fit(z2: np.ndarray) -> tuple[float, float]:
    """(scale, log-likelihood) of N(0, scale^2) by maximum likelihood: scale^2 = mean z^2."""
    var = float(z2.mean())
    return math.sqrt(var), -0.5 * z2.size * (math.log(2 * math.pi * var) + 1.0)


def t_fit(z2: np.ndarray, start: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """(nu, scale, log-likelihood) of the location-0 Student-t by maximum likelihood."""
    n = z2.size

    def negative(p):
        nu, s = math.exp(p[0]), math.exp(p[1])
        u = z2 / (s * s)
        log1p = np.log1p(u / nu)
        ll = n * (-scipy.special.betaln(nu / 2, 0.5) - 0.5 * math.log(nu) - p[1]) - (nu + 1) / 2 * log1p.sum()
        w = u / (nu + u)
        d_nu = n * 0.5 * (scipy.special.digamma((nu + 1) / 2) - scipy.special.digamma(nu / 2) - 1 / nu) - 0.5 * (
            log1p.sum() - (nu + 1) / nu * w.sum()
        )
        d_logs = -n + (nu + 1) * w.sum()
        return -ll / n, -np.array([d_nu * nu, d_logs]) / n

    if start is None:
        m2 = float(z2.mean())
        k = float((z2 * z2).mean() / m2**2 - 3.0)
        nu0 = min(max(4.0 + 6.0 / k, 2.5), 100.0) if k > 0 else 100.0
        start = (nu0, math.sqrt(m2 * (nu0 - 2) / nu0))
    bounds = [(math.log(NU_MIN), math.log(NU_MAX)), (None, None)]
    res = scipy.optimize.minimize(
        negative,
        [min(max(math.log(start[0]), bounds[0][0]), bounds[0][1]), math.log(start[1])],
        jac=True,
        method="SLSQP",
        bounds=bounds,
        options={"ftol": 1e-12, "maxiter": 200},
    )
    nu, scale = float(math.exp(res.x[0])), float(math.exp(res.x[1]))
    return nu, scale, t_loglik(z2, nu, scale)


def design_effect(correlation: np.ndarray) -> float:
    """w = sum_{i,j} r_ij^4 / k for the k x k correlation matrix of one row's coordinates."""
    r = np.asarray(correlation, dtype=float)
    return float(np.sum(r**4) / r.shape[0])


def pooled_kurtosis(z: np.ndarray) -> tuple[float, float]:
    """Excess kurtosis of the pool and its jackknife standard error over rows."""
    m2, m4 = (z**2).mean(axis=1), (z**4).mean(axis=1)
    M = z.shape[0]
    value = float(m4.mean() / m2.mean() ** 2 - 3.0)
    if M < 2:
        return value, math.nan
    loo = ((m4.sum() - m4) / (M - 1)) / ((m2.sum() - m2) / (M - 1)) ** 2 - 3.0
    return value, float(math.sqrt((M - 1) / M * np.sum((loo - loo.mean()) ** 2)))


@dataclass
class NoiseLaw:
    """What the fit found (module docstring)."""

    points: int
    rows: int
    kurtosis: float
    kurtosis_se: float
    nu: float
    nu_ci: tuple[float, float]
    scale: float  #: the t's scale s (z ~ s t(nu))
    gaussian_scale: float
    loglik_gaussian: float
    loglik_student_t: float
    design_effect: float
    statistic: float  #: 2 L / w
    p_value: float
    level: float
    law: str
    kurtosis_exact: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def log_likelihood_ratio(self) -> float:
        return self.loglik_student_t - self.loglik_gaussian

    def to_json(self) -> dict:
        r = lambda v: None if v is None or not math.isfinite(v) else float(v)  # noqa: E731
        return {
            "kurtosis": r(self.kurtosis),
            "kurtosis_se": r(self.kurtosis_se),
            "kurtosis_exact": r(self.kurtosis_exact),
            "nu": r(self.nu),
            "nu_ci": [r(self.nu_ci[0]), r(self.nu_ci[1])],
            "t_scale": r(self.scale),
            "gaussian_scale": r(self.gaussian_scale),
            "loglik_gaussian": r(self.loglik_gaussian),
            "loglik_student_t": r(self.loglik_student_t),
            "log_likelihood_ratio": r(self.log_likelihood_ratio),
            "design_effect": r(self.design_effect),
            "lr_statistic": r(self.statistic),
            "p_value": r(self.p_value),
            "level": self.level,
            "law": self.law,
            "values": self.points,
            "minibatches": self.rows,
            "notes": list(self.notes),
        }


def fit_law(
    z: np.ndarray,
    correlation: np.ndarray | None = None,
    *,
    level: float = LEVEL,
    n_boot: int = 200,
    seed: int = 0,
    kurtosis_exact: float | None = None,
    progress: Callable[[], None] | None = None,
) -> NoiseLaw:
    """Fit both laws to the rows of ``z`` [M, k] and recommend one (module docstring).

    ``correlation``: the k x k correlation of one row under the Gaussian null (default: the
    identity, independent coordinates); it sets the design effect of the likelihood-ratio test.
    ``progress()`` is called after each bootstrap resample.
    """
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[0] < 2 or not np.all(np.isfinite(z)):
        raise ValueError(f"z must be a finite [rows >= 2, coordinates] array, got shape {z.shape}")
    z2 = np.square(z).ravel()
    g_scale, ll_g = gaussian_fit(z2)
    nu, scale, ll_t = t_fit(z2)
    w = 1.0 if correlation is None else design_effect(correlation)
    lr = max(ll_t - ll_g, 0.0)
    statistic = 2 * lr / w
    p = 0.5 * float(scipy.stats.chi2.sf(statistic, 1)) if statistic > 0 else 1.0
    kurt, kurt_se = pooled_kurtosis(z)
    sq = np.square(z)

    def nu_of(idx):
        value = t_fit(sq[idx].ravel(), start=(nu, scale))[0]
        if progress is not None:
            progress()
        return value

    low = high = math.nan
    if n_boot > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate resample (nu at its bound) is fine here
            res = scipy.stats.bootstrap(
                (np.arange(z.shape[0]),),
                nu_of,
                vectorized=False,
                n_resamples=n_boot,
                method="percentile",
                random_state=np.random.default_rng([seed, 31]),
            )
        low, high = (float(v) for v in res.confidence_interval)
    notes = []
    if nu >= NU_MAX * (1 - 1e-6):
        notes.append(f"nu at its upper bound {NU_MAX:g}: the t fit is a Gaussian")
    return NoiseLaw(
        points=int(z2.size),
        rows=int(z.shape[0]),
        kurtosis=kurt,
        kurtosis_se=kurt_se,
        nu=nu,
        nu_ci=(low, high),
        scale=scale,
        gaussian_scale=g_scale,
        loglik_gaussian=ll_g,
        loglik_student_t=ll_t,
        design_effect=w,
        statistic=statistic,
        p_value=p,
        level=level,
        law="student-t" if p < level else "gaussian",
        kurtosis_exact=kurtosis_exact,
        notes=notes,
    )
