"""`derive check` under noise correlated across coordinates (reference section 9): the discrete optimizer's
stationary covariance on a 2-d quadratic with a full H against the linearised law of
:mod:`derive.theory.correlated_stationary`.

:class:`CorrelatedCase` is a table entry: one optimizer, one H, one noise model (every pair correlated r,
scale sigma), eta and the hyperparameters; its rows compare the simulated time-averaged x_i x_j (the
stationary covariance; the mean is the minimum) with the prediction, each with mutants that must fail:
the same derivation with r = 0 (which is also Sigma's diagonal only: the laws depend on Sigma through
its scales sigma_i and its correlation R), with H's off-diagonal dropped, and for SignSGD with the pair
covariance's (2/pi) asin(r) replaced by r. The discrete optimizer is driven by :func:`discrete_moments`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..combination import Combination
from ..correlation import NoiseModel
from ..simulate import hyperparameters, load_module
from .correlated_stationary import CorrelatedStationary, correlated_stationary
from .evaluate import parameter_values, substitute
from .montecarlo import mean_and_se
from .rows import Row, Sim

#: the step of the first optimizer step k when the bias corrections are to be 1 (t large, as the law assumes)
LATE_STEP = 10**9


def discrete_moments(
    combination: Combination,
    H: np.ndarray,
    model: NoiseModel,
    eta: float,
    hyper: dict[str, float],
    paths: int,
    burn_steps: int,
    window_steps: int,
    seed: int,
    start: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-path time averages of x_i x_j (shape (paths, d, d)) of the discrete optimizer on f = x^T H x / 2
    with correlated noise, over ``window_steps`` steps after ``burn_steps``.

    The noise model of the generated simulators is independent across coordinates (the correlated one
    is being added to them), so this drives the generated optimizer's one-step kernel directly:
    ``optimizer_step(state, g, zeta, k, p)`` (:meth:`derive.runtime.paths.Simulators.optimizer_step`,
    vectorised over paths), with the true gradient g = H x computed in NumPy, the noise
    zeta = S xi drawn by :meth:`NoiseModel.draw` from one NumPy generator seeded ``seed`` (sigma = 1 in
    the update rule: the scales are in S), and the step number k counted from :data:`LATE_STEP` so that
    Adam's bias corrections are 1. Every path starts at x = 0 and the other states at ``start`` (by
    name, shape (d,)) or the optimizer's initial values. Same seed, same numbers."""
    module = load_module(combination)
    if module.OPT_NDRAWS != 1:
        raise ValueError(f"{combination.module_name}: the update rule draws {module.OPT_NDRAWS} numbers per step")
    d = model.dim
    values = hyperparameters(combination.optimizer, eta, 1.0, hyper)
    p = np.array([values[n] for n in module.OPT_PARAMS], dtype=np.float64)
    state = np.zeros((len(module.OPT_STATE), paths, d))
    for i, name in enumerate(module.OPT_STATE[1:], start=1):
        state[i] = (start or {}).get(name, module.OPT_INITIAL[i - 1])
    rng = np.random.default_rng(seed)
    total = np.zeros((paths, d, d))
    for k in range(burn_steps + window_steps):
        x = state[0]
        module.optimizer_step(state, x @ H.T, model.draw(paths, rng), LATE_STEP + k, p)
        if k >= burn_steps:
            x = state[0]
            total += x[:, :, None] * x[:, None, :]
    return total / window_steps


@dataclass(frozen=True)
class CorrelatedCase:
    """The stationary covariance of ``combination`` (Gaussian) on f = x^T H x / 2 under noise correlated
    ``r`` across the two coordinates (scale ``sigma``) against its linearised law; one row per entry of
    ``entries`` ((i, j) of Cov(x)). Paths max(sim.paths, ``min_paths``), seed sim.seed + ``seed``; every path
    starts at the linearised law's mean (x = 0, the other states at their fixed point, e.g. Adam's v_i =
    sigma_i^2), then a burn-in of max(sim.burn, 6 relaxation times of the linearised drift) and a window of
    sim.window, in SDE time. ``arcsine_mutant``: add the mutant with r in place of (2/pi) asin(r) (SignSGD)."""

    check: str
    label: str
    combination: Combination
    H: tuple[tuple[float, ...], ...]
    r: float
    eta: float
    sigma: float = 1.0
    hyper: dict[str, float] = field(default_factory=dict)
    entries: tuple[tuple[int, int], ...] = ((0, 1),)
    arcsine_mutant: bool = False
    seed: int = 0
    min_paths: int = 0

    @property
    def hessian(self) -> np.ndarray:
        return np.array(self.H, dtype=np.float64)

    def model(self, r: float | None = None) -> NoiseModel:
        return NoiseModel.correlated(self.r if r is None else r, len(self.H), self.sigma)

    def law(self, r: float | None = None, hessian: np.ndarray | None = None) -> CorrelatedStationary:
        numbers = parameter_values(self.combination.optimizer, self.eta, None, self.hyper)
        H = self.hessian if hessian is None else hessian
        return correlated_stationary(self.combination.optimizer, self.model(r), H, numbers, self.combination.form)

    def mutants(self) -> dict[str, np.ndarray]:
        """The wrong laws' covariances by name."""
        out = {
            "r = 0 (Sigma's diagonal only)": self.law(r=0.0).covariance,
            "H's off-diagonal dropped": self.law(hessian=np.diag(np.diag(self.hessian))).covariance,
        }
        if self.arcsine_mutant:
            # the pair covariance (2/pi) asin(r') equals r exactly at r' = sin(pi r / 2)
            out["r in place of (2/pi) asin(r)"] = self.law(r=math.sin(math.pi * self.r / 2)).covariance
        return out

    def rows(self, sim: Sim) -> list[Row]:
        t0 = time.perf_counter()
        law = self.law()
        A, _ = law.system.numeric()
        relaxation = 1.0 / float(np.min(-np.linalg.eigvals(A).real))
        burn = max(sim.burn, 6.0 * relaxation)
        model = self.model()
        start = {
            name: np.array([float(substitute(value, {**law.numbers, "sigma": s})) for s in model.scales])
            for name, value in law.system.fixed_point.items()
            if name != "x"
        }
        moments = discrete_moments(
            self.combination,
            self.hessian,
            model,
            self.eta,
            self.hyper,
            max(sim.paths, self.min_paths),
            int(math.ceil(burn / self.eta)),
            int(math.ceil(sim.window / self.eta)),
            sim.seed + self.seed,
            start,
        )
        wrong = self.mutants()
        rows = []
        for i, j in self.entries:
            estimate, se = mean_and_se(moments[:, i, j])
            rows.append(
                Row(
                    f"{self.label}: stationary Cov(x{i + 1}, x{j + 1})",
                    f"C[{i},{j}] of A C + C A^T + B = 0 (linearised, correlated noise)",
                    float(law.covariance[i, j]),
                    estimate,
                    se,
                    time.perf_counter() - t0 if not rows else 0.0,
                    f"r={self.r}, eta={self.eta}, H={[list(h) for h in self.H]}; discrete optimizer driven step by "
                    "step with correlated draws",
                    mutants={name: float(c[i, j]) for name, c in wrong.items()},
                )
            )
        return rows
