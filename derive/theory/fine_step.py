"""A one-state SDE simulated with a fine step, independently of the generated simulators.

Euler-Maruyama, X_{n+1} = X_n + b(X_n) dt + sqrt(D(X_n) dt) xi_n, with dt = eta / r (r substeps per
optimizer step), on the SDE's own lambdified drift and diffusion (:func:`derive.theory.exact.coefficients`),
in NumPy over N paths at once. Its weak error is O(dt): on the linearised SDE dX = -a X dt + sqrt(B0) dW
the stationary variance of the scheme is B0 / (2a - a^2 dt), a relative bias of about a dt / 2,
which :func:`euler_bias` reports so a check can print it beside its resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..sde import SDE
from .exact import coefficients


@dataclass(frozen=True)
class FineRun:
    """Time-averaged E X^2 over paths after a burn-in, and its Monte Carlo standard error."""

    second_moment: float
    se: float
    dt: float
    steps: int
    paths: int


def euler_bias(rate: float, dt: float) -> float:
    """Relative bias a dt / (2 - a dt) of the Euler stationary variance of dX = -a X dt + sqrt(B) dW."""
    return rate * dt / (2 - rate * dt)


def simulate_second_moment(
    sde: SDE,
    lam: float,
    numbers: dict[str, float],
    *,
    dt: float,
    burn: float,
    window: float,
    paths: int,
    seed: int,
    x0_scale: float,
    samples: int = 200,
) -> FineRun:
    """E X^2 of the stationary one-state ``sde`` on f = lam x^2/2, by Euler-Maruyama with step ``dt``.

    Each path averages x^2 over ``samples`` equally spaced times in the window after ``burn``
    (SDE time); the estimate is the mean of the path averages, SE = their sd / sqrt(paths).
    """
    b, d = coefficients(sde, lam, numbers, vectorized=True)
    rng = np.random.default_rng([int(seed), 19])
    x = x0_scale * rng.standard_normal(paths)
    start = int(math.ceil(burn / dt))
    steps = start + int(math.ceil(window / dt))
    every = max(1, (steps - start) // samples)
    total = np.zeros(paths)
    count = 0
    root = math.sqrt(dt)
    for n in range(1, steps + 1):
        diffusion = np.sqrt(np.maximum(d(x), 0.0))
        x = x + b(x) * dt + diffusion * root * rng.standard_normal(paths)
        if n > start and (n - start) % every == 0:
            total += x * x
            count += 1
    per_path = total / count
    return FineRun(float(per_path.mean()), float(per_path.std(ddof=1) / math.sqrt(paths)), dt, steps, paths)
