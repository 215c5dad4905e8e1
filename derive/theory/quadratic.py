"""The quadratic model f = lambda x^2 / 2 per coordinate, and the linearised SDE about its minimum.

With g = lambda x and t -> oo (bias corrections gamma -> 1), the fixed point S* of the drift
has x* = 0 and the auxiliary states at the zeros of their drifts (e.g. v* = sigma^2 E[zeta^2]).
About S* the SDE is linearised as dS = A (S - S*) dt + G(S*) dW, A the Jacobian of the drift
(taken as a limit of difference quotients, so that |.| and sign in s(y) cause no trouble),
B = G G^T at S*. The stationary covariance C solves the Lyapunov equation A C + C A^T + B = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .. import symbols as S
from ..engine import derive_sde
from ..errors import DeriveError, InfiniteMomentError
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
    """Drift and G G^T of ``sde`` on f = lam x^2/2 (g = lam x), with t -> oo if ``t_limit``; the
    Hessian and the gradient field of the quadratic where the SDE has them (hvp(u) = lam u,
    gradf(P) = lam P, USAM's noise through the Hessian joined to the diffusion)."""
    from ..order2 import on_curvature
    from ..points import gradf, hvp

    if sde.hessian_noise is not None or any(sp.sympify(b).has(hvp, gradf) for b in sde.drift):
        sde = on_curvature(sde, lam)
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
        if lower == upper:
            return sp.Integer(0)
        if lower == 0 and upper == 1:  # the whole interval (SymPy leaves I_1(a, b) = 1 unevaluated)
            return sp.Integer(1)
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
            raise NoStationaryLawError(
                f"cannot decide which branch of a piecewise coefficient holds at the minimum: {cond}"
            )
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
            "SDE about x = 0 is unstable, so it has no stationary law"
        )
    drift, cov = on_quadratic(sde, lam)
    if any(sp.sympify(e).has(S.t) for e in (*drift, *cov)):
        raise NoStationaryLawError(
            f"the SDE of {sde.optimizer} depends on t beyond the bias corrections (a step-count coefficient such as "
            "1/t): it has no stationary law"
        )
    # floats (moments of a user law found by quadrature) are held as symbols, so that simplification
    # does not turn them into huge rationals
    floats = sorted({f for e in (*drift, *cov) for f in sp.sympify(e).atoms(sp.Float)}, key=float)
    held = {f: sp.Dummy(f"f{i}", positive=True) if f > 0 else sp.Dummy(f"f{i}") for i, f in enumerate(floats)}
    back = {d: f for f, d in held.items()}
    drift, cov = [sp.sympify(b).xreplace(held) for b in drift], cov.xreplace(held)
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
    B = cov.applyfunc(lambda e: sp.simplify(analytic_form(e.xreplace(point))))
    point = {k: sp.sympify(v).xreplace(back) for k, v in point.items()}
    return LinearModel(sde, lam, point, tuple(b.xreplace(back) for b in drift), A.xreplace(back), B.xreplace(back))


