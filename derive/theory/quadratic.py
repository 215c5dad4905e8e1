"""The quadratic model f = lambda x^2 / 2 per coordinate, and the linearised SDE about its minimum.

With g = lambda x and t -> oo (bias corrections gamma -> 1), the fixed point S* of the drift
has x* = 0 and the auxiliary states at the zeros of their drifts (e.g. v* = sigma^2 E[zeta^2]).
About S* the SDE is linearised as dS = A (S - S*) dt + G(S*) dW, A the Jacobian of the drift
(taken as a limit of difference quotients, so that |.| and sign in s(y) cause no trouble),
B = G G^T at S*. The stationary covariance C solves the Lyapunov equation A C + C A^T + B = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import symbols as S
from ..errors import DeriveError
from ..sde import SDE

#: Curvature of the quadratic model (one coordinate): f = lambda x^2 / 2, g = lambda x.
curvature = sp.Symbol("lambda", positive=True)


class NoStationaryLawError(DeriveError, ValueError):
    """The SDE has no stationary law on the requested model."""


@dataclass(frozen=True)
class LinearModel:
    """dS = A (S - S*) dt + sqrt(B) dW about the fixed point S* of the quadratic model."""

    sde: SDE
    curvature: sp.Expr
    fixed_point: dict[sp.Symbol, sp.Expr]
    drift: tuple[sp.Expr, ...]  # the drift on the model, t -> oo (not linearised)
    A: sp.Matrix
    B: sp.Matrix


def on_quadratic(sde: SDE, lam: sp.Expr = curvature, t_limit: bool = True) -> tuple[list[sp.Expr], sp.Matrix]:
    """Drift and G G^T of ``sde`` on f = lam x^2/2 (g = lam x), with t -> oo if ``t_limit``."""
    x = sde.state[0]
    times = {gamma: sp.limit(value, S.t, sp.oo) for gamma, value in sde.time_functions.items()} if t_limit else {}
    drift = [sp.sympify(b).xreplace(times).xreplace({S.g: lam * x}) for b in sde.drift]
    cov = (sde.diffusion * sde.diffusion.T).applyfunc(lambda e: sp.sympify(e).xreplace(times).xreplace({S.g: lam * x}))
    return drift, cov


def analytic_form(expr: sp.Expr) -> sp.Expr:
    """``expr`` with each regularized incomplete beta written through a hypergeometric function,

        I_z(a, b) = 1 - I_{1-z}(b, a),   I_w(a, b) = w^a 2F1(a, 1 - b; a + 1; w) / (a B(a, b)),

    exact identities under which SymPy can take limits and series. The Student-t law's
    s(y) = sign(y) (1 - I_{nu/(nu+y^2)}(nu/2, 1/2)) becomes sign(y) I_{y^2/(nu+y^2)}(1/2, nu/2), whose
    expansion about y = 0 starts with 2 p(0) y (no symbolic derivative of betainc is needed).
    """
    def complement(a, b, lower, upper):
        if lower != 0:
            return sp.betainc_regularized(a, b, lower, upper)
        return 1 - sp.betainc_regularized(b, a, 0, 1 - upper).rewrite(sp.hyper)

    return sp.sympify(expr).replace(sp.betainc_regularized, complement)


def branch_near_zero(expr: sp.Expr, h: sp.Symbol) -> sp.Expr:
    """Each Piecewise in ``expr`` replaced by its branch that holds for small h > 0 (SignSGD under
    uniform noise: s(y) = y for |y| <= 1, +-1 beyond)."""
    def pick(*pairs):
        for value, cond in pairs:
            if cond == sp.true:
                return value
            if isinstance(cond, sp.core.relational.Relational):
                gap = sp.limit(cond.lhs - cond.rhs, h, 0, "+")
                holds = cond.func(gap, 0) if gap.is_number and gap != 0 else None
                if holds == sp.true:
                    return value
                if holds == sp.false:
                    continue
            raise NoStationaryLawError(f"cannot decide which branch of a piecewise coefficient holds at the minimum: {cond}")
        raise NoStationaryLawError("no branch of a piecewise coefficient holds at the minimum")

    return sp.sympify(expr).replace(sp.Piecewise, pick)


def _derivative_at(expr: sp.Expr, var: sp.Symbol, point: dict) -> sp.Expr:
    """d expr / d var at ``point``, as the limit of the difference quotient (two-sided)."""
    h = sp.Symbol("h", positive=True)
    expr = analytic_form(expr)
    base = expr.xreplace(point)
    if base.has(sp.Piecewise):
        base = base.replace(sp.Piecewise, lambda *pairs: sp.Piecewise(*pairs).doit())
    moved = branch_near_zero(expr.xreplace({**point, var: point[var] + h}), h)
    right = sp.limit((moved - base) / h, h, 0)
    moved = branch_near_zero(expr.xreplace({**point, var: point[var] - h}), h)
    left = sp.limit((moved - base) / (-h), h, 0)
    if any(side.has(sp.Limit, sp.nan, sp.oo, -sp.oo, sp.zoo) for side in (right, left)):
        raise NoStationaryLawError(f"SymPy cannot take the derivative of the drift {expr} in {var} at the minimum")
    if sp.simplify(right - left) != 0:
        raise NoStationaryLawError(f"the drift {expr} is not differentiable in {var} at the minimum")
    return sp.simplify(right)


def linearize(sde: SDE, lam: sp.Expr = curvature) -> LinearModel:
    """Fixed point, Jacobian A and diffusion B of ``sde`` on the quadratic model about x = 0."""
    lam = sp.sympify(lam)
    if lam.is_number and not lam > 0:
        raise NoStationaryLawError(
            f"curvature {lam} is not positive: the quadratic model is not convex, and the linearised "
            "SDE about x = 0 is unstable, so it has no stationary law")
    drift, cov = on_quadratic(sde, lam)
    x, aux = sde.state[0], sde.state[1:]
    at_min = [b.xreplace({x: 0}) for b in drift[1:]]
    solutions = sp.solve(at_min, aux, dict=True) if aux else [{}]
    solutions = [s for s in solutions if all(sp.sympify(v).is_real is not False for v in s.values())]
    if not solutions:
        raise NoStationaryLawError(f"the auxiliary states {aux} of {sde.optimizer} have no fixed point at the minimum")
    point = {x: sp.Integer(0), **solutions[0]}
    if sp.simplify(drift[0].xreplace(point)) != 0:
        raise NoStationaryLawError(f"x = 0 is not a fixed point of the drift of {sde.optimizer}")
    n = len(sde.state)
    A = sp.Matrix(n, n, lambda i, j: _derivative_at(drift[i], sde.state[j], point))
    B = cov.applyfunc(lambda e: sp.simplify(e.xreplace(point)))
    return LinearModel(sde, lam, point, tuple(drift), A, B)


def lyapunov(A: sp.Matrix, B: sp.Matrix) -> sp.Matrix:
    """The symmetric C with A C + C A^T + B = 0 (unique when A is Hurwitz)."""
    n = A.shape[0]
    entries = {(i, j): sp.Symbol(f"c_{i}{j}") for i in range(n) for j in range(i, n)}
    C = sp.Matrix(n, n, lambda i, j: entries[(min(i, j), max(i, j))])
    equations = [e for e in (A * C + C * A.T + B) if e != 0]
    unknowns = list(entries.values())
    system, rhs = sp.linear_eq_to_matrix(equations, unknowns)
    if system.rank() < len(unknowns):
        raise NoStationaryLawError("the Lyapunov equation A C + C A^T + B = 0 has no unique solution (A is not stable)")
    values = system.LUsolve(rhs)
    return C.xreplace(dict(zip(unknowns, values))).applyfunc(lambda e: sp.factor(sp.cancel(e)))


def is_hurwitz(A: sp.Matrix) -> bool | None:
    """Whether every eigenvalue of A has negative real part (None if undecidable symbolically)."""
    verdicts = [sp.re(ev).is_negative for ev in A.eigenvals()]
    if all(v is True for v in verdicts):
        return True
    if any(v is False for v in verdicts):
        return False
    return None
