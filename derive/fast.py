"""Fast states: EMA factors held fixed, eliminated by a change of variables (reference section 11).

A state m whose update contracts it by a factor held fixed as eta -> 0 (PyTorch's momentum
buffer, m' = beta m + (1 - tau) g~ with beta fixed) relaxes in O(1) steps: it is *fast*, and the
SDE, whose time step is dt = eta^a, cannot carry it as a state (E[Delta m]/dt diverges). In the
regime's units write one step as

    Delta m = a0 m + R,        Delta s = P_s + Q_s m      (each slow state s),

with a0 = -(1 - A) the O(1) part of d(Delta m)/dm (A the contraction factor, in (0, 1)), R the
rest (O(eta) of m included), and Delta s affine in m. If the leading term of Q_s, eta^p q_s
(p >= 1), is free of the noise (m enters s with a slowly varying coefficient), the variable
u_s = s - c_s m with c_s = eta^p q_s / a0 moves by

    Delta u_s = Delta s - c_s(S) Delta m - (c_s(S') - c_s(S)) m'
              = P_s - c_s(S) R + (Q_s + c_s(S) a0) m - (c_s(S') - c_s(S)) m',

whose coefficient of m vanishes at leading order (S' the slow states after the step). The last
term, c_s's own change over one step, O(dt c_s) m', is checked to be beyond the order of the SDE
and left out. Writing s = u_s + c_s m everywhere (and g(x) = g(u) + H c_x m, printed hvp), every
term that still depends on m must be beyond the order of the SDE too, with m counted at its own
size (that of R / (1 - A): O(1) in the paper regime, O(1/eta) in the noise-dominated one); then m
is dropped, and the SDE has the slow states only, u_s = s + O(eta) standing for s. Orders are read
numerically at random points (:func:`leading_order`).

Heavy ball (m' = beta m + (1 - tau) g~, x' = x - eta m'): c = eta beta / (1 - beta) and
u' = u - eta (1 - tau)/(1 - beta) g~, SGD with learning rate eta (1 - tau)/(1 - beta). Adam with
beta1 fixed: c = eta beta1 D / (1 - beta1), D = 1/(sqrt(v/gamma2) + eps), and u moves as RMSprop's
x with v/gamma2. A nonlinear function of a fast state (Signum with beta fixed, sign(m)) has no such
closed form and is refused by name.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy as sp

from . import symbols as S
from .errors import NoLimitError, UnsupportedUpdateError
from .opaque import Opaque
from .points import gradf, hvp, linear_hvp

Series = Callable[[sp.Expr, int, str], dict[int, sp.Expr]]
#: random points at which the orders in eta are read (a probabilistic identity test, deterministic seeds)
_POINTS = 2
#: the two values of eta at which the leading power is read, and the working precision (digits)
_ETAS, _DIGITS = (sp.Rational(1, 10**6), sp.Rational(1, 10**7)), 90


def leading_order(expr: sp.Expr, lam: sp.Symbol | None = None) -> sp.Rational | None:
    """The lowest power of eta in ``expr`` (None if ``expr`` vanishes), read numerically: every other
    symbol set to a random rational (positive symbols in (1/4, 3/4), so that a fixed EMA factor's
    complement stays in (0, 1)), hvp(u) to lam*u and gradf(P) to an affine function of P, and
    log|f(eta1)/f(eta2)| / log(eta1/eta2) at eta = 1e-6, 1e-7 with 90 digits, rounded to a half
    integer (the next power changes it by O(1e-6)). A coefficient that is zero as an expression is
    zero at every point; one that is not vanishes at a random point with probability 0 (two points).
    The symbolic series of the expressions this reads (nested square roots after a change of
    variables) takes minutes; this takes milliseconds."""
    rng = random.Random(1234)
    scale, offset = sp.Dummy("scale", positive=True), sp.Dummy("offset", positive=True)
    e = expr.replace(lambda f: isinstance(f, hvp), lambda f: scale * f.args[0])
    e = e.replace(lambda f: isinstance(f, gradf), lambda f: scale * f.args[0] + offset)
    e = e.xreplace({lam: scale} if lam is not None else {})
    if e == 0:
        return None
    others = sorted(e.free_symbols - {S.eta}, key=lambda s: s.name)
    powers = []
    for _ in range(_POINTS):
        values = {}
        for sym in others:  # floats of _DIGITS digits: evaluated as numbers, never simplified as an expression
            v = sp.Float(sp.Rational(rng.randint(25, 75), 100), _DIGITS)
            values[sym] = v if (sym.is_positive or sym.is_nonnegative) else v * rng.choice((-1, 1))
        a, b = (abs(sp.N(e.xreplace({**values, S.eta: sp.Float(eta, _DIGITS)}), _DIGITS)) for eta in _ETAS)
        tiny = sp.Float(10, _DIGITS) ** (-_DIGITS + 20)
        if not (a.is_number and b.is_number) or (a < tiny and b < tiny):
            continue
        ratio = sp.log(a / b) / sp.log(sp.Float(_ETAS[0] / _ETAS[1], _DIGITS))
        powers.append(sp.Rational(round(2 * float(ratio)), 2))
    return min(powers) if powers else None


@dataclass(frozen=True)
class Elimination:
    """A fast state eliminated: ``state`` contracts as state' = factor * state + ... (regime units),
    and each slow state s of ``shifts`` is replaced by s - shifts[s] * state (regime units)."""

    state: str
    factor: sp.Expr
    shifts: Mapping[str, sp.Expr]


class NonlinearFastError(UnsupportedUpdateError):
    """A fast state enters another update nonlinearly (the caller names the construct)."""

    def __init__(self, fast: str, state: str, atom: sp.Expr):
        self.fast, self.state, self.atom = fast, state, atom
        super().__init__(f"{atom}")


def _linearised(expr: sp.Expr, lam: sp.Symbol) -> sp.Expr:
    """``expr`` with every hvp(u) written lam * u: H is linear, so linearity in m is kept."""
    return expr.replace(lambda e: isinstance(e, hvp), lambda e: lam * e.args[0])


def _coefficient_of(expr: sp.Expr, sym: sp.Symbol) -> sp.Expr:
    """d expr / d sym, with the function applications free of sym held as symbols (their
    derivatives are zero; gradf, hvp of other vectors)."""
    opaque = Opaque(keep=lambda f: not f.has(sym))
    return opaque.show(sp.diff(opaque.hide(expr), sym))


def contraction(delta_m: sp.Expr, m: sp.Symbol, series: Series, where: str) -> sp.Expr | None:
    """a0, the O(1) part of d(Delta m)/dm (None when it vanishes: m is not fast); refused when
    the contraction multiplies m by the noise or does not lie in (-2, 0) (|A| < 1)."""
    a = _coefficient_of(delta_m, m)
    if a == 0:
        return None
    a0 = a.subs(S.eta, 0)
    if a0.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        a0 = series(a, 0, where).get(0, sp.Integer(0))
    if a0 == 0 or sp.expand(a0) == 0:
        return None
    if S.draws_in(a0) or a0.has(m):
        raise UnsupportedUpdateError(
            f"{where}: the update multiplies {m} by {a0 + 1} at order 1, which depends on "
            f"{'the noise' if S.draws_in(a0) else m}; a fast state must contract by a factor free of the noise"
        )
    if S.sign_in_unit_interval(-a0) != 1 or S.sign_in_unit_interval(2 + a0) != 1:
        raise UnsupportedUpdateError(
            f"{where}: {m} is multiplied by {sp.simplify(1 + a0)} per step, which is not known to lie in (-1, 1); "
            "a state held at a fixed factor must contract (an EMA factor in (0, 1), role fixed_decay)"
        )
    return a0


def check_linear(delta: Mapping[str, sp.Expr], symbols: Mapping[str, sp.Symbol], name: str) -> None:
    """NonlinearFastError when the fast state ``name`` enters another state's update nonlinearly
    (inside sign, sqrt, a gradient at another point, ...)."""
    m, lam = symbols[name], sp.Dummy("lambda_H")
    for s, d in delta.items():
        if s == name or not d.has(m):
            continue
        for atom in sorted(d.atoms(gradf), key=sp.default_sort_key):
            if atom.has(m):
                raise NonlinearFastError(name, s, atom)
        curvature = sp.diff(_linearised(d, lam), m, 2)
        singular = curvature.has(sp.DiracDelta, sp.Heaviside, sp.Derivative, sp.Subs)  # sign(m), Abs(m), ...
        if curvature != 0 and (singular or leading_order(curvature) is not None):  # nonzero at random points
            raise NonlinearFastError(name, s, _nonlinear_atom(d, m))


def eliminate(
    delta: Mapping[str, sp.Expr],
    symbols: Mapping[str, sp.Symbol],
    name: str,
    a0: sp.Expr,
    series: Series,
    dt: int,
    where: Callable[[str], str],
) -> tuple[dict[str, sp.Expr], Elimination]:
    """Delta of every slow state in the variables u_s = s - c_s m, m dropped (see the module
    docstring); NonlinearFastError when m enters a slow state nonlinearly, UnsupportedUpdateError
    when its coefficient is not slowly varying or m is still there at the order of the SDE."""
    m, eta, lam = symbols[name], S.eta, sp.Dummy("lambda_H")
    delta_m = delta[name]
    slow = [s for s in delta if s != name]
    shifts: dict[str, sp.Expr] = {}
    check_linear(delta, symbols, name)
    for s in slow:
        d = delta[s]
        if not d.has(m):
            continue
        coupling = sp.diff(_linearised(d, lam), m)
        p = leading_order(coupling, lam)
        if p is None:
            continue
        if not p.is_integer:
            raise UnsupportedUpdateError(f"{where(s)}: the fast state {name} enters at the order eta^{p}")
        lead = _leading_coefficient(coupling, int(p), series, where(s))
        if S.draws_in(lead) or lead.has(m) or lead.has(lam):
            raise UnsupportedUpdateError(
                f"{where(s)}: the fast state {name} enters with the coefficient {lead.xreplace({lam: sp.Symbol('H')})} "
                f"at order eta^{p}, which is not slowly varying (it depends on the noise, on {name} or on the "
                f"Hessian); the change of variables {s} - c*{name} needs a coefficient that is"
            )
        if p <= 0:
            raise UnsupportedUpdateError(
                f"{where(s)}: the fast state {name} enters at order eta^{p}, as large as {s}'s own step; "
                f"{s} - c*{name} would not stay close to {s}"
            )
        shifts[s] = eta**p * lead / a0
    after = {symbols[y]: symbols[y] + delta[y] for y in slow}
    moved = {s: delta[s] - shifts[s] * delta_m if s in shifts else delta[s] for s in slow}
    back: dict[sp.Expr, sp.Expr] = {symbols[s]: symbols[s] + c * m for s, c in shifts.items()}
    if "x" in shifts:
        back[S.g] = S.g + hvp(shifts["x"] * m)  # g(x) = g(u) + H (x - u)
    local = {*symbols.values(), S.g}
    size = leading_order(delta_m.xreplace({m: 0})) or 0  # m is of the size of R / (1 - A)
    for s, c in shifts.items():
        gap = leading_order(c * m * eta**size)
        if gap is not None and gap <= 0:
            raise NoLimitError(
                f"{where(s).split(', update of')[0]} has no SDE: the fast state {name} is of order eta^{size} (the size "
                f"of its input), so {s} - c*{name} differs from {s} at order eta^{gap} and {name} cannot be eliminated"
            )
    for s, c in shifts.items():  # c(S') - c(S) = O(dt c): its effect, (c(S') - c(S)) m', is beyond the SDE
        drift = ((c.xreplace(after) - c) * (m + delta_m)).xreplace({m: m * eta**size})
        low = leading_order(drift)
        if low is not None and low <= dt:
            raise UnsupportedUpdateError(
                f"{where(s)}: the coefficient c of {s} - c*{name} changes over one step by an amount that moves "
                f"{s} at order eta^{low}, within the order of the SDE; {name} cannot be eliminated"
            )
    out = {}
    for s, d in moved.items():
        d = linear_hvp(d.xreplace(back), local | S.draws_in(d))
        for atom in d.atoms(gradf):
            if any(atom.has(symbols[y]) for y in shifts):
                raise UnsupportedUpdateError(
                    f"{where(s)}: {atom} is taken at a point that moves with the fast state {name}; not supported"
                )
        kept = linear_hvp(d.xreplace({m: 0}), local)
        residual = (d - kept).xreplace({m: m * eta**size})
        low = leading_order(residual) if residual != 0 else None
        if low is not None and low <= dt:
            raise UnsupportedUpdateError(
                f"{where(s)}: after the change of variables {s} - c*{name} the update still depends on the fast "
                f"state {name} at order eta^{low}, within the order of the SDE; {name} cannot be eliminated"
            )
        out[s] = kept
    return out, Elimination(name, 1 + a0, shifts)


def _leading_coefficient(expr: sp.Expr, p: int, series: Series, where: str) -> sp.Expr:
    """The coefficient of eta^p in ``expr``, p its lowest power: expr/eta^p (or it over one
    denominator) at eta = 0 where that is finite, else from the series."""
    for form in (lambda e: e, sp.together):  # 1/(eps_0/eta + sqrt(v_0/eta**2)): one fraction first
        value = form(expr / S.eta**p).subs(S.eta, 0)
        if not value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            return value
    return series(expr, p, where).get(p, sp.Integer(0))


def _nonlinear_atom(expr: sp.Expr, m: sp.Symbol) -> sp.Expr:
    """The smallest function application or non-integer power of ``expr`` that contains m (for the
    refusal's message; ``expr`` itself if there is none)."""
    found = [
        e
        for e in sp.preorder_traversal(expr)
        if e.has(m) and (isinstance(e, sp.Function) or (e.is_Pow and not (e.exp.is_Integer and e.exp > 0)))
    ]
    return min(found, key=sp.count_ops) if found else expr
