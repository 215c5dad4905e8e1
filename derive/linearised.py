"""The linearised d-dimensional SDE on f = x^T H x / 2 under correlated noise (reference section 9).

About the minimum (x = 0, g = H x = 0, the auxiliary states at the zeros of their drifts, t -> oo so that
the bias corrections gamma -> 1) the SDE of every coordinate is linearised as in
:func:`derive.theory.quadratic.linearize` (per coordinate, curvature lambda): its Jacobian is linear in
lambda, A_1(lambda) = lambda A_g + A_0, because the drift of coordinate i sees x only through g_i = (H x)_i
and through x_i itself (weight decay). With a full H the state vector (s, i) (state s of coordinate i,
index s d + i) has

    A[(s, i), (x, j)] = A_g[s, x] H_ij + A_0[s, x] 1[i = j],   A[(s, i), (t, j)] = A_1[s, t] 1[i = j]  (t != x),
    B[(s, i), (t, i)] = (G G^T)[s, t] with sigma = sigma_i,    B[(s, i), (t, j)] = pair (s, t) at r = R_ij (i != j),

the pair covariances of :func:`derive.pairs.derive_pairs` taken at the minimum (``at``: g = 0 and the
fixed point, where an elliptical law's sign x sign pair is its arcsine value). The stationary covariance
C solves A C + C A^T + B = 0. SGD: A = -H, B = eta Sigma. SignSGD (Gaussian): A = -sqrt(2/pi) diag(1/sigma) H,
B = eta (2/pi) asin(R) (1 on the diagonal). RMSprop(W): A = -(D H + theta I), B = eta D Sigma D on the x block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import symbols as S
from .correlation import NoiseModel, NoiseModelError
from .pairs import derive_pairs
from .theory.quadratic import curvature, linear_law


@dataclass(frozen=True)
class LinearisedSystem:
    """dZ = A Z dt + sqrt(B) dW for Z = the deviations of all d coordinates' states from the minimum,
    ordered state-major (``names``: x_1..x_d, then m_1..m_d, ...)."""

    optimizer: str
    states: tuple[str, ...]
    dim: int
    A: sp.Matrix
    B: sp.Matrix
    fixed_point: Mapping[str, sp.Expr]

    @property
    def names(self) -> list[str]:
        return [f"{s}_{i + 1}" for s in self.states for i in range(self.dim)]

    def numeric(self) -> tuple[np.ndarray, np.ndarray]:
        """A and B as float64 arrays (every parameter given a value)."""
        free = sorted({s.name for M in (self.A, self.B) for s in M.free_symbols})
        if free:
            raise NoiseModelError(
                f"the linearised system of {self.optimizer} still depends on {', '.join(free)}; give their values"
            )
        return np.array(self.A.evalf(), dtype=np.float64), np.array(self.B.evalf(), dtype=np.float64)

    def stationary_covariance(self) -> np.ndarray:
        """C with A C + C A^T + B = 0 (scipy.linalg.solve_continuous_lyapunov); A must be stable."""
        from scipy.linalg import solve_continuous_lyapunov

        A, B = self.numeric()
        if np.max(np.linalg.eigvals(A).real) >= 0:
            raise NoiseModelError(
                f"the linearised drift of {self.optimizer} at the minimum is not stable: no stationary law"
            )
        C = solve_continuous_lyapunov(A, -B)
        return (C + C.T) / 2


def linearised(
    optimizer: str,
    model: NoiseModel,
    hessian,
    values: Mapping[str, float] | None = None,
    form: str = "full",
) -> LinearisedSystem:
    """A and B of the module docstring for ``optimizer`` under ``model`` (its law and Sigma; numeric or
    symbolic) on f = x^T H x / 2, H = ``hessian`` (d x d, numeric or SymPy). ``values`` gives numbers for
    the SDE's parameters by name (eta, rho, rho1, rho2, eps, theta, beta1, ...); the rest stay symbols."""
    H = sp.Matrix(hessian)
    d = model.dim
    if H.shape != (d, d):
        raise NoiseModelError(f"the Hessian is {H.shape[0]} x {H.shape[1]} but the noise model has d = {d}")
    if not H.is_symmetric():
        raise NoiseModelError("the Hessian must be symmetric")
    law = model.law
    one = linear_law(optimizer, law, "paper", form).model  # per coordinate, curvature lambda
    sde = one.sde
    states = sde.state_names
    n = len(states)
    x = sde.state[0]
    at = {"g": 0, **{s.name: v for s, v in one.fixed_point.items()}}
    pairs = derive_pairs(optimizer, law, "paper", form, at=at)
    gammas = {g: sp.limit(v, S.t, sp.oo) for g, v in pairs.time_functions.items()}
    scales, R = model.scales, model.correlation
    A = sp.zeros(n * d, n * d)
    B = sp.zeros(n * d, n * d)
    A_g = one.A.applyfunc(lambda e: sp.diff(e, curvature))
    A_0 = one.A.applyfunc(lambda e: e.subs(curvature, 0))
    for p in range(n):
        for q in range(n):
            if q > 0 and A_g[p, q] != 0:
                raise NoiseModelError(
                    f"the linearised drift of {sde.optimizer} couples {states[p]} to {states[q]} through the curvature"
                )
    for i in range(d):
        own = {S.sigma: scales[i]}
        for p in range(n):
            for q in range(n):
                B[p * d + i, q * d + i] = one.B[p, q].xreplace(own)
                if q > 0:
                    A[p * d + i, q * d + i] = one.A[p, q].xreplace(own)
                    continue
                A[p * d + i, i] += A_0[p, 0].xreplace(own)
                for j in range(d):
                    A[p * d + i, j] += A_g[p, 0].xreplace(own) * H[i, j]
    for i in range(d):
        for j in range(d):
            if i == j:
                continue
            coords = {
                sp.Symbol("sigma_i", positive=True): scales[i],
                sp.Symbol("sigma_j", positive=True): scales[j],
                pairs.r: R[i, j],
            }
            for p in range(n):
                for q in range(n):
                    entry = pairs.entries[(states[p], states[q])].xreplace(gammas)
                    B[p * d + i, q * d + j] = entry.xreplace(coords)
    numbers = {s: values[s.name] for M in (A, B) for s in M.free_symbols if values and s.name in values}
    A, B = A.xreplace(numbers), B.xreplace(numbers)
    simplify = model.is_symbolic or bool(A.free_symbols | B.free_symbols)
    if simplify:
        A, B = A.applyfunc(sp.simplify), B.applyfunc(sp.simplify)
    point = {"x": sp.Integer(0), **{s.name: v for s, v in one.fixed_point.items() if s != x}}
    return LinearisedSystem(sde.optimizer, tuple(states), d, A, B, point)