def _blocks(A: sp.Matrix, B: sp.Matrix) -> list[list[int]]:
    """Groups of states coupled through A or B (connected components); C vanishes between groups."""
    n = A.shape[0]
    group = list(range(n))

    def find(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(n):
        for j in range(n):
            if i != j and (A[i, j] != 0 or B[i, j] != 0):
                group[find(i)] = find(j)
    out: dict[int, list[int]] = {}
    for i in range(n):
        out.setdefault(find(i), []).append(i)
    return list(out.values())


def lyapunov(A: sp.Matrix, B: sp.Matrix) -> sp.Matrix:
    """The symmetric C with A C + C A^T + B = 0 (unique when A is Hurwitz).

    The equation is solved per group of coupled states (C vanishes between uncoupled groups).
    Radicals, floats and function values in A and B (e.g. sqrt(v*) = sigma sqrt(nu/(nu - 2)), gamma(nu/2)
    under Student-t noise) are held as symbols while the linear system is solved and the entries are factored, then put back: the
    entries stay rational functions of those radicals, in compact form.
    """
    n = A.shape[0]
    radicals = sorted(
        {a for M in (A, B) for a in M.atoms(sp.Pow) if not a.exp.is_Integer}
        | {f for M in (A, B) for f in M.atoms(sp.Float)}
        | {f for M in (A, B) for f in M.atoms(sp.Function)},
        key=sp.default_sort_key,
    )
    held = {r: sp.Dummy(f"r{i}", positive=True) if r.is_positive else sp.Dummy(f"r{i}") for i, r in enumerate(radicals)}
    back = {d: r for r, d in held.items()}
    A, B = A.xreplace(held), B.xreplace(held)
    C = sp.zeros(n, n)
    for idx in _blocks(A, B):
        a, b, m = A.extract(idx, idx), B.extract(idx, idx), len(idx)
        entries = {(i, j): sp.Symbol(f"c_{i}{j}") for i in range(m) for j in range(i, m)}
        c = sp.Matrix(m, m, lambda i, j, entries=entries: entries[(min(i, j), max(i, j))])
        equations = [e for e in (a * c + c * a.T + b) if e != 0]
        unknowns = list(entries.values())
        if not equations:
            raise NoStationaryLawError(
                "the Lyapunov equation A C + C A^T + B = 0 has no unique solution (A is not stable)"
            )
        solutions = sp.linsolve(equations, unknowns)
        if not solutions:
            raise NoStationaryLawError("the Lyapunov equation A C + C A^T + B = 0 has no solution (A is not stable)")
        values = next(iter(solutions))
        if any(v.free_symbols & set(unknowns) for v in values):
            raise NoStationaryLawError(
                "the Lyapunov equation A C + C A^T + B = 0 has no unique solution (A is not stable)"
            )
        solved = c.xreplace(dict(zip(unknowns, values, strict=False)))
        for p, i in enumerate(idx):
            for q, j in enumerate(idx):
                C[i, j] = solved[p, q]
    return C.applyfunc(lambda e: sp.factor(sp.cancel(e)).xreplace(back))


def is_hurwitz(A: sp.Matrix) -> bool | None:
    """Whether every eigenvalue of A has negative real part (None if undecidable symbolically)."""
    verdicts = [sp.re(ev).is_negative for ev in A.eigenvals()]
    if all(v is True for v in verdicts):
        return True
    if any(v is False for v in verdicts):
        return False
    return None


@lru_cache(maxsize=1024)
def _cached_sde(optimizer: str, noise: str, regime: str, form: str, nu: str | None) -> SDE:
    return derive_sde(optimizer, noise, regime, form, nu=nu)


def sde_of(optimizer, noise="gaussian", regime: str = "paper", form: str = "full", nu=None) -> SDE:
    """:func:`derive.engine.derive_sde`, cached per process when optimizer and law are given by name."""
    if isinstance(optimizer, str) and isinstance(noise, str) and isinstance(regime, str):
        return _cached_sde(optimizer, noise, regime, form, None if nu is None else str(nu))
    return derive_sde(optimizer, noise, regime, form, nu=nu)


@dataclass(frozen=True)
class LinearLaw:
    """The linearised SDE about the minimum and its stationary covariance."""

    model: LinearModel
    covariance: sp.Matrix

    @property
    def var_x(self) -> sp.Expr:
        return self.covariance[0, 0]


def _linear_law(optimizer, noise, regime: str, form: str, nu) -> LinearLaw:
    try:
        sde = sde_of(optimizer, noise, regime, form, nu)
    except InfiniteMomentError as exc:
        name = getattr(optimizer, "name", optimizer)
        raise NoStationaryLawError(
            f"{name} has no stationary law with finite variance under this noise: {exc}"
        ) from None
    model = linearize(sde, curvature)
    if is_hurwitz(model.A) is False:
        raise NoStationaryLawError(
            f"the linearised drift of {sde.optimizer} at the minimum is unstable (A = {model.A.tolist()})"
        )
    return LinearLaw(model, lyapunov(model.A, model.B))


_linear_law_cached = lru_cache(maxsize=512)(_linear_law)


def linear_law(optimizer, noise="gaussian", regime: str = "paper", form: str = "full", nu=None) -> LinearLaw:
    """Linearised model and Lyapunov covariance on f = lambda x^2/2 (symbolic lambda), cached by name."""
    if isinstance(optimizer, str) and isinstance(noise, str):
        return _linear_law_cached(optimizer, noise, regime, form, None if nu is None else str(nu))
    return _linear_law(optimizer, noise, regime, form, nu)
