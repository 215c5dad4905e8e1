"""Stationary laws and the order-2 SDE: the chain, order 1, order 2, and the stationary diffusion
correction (reference section 8), on the diagonal quadratic f = lambda x^2/2 per coordinate.

Weak order 2 is a finite-horizon statement. At stationarity the fluctuations are O(sqrt(eta)), so
the stationary variance is itself O(eta) and an O(eta^2) error is a relative O(eta) error: the
order-2 drift does not improve it. For a chain that is linear with additive noise on the quadratic,
S' = A S + c + B zeta (SGD, EMA heavy-ball momentum, SGD with weight decay), everything is exact:

* the chain's stationary covariance solves the discrete Lyapunov equation C = A C A^T + m2 B B^T
  (about the fixed point S* = (I - A)^-1 c), m2 = E[zeta^2];
* an SDE with linear drift M (S - S*) and constant diffusion D has M C + C M^T + D = 0;
* the diffusion that makes the order-2 SDE's stationary covariance the chain's is therefore
  D_stat = -(M C_chain + C_chain M^T), an exact function of eta; its expansion through eta^2 is the
  named option ``stationary`` (SGD: D = eta sigma^2 (1 + eta lambda), where the finite-horizon
  order-2 SDE keeps eta sigma^2).

Where they disagree: the finite-horizon SDE matches the chain's one-step moments (Cov[Delta] =
eta^2 sigma^2 exactly for SGD); D_stat does not (eta^2 sigma^2 (1 + eta lambda)): it is not a
property of one step but of the whole invariant law, it depends on the curvature (for a full
Hessian H it is eta Sigma + (eta^2/2)(H Sigma + Sigma H), not diagonal across coordinates, so it
has no per-coordinate form away from the diagonal quadratic), and it is derived here only where
the chain is linear. Both are weak order 2 on finite horizons (their one-step second moments
differ at O(eta^3)). Chains that are not linear on the quadratic (RMSprop, Adam, SignSGD: 1/sqrt(v)
multiplies the noise, sign(.) is not affine) are refused: their stationary law at relative O(eta)
needs the nonlinear moment hierarchy, which is not derived.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import sympy as sp

from .. import symbols as S
from ..engine import derive_sde
from ..errors import DeriveError
from ..noise import get_noise
from ..optimizers import get_optimizer
from ..order2 import CURVATURE, on_curvature
from .quadratic import linearize, lyapunov

DIFFUSIONS = ("finite-horizon", "stationary")


class NotLinearChainError(DeriveError, ValueError):
    """The optimizer's chain is not linear with additive noise on the quadratic model."""


@dataclass(frozen=True)
class LinearChain:
    """S' = A S + c + B zeta on the quadratic (states in spec order), and its stationary law."""

    states: tuple[sp.Symbol, ...]
    A: sp.Matrix
    c: sp.Matrix
    B: sp.Matrix
    covariance: sp.Matrix  # stationary Cov[S] of the chain (exact in eta)


def linear_chain(optimizer: str, noise: str = "gaussian", lam: sp.Expr = CURVATURE, nu: object = None) -> LinearChain:
    """The chain of ``optimizer`` on f = lam x^2/2 (paper regime: beta = 1 - eta rho; bias
    corrections beta^k -> 0 at stationarity) as an affine map with additive noise, and its
    stationary covariance from the discrete Lyapunov equation C = A C A^T + m2 B B^T."""
    spec = get_optimizer(optimizer)
    law = get_noise(noise, nu)
    states = spec.state_symbols
    zeta = S.zeta
    subs = {S.grad: lam * states[0] + S.sigma * zeta}
    for name, role in spec.hyper.items():
        sym = spec.hyper_symbols()[name]
        if role == "lr":
            subs[sym] = S.eta
        elif role == "decay":
            subs[sym] = 1 - S.eta * sp.Symbol(S.rate_name(name), positive=True)
    new = []
    for name in spec.state_names:
        expr = spec.step_map()[name]
        expr = expr.xreplace({p: sp.Integer(0) for p in expr.atoms(sp.Pow) if p.exp.has(S.k)})
        new.append(sp.expand(expr.xreplace(subs)))
    variables = (*states, zeta)
    for name, expr in zip(spec.state_names, new, strict=True):
        try:
            poly = sp.Poly(expr, *variables)
        except sp.PolynomialError:
            poly = None
        if poly is None or poly.total_degree() > 1:
            raise NotLinearChainError(
                f"the chain of {spec.name} on the quadratic is not linear with additive noise (the update of {name} "
                f"is not affine in {', '.join(map(str, variables))}); the stationary diffusion correction is derived "
                "for linear chains only (sgd, EMA heavy-ball momentum, SGD with weight decay)"
            )
    A = sp.Matrix(len(states), len(states), lambda i, j: new[i].coeff(states[j]))
    B = sp.Matrix([e.coeff(zeta) for e in new])
    c = sp.Matrix([e.xreplace({**{s: 0 for s in states}, zeta: 0}) for e in new])
    m2, _ = law.moment(2)
    if m2 == sp.oo:
        raise DeriveError(f"the {law.label} law has no second moment: the chain has no stationary covariance")
    n = len(states)
    unknowns = {(i, j): sp.Symbol(f"c_{i}{j}") for i in range(n) for j in range(i, n)}
    C = sp.Matrix(n, n, lambda i, j: unknowns[(min(i, j), max(i, j))])
    equations = list(C - A * C * A.T - m2 * B * B.T)
    solution = sp.solve(equations, list(unknowns.values()), dict=True)
    if not solution:
        raise DeriveError(
            f"the chain of {spec.name} has no stationary covariance (the discrete Lyapunov equation has no solution)"
        )
    return LinearChain(states, A, c, B, C.xreplace(solution[0]).applyfunc(lambda e: sp.factor(sp.cancel(e))))


