"""SGD on a full Hessian: the one-off check ``sgd-full-h`` (not a case of the table: it records
the paths to estimate a covariance, on a user landscape).

C solves H C + C H = eta Sigma (derive.theory.stationary.sgd_full_matrix); E f = eta tr(Sigma)/4
does not depend on H, the off-diagonal covariance does. Mutants: sigma doubled, H's off-diagonal
dropped.
"""

from __future__ import annotations

import time

import numpy as np

from ..combination import Combination
from ..simulate import full_quadratic
from ..symbols import eta as ETA
from .montecarlo import mean_and_se, stationary_run
from .rows import Row, Sim
from .stationary import sgd_full_matrix


def _loss_per_path(path: np.ndarray, H: np.ndarray) -> np.ndarray:
    """x^T H x / 2 at every recorded step and path ([R, N, d] -> [R, N]), summed term by term
    (0.5 x_i H_ij x_j over i, then j), as the user landscape this check used to run computed it."""
    acc = np.zeros(path.shape[:2])
    for i in range(H.shape[0]):
        for j in range(H.shape[1]):
            acc += 0.5 * path[..., i] * H[i, j] * path[..., j]
    return acc


def check_sgd_full_matrix(sim: Sim) -> list[Row]:
    """SGD on a full H with Sigma = sigma^2 I: C solves H C + C H = eta Sigma, E f = eta tr(Sigma)/4;
    here C = eta sigma^2 H^-1 / 2, and the off-diagonal covariance is checked too."""
    t0, eta, sigma = time.perf_counter(), 0.002, 1.0
    H = np.array([[2.0, 0.8], [0.8, 1.0]])
    result = sgd_full_matrix(2)

    def evaluate(h: np.ndarray, s: float):
        numbers = {
            **{result.H[i, j]: h[i, j] for i in range(2) for j in range(2)},
            **{result.Sigma[i, j]: (s**2 if i == j else 0.0) for i in range(2) for j in range(2)},
            ETA: eta,
        }
        return np.array(result.covariance.xreplace(numbers).evalf(), dtype=float), float(
            result.expected_loss.xreplace(numbers)
        )

    cov, loss_pred = evaluate(H, sigma)
    diagonal_cov, _ = evaluate(np.diag(np.diag(H)), sigma)
    _, doubled_loss = evaluate(H, 2 * sigma)
    burn = max(sim.burn, 6.0 / float(np.linalg.eigvalsh(H).min()))
    r = stationary_run("optimizer", Combination("sgd"), full_quadratic(H), eta, sigma, sim, burn, keep=True)
    loss_estimate, loss_se = mean_and_se(_loss_per_path(r.path, H).mean(axis=0))
    cross, cross_se = mean_and_se((r.path[..., 0] * r.path[..., 1]).mean(axis=0))  # time-averaged x1 x2 per path
    return [
        Row(
            "SGD full H [[2,.8],[.8,1]], Sigma = I: stationary loss",
            str(result.expected_loss),
            loss_pred,
            loss_estimate,
            loss_se,
            time.perf_counter() - t0,
            "E f independent of H",
            series="SGD full H",
            mutants={"sigma doubled": doubled_loss},
        ),
        Row(
            "SGD full H: stationary Cov(x1, x2)",
            "C[0,1] of H C + C H = eta Sigma",
            float(cov[0, 1]),
            cross,
            cross_se,
            0.0,
            series="SGD full H",
            mutants={"off-diagonal of H dropped": float(diagonal_cov[0, 1])},
        ),
    ]
