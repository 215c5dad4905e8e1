"""Stationary laws of the SDEs on the quadratic model, derived from the SDE objects.

For f = lambda x^2/2 per coordinate the SDE is linearised about its fixed point (see
:mod:`derive.theory.quadratic`); its stationary law is Gaussian with mean S* and the covariance C
of the Lyapunov equation A C + C A^T + B = 0, and the expected loss is E f = lambda C_xx / 2 per
coordinate. Extras, each derived:

* one-state SDEs whose diffusion depends on x (SignSGD): the second-order diffusion correction,
  B(x) = B0 (1 - b x^2) + o(x^2), and the moment equation 0 = -2 a E X^2 + B0 (1 - b E X^2);
* momentum states (updated linearly in the gradient): Var X with the momentum kept next to its
  limit rho -> oo (momentum eliminated: the published form of the result) and their ratio;
* the Fokker-Planck check: the Gaussian density N(S*, C) makes the stationary Fokker-Planck
  operator of the linearised SDE vanish;
* for SGD, the full-matrix case: H C + C H = eta Sigma with E f = tr(H C)/2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

from .. import symbols as S
from ..engine import derive_sde
from ..errors import InfiniteMomentError
from ..optimizers import get_optimizer
from .quadratic import LinearModel, NoStationaryLawError, curvature, is_hurwitz, linearize, lyapunov, on_quadratic


@dataclass
class StationaryResult:
    """Stationary mean, covariance and expected loss (per coordinate) of one SDE."""

    model: LinearModel
    covariance: sp.Matrix
    var_x: sp.Expr
    expected_loss: sp.Expr
    second_order: "sp.Expr | SecondOrder | None" = None  # E X^2 with the second-order corrections
    momentum: list[tuple[sp.Symbol, sp.Expr, sp.Expr]] = field(default_factory=list)  # (rate, limit, factor)
    fokker_planck: bool | None = None

    @property
    def sde(self):
        return self.model.sde

    def to_text(self) -> str:
        sde, m = self.sde, self.model
        lines = [f"stationary law of {sde.optimizer} | noise {sde.noise} | regime {sde.regime} | form {sde.form}",
                 f"  model: f = {m.curvature}*x**2/2 per coordinate (g = {m.curvature}*x), t -> oo",
                 "  mean: " + ", ".join(f"{k} = {v}" for k, v in m.fixed_point.items()),
                 f"  linearised drift A = {m.A.tolist()}",
                 f"  B = G G^T at the mean = {m.B.tolist()}",
                 f"  covariance C (A C + C A^T + B = 0) = {self.covariance.tolist()}",
                 f"  Var x = {self.var_x}",
                 f"  E f = {self.expected_loss}   (per coordinate)"]
        if self.second_order is not None:
            lines.append(f"  E x^2 to second order (diffusion, and drift under a Gaussian closure) = {self.second_order}")
        for rate, limit, factor in self.momentum:
            lines.append(f"  momentum kept: Var x = {self.var_x}")
            lines.append(f"  momentum eliminated ({rate} -> oo, published form): Var x = {limit}")
            lines.append(f"  factor kept / eliminated = {factor}")
        if self.fokker_planck is not None:
            lines.append("  Fokker-Planck check of the Gaussian N(mean, C): "
                         + ("the stationary operator vanishes" if self.fokker_planck else "FAILED"))
        return "\n".join(lines)


def _second_order(model: LinearModel) -> sp.Expr | None:
    """E X^2 of a one-state SDE to second order in x, under a Gaussian closure.

    Drift b(x) = -a x + c x|x| + O(x^3) (odd; c != 0 when s(y) is not smooth at 0, e.g. Laplace)
    and diffusion B(x) = B0 (1 - b x^2) + o(x^2). The stationary moment equation
    0 = 2 E[X b(X)] + E[B(X)] with E|X|^3 = 2 sqrt(2/pi) (E X^2)^(3/2) gives, for u = sqrt(E X^2),
    4 c sqrt(2/pi) u^3 - (2a + B0 b) u^2 + B0 = 0; for c = 0, E X^2 = B0/(2a + B0 b). Returned as
    an expression when c = 0 and as the CRootOf-free root of the cubic otherwise (a Piecewise-free
    ``sympy.Expr`` in u is kept in ``cubic``).
    """
    if len(model.sde.state) != 1:
        return None
    x = model.sde.state[0]
    drift, cov = on_quadratic(model.sde, model.curvature)
    b_x = cov[0, 0]
    if not b_x.has(x):
        return None
    b0 = model.B[0, 0]
    h = sp.Symbol("h", positive=True)
    b = sp.simplify(sp.limit((b0 - b_x.xreplace({x: h})) / (b0 * h**2), h, 0))
    a = -model.A[0, 0]
    c = sp.simplify(sp.limit((drift[0].xreplace({x: h}) + a * h) / h**2, h, 0))
    m2 = sp.Symbol("m2", positive=True)
    if c == 0:
        return sp.factor(sp.solve(sp.Eq(-2 * a * m2 + b0 * (1 - b * m2), 0), m2)[0])
    return SecondOrder(a, b, c, b0)


@dataclass(frozen=True)
class SecondOrder:
    """Root u > 0 of 4 c sqrt(2/pi) u^3 - (2a + B0 b) u^2 + B0 = 0; E X^2 = u^2 (see _second_order)."""

    a: sp.Expr
    b: sp.Expr
    c: sp.Expr
    b0: sp.Expr

    def value(self, numbers: dict) -> float:
        coeffs = [4 * self.c * sp.sqrt(2 / sp.pi), -(2 * self.a + self.b0 * self.b), 0, self.b0]
        poly = [float(sp.sympify(k).xreplace(numbers)) for k in coeffs]
        import numpy as np

        linear = math.sqrt(-poly[3] / poly[1])  # the c = 0 root
        roots = [r.real for r in np.roots(poly) if abs(r.imag) < 1e-12 and r.real > 0]
        return min(roots, key=lambda r: abs(r - linear)) ** 2

    def __str__(self) -> str:
        return (f"u^2 with 4*({self.c})*sqrt(2/pi)*u^3 - (2*({self.a}) + ({self.b0})*({self.b}))*u^2 + {self.b0} = 0")


def fokker_planck_vanishes(model: LinearModel, cov: sp.Matrix) -> bool:
    """Whether N(S*, C) zeroes -div(A (s - S*) p) + 1/2 sum_ij d_i d_j (B_ij p) (random states only).

    The operator is applied to p = exp(-s^T P s / 2) with a generic symmetric P; L*p / p is then a
    polynomial in s whose coefficients must vanish at P = C^-1.
    """
    idx = [i for i in range(cov.shape[0]) if cov[i, i] != 0]
    n = len(idx)
    shift = sp.symbols(f"s0:{n}", real=True)
    A, B, C = model.A.extract(idx, idx), model.B.extract(idx, idx), cov.extract(idx, idx)
    P = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"P_{min(i, j)}{max(i, j)}"))
    s_vec = sp.Matrix(shift)
    log_p = -(s_vec.T * P * s_vec)[0, 0] / 2

    def d(f: sp.Expr, i: int) -> sp.Expr:  # d_i (f p) / p
        return sp.diff(f, shift[i]) + f * sp.diff(log_p, shift[i])

    flux = A * s_vec
    operator = -sum(d(flux[i], i) for i in range(n)) + sum(d(d(B[i, j], j), i) for i in range(n) for j in range(n)) / 2
    polynomial = sp.Poly(sp.expand(operator), *shift)
    inverse = C.inv()
    values = {P[i, j]: inverse[i, j] for i in range(n) for j in range(i, n)}
    return all(sp.cancel(c.xreplace(values)) == 0 for c in polynomial.coeffs())


def stationary(optimizer, noise="gaussian", form: str = "full", nu=None, lam: sp.Expr = curvature,
               regime: str = "paper") -> StationaryResult:
    """Derive the stationary law of ``optimizer``'s SDE on f = lam x^2/2 (per coordinate)."""
    spec = get_optimizer(optimizer)
    try:
        sde = derive_sde(spec, noise, regime, form, nu=nu)
    except InfiniteMomentError as exc:
        raise NoStationaryLawError(f"{spec.name} has no stationary law with finite variance under this noise: {exc}") from None
    model = linearize(sde, lam)
    if is_hurwitz(model.A) is False:
        raise NoStationaryLawError(f"the linearised drift of {spec.name} at the minimum is unstable (A = {model.A.tolist()})")
    cov = lyapunov(model.A, model.B)
    var_x = sp.factor(sp.simplify(cov[0, 0]))
    result = StationaryResult(model, cov, var_x, sp.factor(model.curvature * var_x / 2))
    result.second_order = _second_order(model)
    momentum_states = [sde.state[i] for i, n in enumerate(sde.state_names) if i and spec.grad_degree(n) == 1]
    for state in momentum_states:
        rates = [s for s in sde.drift_of(state.name).free_symbols if s.name.startswith("rho")]
        for rate in rates:
            limit = sp.factor(sp.limit(var_x, rate, sp.oo))
            if limit.is_finite and limit != 0:
                result.momentum.append((rate, limit, sp.factor(sp.cancel(var_x / limit))))
    result.fokker_planck = fokker_planck_vanishes(model, cov)
    return result