@dataclass(frozen=True)
class StationaryComparison:
    """The stationary Var x of the chain and of three SDEs on f = lam x^2/2, and the diffusions."""

    optimizer: str
    noise: str
    curvature: sp.Expr
    chain: LinearChain
    drift_matrix: sp.Matrix  # M, the order-2 SDE's linearised drift
    finite_horizon: sp.Matrix  # G G^T of the order-1 (and order-2) SDE
    exact: sp.Matrix  # D with the chain's stationary covariance, all orders in eta
    stationary: sp.Matrix  # its expansion through eta^2: the named option 'stationary'
    variances: dict[str, sp.Expr]  # chain, order 1, order 2, order 2 + stationary diffusion
    admissible: bool  # whether the truncated D is positive semi-definite for small eta (else no SDE has it)

    def relative_error(self, name: str) -> sp.Expr:
        """(Var_name - Var_chain)/Var_chain to first order in eta."""
        ratio = self.variances[name] / self.variances["chain"] - 1
        return sp.factor(sp.series(ratio, S.eta, 0, 2).removeO())

    def to_text(self) -> str:
        lines = [f"Stationary Var x of {self.optimizer} ({self.noise}) on f = {self.curvature}*x**2/2"]
        for name, value in self.variances.items():
            err = "" if name == "chain" else f"   relative error {self.relative_error(name)} + O(eta^2)"
            lines.append(f"  {name:32s} {value}{err}")
        lines.append(f"  finite-horizon diffusion (order 1 and 2): {list(self.finite_horizon)}")
        lines.append(f"  stationary diffusion (exact):             {list(self.exact)}")
        lines.append(
            f"  stationary diffusion through eta^2:       {list(self.stationary)}"
            + ("" if self.admissible else "   NOT positive semi-definite: no SDE has this diffusion")
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "optimizer": self.optimizer,
            "noise": self.noise,
            "curvature": str(self.curvature),
            "state": [s.name for s in self.chain.states],
            "variance": {k: str(v) for k, v in self.variances.items()},
            "relative_error": {k: str(self.relative_error(k)) for k in self.variances if k != "chain"},
            "diffusion": {
                "finite-horizon": _rows(self.finite_horizon),
                "stationary": _rows(self.stationary),
                "stationary_exact": _rows(self.exact),
            },
            "stationary_admissible": self.admissible,
        }


def _rows(matrix: sp.Matrix) -> list[list[str]]:
    return [[str(e) for e in matrix.row(i)] for i in range(matrix.rows)]


def _positive_semidefinite(matrix: sp.Matrix) -> bool:
    """Every principal minor's leading term in eta is non-negative (all parameters positive)."""
    n = matrix.rows
    for size in range(1, n + 1):
        for rows in combinations(range(n), size):
            minor = sp.expand(matrix.extract(list(rows), list(rows)).det())
            if minor != 0 and not sp.sympify(minor.as_leading_term(S.eta)).is_nonnegative:
                return False
    return True


def _eta_series(expr: sp.Expr, order: int) -> sp.Expr:
    return sp.factor(sp.series(expr, S.eta, 0, order + 1).removeO()) if expr != 0 else expr


def stationary_comparison(
    optimizer: str, noise: str = "gaussian", lam: sp.Expr = CURVATURE, nu: object = None
) -> StationaryComparison:
    """Derive the chain's stationary covariance, the order-1 and order-2 SDEs' (Lyapunov), and the
    stationary diffusion correction D = -(M C_chain + C_chain M^T) (see the module docstring)."""
    chain = linear_chain(optimizer, noise, lam, nu)
    first = derive_sde(optimizer, noise, nu=nu)
    second = on_curvature(derive_sde(optimizer, noise, nu=nu, order=2), lam)
    model1, model2 = linearize(first, lam), linearize(second, lam)
    M, D0 = model2.A, model2.B
    exact = (-(M * chain.covariance + chain.covariance * M.T)).applyfunc(lambda e: sp.factor(sp.cancel(e)))
    truncated = exact.applyfunc(lambda e: _eta_series(e, 2))
    variances = {
        "chain": chain.covariance[0, 0],
        "order 1": lyapunov(model1.A, model1.B)[0, 0],
        "order 2 (order-1 diffusion)": lyapunov(M, D0)[0, 0],
        "order 2 + stationary diffusion": lyapunov(M, truncated)[0, 0],
    }
    return StationaryComparison(
        first.optimizer,
        first.noise,
        lam,
        chain,
        M,
        D0,
        exact,
        truncated,
        {k: sp.factor(v) for k, v in variances.items()},
        _positive_semidefinite(truncated),
    )
