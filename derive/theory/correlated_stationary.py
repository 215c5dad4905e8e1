"""The stationary covariance under noise correlated across coordinates (reference section 9), numerically.

On f = x^T H x / 2 with the noise model of :mod:`derive.correlation` (Sigma = S S^T and the law), the SDE
of every coordinate is linearised about the minimum and the coordinates are coupled through H (drift) and
the pair covariances (diffusion), :func:`derive.linearised.linearised`: dZ = A Z dt + sqrt(B) dW. The
stationary law is Gaussian with covariance C solving A C + C A^T + B = 0; its x block ``covariance``
(d x d) gives E f = tr(H C_xx) / 2. SGD: A = -H, B = eta Sigma. SignSGD (Gaussian, and at the minimum
every elliptical law): A = -2 p(0) diag(1/sigma) H, B = eta (2/pi) asin(R) (the arcsine law, 1 on the
diagonal). RMSprop(W): A = -(D H + theta I), B = eta D Sigma D on the x block. Adam(W): the same with the
momentum kept as a state.

:data:`OPTIMIZERS` lists the optimizers this is derived and checked for; another one, or a law without a
pair expectation the optimizer needs, is refused in one line naming what is missing.
:func:`load_hessian` reads ``--hessian FILE`` (a .npy symmetric positive definite d x d matrix).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp

from ..correlation import NoiseModel, NoiseModelError, load_matrix
from ..linearised import LinearisedSystem, linearised

#: the optimizers whose linearised correlated stationary law is derived (and checked by `derive check`)
OPTIMIZERS = ("sgd", "signsgd", "rmsprop", "rmspropw", "adam", "adamw")


class HessianError(NoiseModelError):
    """A Hessian (``--hessian FILE``) that is not a symmetric positive definite d x d matrix."""


_TOLERANCE = 1e-12  # relative to the largest entry (symmetry)


def check_hessian(matrix, origin: str = "the Hessian", dim: int | None = None) -> np.ndarray:
    """``matrix`` as float64 if it is a finite, symmetric, positive definite d x d array (d = ``dim`` where
    given); else a one-line error naming what is wrong."""
    matrix = np.asarray(matrix)
    if matrix.dtype == object or not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise HessianError(f"{origin}: a Hessian must hold real numbers, got dtype {matrix.dtype}")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise HessianError(f"{origin}: a Hessian must be a square d x d array, got shape {matrix.shape}")
    d = matrix.shape[0]
    if dim is not None and d != dim:
        raise HessianError(f"{origin} is {d} x {d} but the noise covariance is {dim} x {dim}; the sizes must match")
    bad = np.argwhere(~np.isfinite(matrix))
    if len(bad):
        i, j = bad[0]
        raise HessianError(f"{origin} has a non-finite entry: [{i}, {j}] = {float(matrix[i, j])}")
    gap = np.abs(matrix - matrix.T)
    if gap.max() > _TOLERANCE * (float(np.max(np.abs(matrix))) or 1.0):
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        raise HessianError(
            f"{origin} is not symmetric: [{i}, {j}] = {float(matrix[i, j])!r} but [{j}, {i}] = {float(matrix[j, i])!r}"
        )
    matrix = (matrix + matrix.T) / 2
    low = float(np.linalg.eigvalsh(matrix)[0])
    if low <= 0:
        raise HessianError(
            f"{origin} is not positive definite: its smallest eigenvalue is {low:.6g} (the quadratic model "
            "needs a strict minimum for a stationary law)"
        )
    return matrix


def load_hessian(path: str | Path, dim: int | None = None) -> np.ndarray:
    """``--hessian FILE``: a .npy d x d array read with allow_pickle=False (data, never code), checked by
    :func:`check_hessian`."""
    origin = f"--hessian {path}"
    return check_hessian(load_matrix(path, origin, HessianError), origin, dim)


@dataclass(frozen=True)
class CorrelatedStationary:
    """The linearised stationary law of ``system`` (noise ``model``, Hessian ``hessian``): the covariance
    of all states (``state_covariance``, ordered as ``system.names``) and its x block."""

    system: LinearisedSystem
    model: NoiseModel
    hessian: np.ndarray
    numbers: Mapping[str, float]
    state_covariance: np.ndarray

    @property
    def dim(self) -> int:
        return self.system.dim

    @property
    def covariance(self) -> np.ndarray:
        """Cov(x) at stationarity, d x d."""
        return self.state_covariance[: self.dim, : self.dim]

    @property
    def expected_loss(self) -> float:
        """E f = tr(H Cov(x)) / 2 (the mean is the minimum)."""
        return float(np.trace(self.hessian @ self.covariance) / 2)

    def to_dict(self) -> dict:
        A, B = self.system.numeric()
        return {
            "optimizer": self.system.optimizer,
            "noise": self.model.law.label,
            "noise_model": self.model.origin,
            "dim": self.dim,
            "hessian": self.hessian.tolist(),
            "noise_covariance": np.asarray(self.model.covariance, dtype=float).tolist(),
            "numbers": dict(self.numbers),
            "states": self.system.names,
            "A": A.tolist(),
            "B": B.tolist(),
            "state_covariance": self.state_covariance.tolist(),
            "covariance": self.covariance.tolist(),
            "expected_loss": self.expected_loss,
        }

    def to_text(self) -> str:
        given = ", ".join(f"{k} = {v:g}" for k, v in self.numbers.items())
        width = max(len(n) for n in self.system.names)

        def matrix(m: np.ndarray, names: list[str]) -> list[str]:
            head = " " * (width + 4) + "".join(f"{n:>14s}" for n in names)
            return [head] + [
                f"    {n:>{width}s}" + "".join(f"{v:14.6g}" for v in row) for n, row in zip(names, m, strict=True)
            ]

        x_names = self.system.names[: self.dim]
        lines = [
            f"stationary covariance of {self.system.optimizer} | noise {self.model.law.label}, {self.model.origin} "
            f"| d = {self.dim}",
            "  model: f = x^T H x / 2, the SDE linearised about the minimum (reference section 9); "
            "C solves A C + C A^T + B = 0",
            f"  evaluated at {given or 'no parameter values'}",
            "  H:",
            *matrix(self.hessian, x_names),
            "  noise covariance Sigma:",
            *matrix(np.asarray(self.model.covariance, dtype=float), x_names),
            "  Cov(x) at stationarity:",
            *matrix(self.covariance, x_names),
            f"  E f = tr(H Cov(x))/2 = {self.expected_loss:.6g}   (linearised SDE)",
        ]
        return "\n".join(lines)


def correlated_stationary(
    optimizer: str,
    model: NoiseModel,
    hessian,
    numbers: Mapping[str, float],
    form: str = "full",
    hessian_origin: str = "the Hessian",
) -> CorrelatedStationary:
    """The linearised stationary law of ``optimizer`` (one of :data:`OPTIMIZERS`) under ``model`` on
    f = x^T H x / 2, H = ``hessian``, at ``numbers`` (the SDE's symbols by name: eta, rho, eps, theta, ...);
    ``hessian_origin`` names H in the one-line errors of :func:`check_hessian`."""
    name = str(optimizer)
    if name not in OPTIMIZERS:
        raise NoiseModelError(
            f"the correlated stationary covariance is derived for {', '.join(OPTIMIZERS)}, not {name}: "
            "its linearisation about the minimum under correlated noise is not available"
        )
    nu = getattr(model.law, "nu", None)
    if nu is not None and not sp.sympify(nu).is_number:
        raise NoiseModelError(
            f"the correlated stationary covariance is numeric: the {model.law.label} law needs a number for nu (--nu)"
        )
    H = check_hessian(hessian, hessian_origin, model.dim)
    system = linearised(name, model, H, dict(numbers), form)
    return CorrelatedStationary(system, model, H, dict(numbers), system.stationary_covariance())