@dataclass
class FullMatrixResult:
    H: sp.Matrix
    Sigma: sp.Matrix
    covariance: sp.Matrix
    expected_loss: sp.Expr

    def to_text(self) -> str:
        return "\n".join([
            f"SGD with full H and Sigma (d = {self.H.shape[0]}): dX = -H X dt + sqrt(eta Sigma) dW",
            f"  C solves H C + C H = eta Sigma: C = {self.covariance.tolist()}",
            f"  E f = tr(H C)/2 = {self.expected_loss}"])


def sgd_full_matrix(d: int = 2) -> FullMatrixResult:
    """SGD on f = x^T H x / 2 with noise covariance Sigma (symmetric, symbolic, d x d).

    The per-coordinate SGD SDE has drift -g and G G^T = eta Var(g~); with a full noise
    covariance the same derivation gives G G^T = eta Sigma, and the drift is -H x.
    """
    sde = derive_sde("sgd")
    drift_coefficient = sp.diff(sde.drift[0], S.g)
    per_variance = sp.simplify(sde.covariance()[0, 0] / S.sigma**2)  # eta
    H = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"h_{min(i, j) + 1}{max(i, j) + 1}", real=True))
    Sigma = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"Sigma_{min(i, j) + 1}{max(i, j) + 1}", real=True))
    C = lyapunov(drift_coefficient * H, per_variance * Sigma)
    loss = sp.factor(sp.simplify((H * C).trace() / 2))
    return FullMatrixResult(H, Sigma, C.applyfunc(sp.simplify), loss)
