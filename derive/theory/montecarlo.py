"""Monte Carlo estimates for `derive check`: stationary losses of the discrete optimizers.

Stationary estimates average each path's loss over recorded steps after a burn-in, then over
independent paths: SE = sd(path averages) / sqrt(N). The burn-in is at least six relaxation
times of the linearised SDE, so the start is forgotten.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..combination import Combination
from ..simulate import module_dir_for, quadratic, random_start, run
from .evaluate import substitute
from .exact import exact_stationary
from .quadratic import curvature
from .rows import Sim


def record_steps(start: int, steps: int, count: int = 12) -> np.ndarray:
    return np.unique(np.linspace(start, steps, count).round().astype(np.int64))


def stationary_loss(
    optimizer: str,
    lam: list[float],
    eta: float,
    sigma: float,
    sim: Sim,
    noise: str = "gaussian",
    nu=None,
    hyper: dict | None = None,
    burn: float | None = None,
    window: float | None = None,
) -> tuple[float, float]:
    """Mean stationary loss of the discrete optimizer on sum lam x^2/2, and its standard error."""
    combo = Combination(optimizer, noise, nu=nu)
    start = int(math.ceil((burn if burn is not None else sim.burn) / eta))
    steps = start + int(math.ceil((window if window is not None else sim.window) / eta))
    x0 = random_start(sim.paths, len(lam), sim.seed, scale=0.1)
    r = run(
        "optimizer",
        combo,
        x0,
        eta=eta,
        sigma=sigma,
        steps=steps,
        seed=sim.seed,
        landscape=quadratic(lam),
        hyper=hyper,
        record=record_steps(start, steps),
        module_dir=module_dir_for(combo),
    )
    per_path = r.loss.mean(axis=0)
    return float(per_path.mean()), float(per_path.std(ddof=1) / math.sqrt(per_path.size))


def relaxation_time(result, lam: list[float], **numbers: float) -> float:
    """1 / the slowest decay rate of the linearised drift A over the coordinates (SDE time)."""
    slowest = math.inf
    for lam_j in lam:
        A = np.array(substitute(result.model.A.xreplace({curvature: lam_j}), numbers).evalf(), dtype=float)
        slowest = min(slowest, float(np.min(-np.linalg.eigvals(A).real)))
    return 1.0 / slowest


def burn_in(result, lam: list[float], sim: Sim, **numbers: float) -> float:
    """Burn-in long enough to forget the start: at least sim.burn and 6 relaxation times."""
    return max(sim.burn, 6.0 * relaxation_time(result, lam, **numbers))


def linearised_loss(result, lam: list[float], **numbers: float) -> float:
    """Sum over coordinates of E f_j of the linearised SDE (Lyapunov equation)."""
    return sum(float(substitute(result.expected_loss.xreplace({curvature: sp.Float(lj)}), numbers)) for lj in lam)


def law_loss(var_x: sp.Expr, lam: list[float], **numbers: float) -> float:
    """Sum over coordinates of lam_j Var x_j / 2 for a stationary Var x expression."""
    return sum(lj / 2 * float(substitute(var_x.xreplace({curvature: sp.Float(lj)}), numbers)) for lj in lam)


def exact_loss(result, lam: list[float], **numbers: float) -> float:
    """Sum over coordinates of E f_j of the exact stationary density of a one-state SDE."""
    return sum(exact_stationary(result.sde, lj, numbers).expected_loss for lj in lam)
