"""Piecewise functions of the noise, and expectations over the noise draws of one step.

Draws: ``zeta`` and ``zeta_i`` (independent draws of the gradient-noise law, from ``grad`` and
``grad_i``) and ``xi``, ``xi_i`` (injected standard Gaussian draws). Draws are independent, so the
mean of a product is the product of the means per draw.

**Indicators** (reference section 2b). Every sign, Abs, Min, Max and Heaviside of an argument that
is affine in one draw d (a + b d, a and b free of d) is rewritten with indicators
H = 1[d > u] (:class:`Indicator`, threshold u = -a/b; b > 0 gives H, b < 0 gives 1 - H):

    sign(f) = 2 I(f) - 1,   Heaviside(f) = I(f),   Abs(f) = f (2 I(f) - 1),
    Max(f1, f2) = f2 + (f1 - f2) I(f1 - f2),        Min(f1, f2) = f1 + (f2 - f1) I(f1 - f2),

with I(f) = 1[f > 0] (equalities have probability 0: every law has a density). An argument that
already contains an indicator H is split on it, I(A + B H) = H I(A + B) + (1 - H) I(A), so nested
forms such as clip = Min(Max(f, lo), hi) reduce too; so does any other function of it (a square
root of a clipped second moment): f(A + B H) = H f(A + B) + (1 - H) f(A). A threshold that diverges as eta -> 0 (a of
lower order in eta than b) makes I(f) tend to the deterministic 1[a_lead > 0] = (1 + sign(a_lead))/2:
a sign whose argument grows like 1/eta tends to the sign of its leading term.

**Expectations.** After the rewrite an update is a polynomial in the draws and indicators; per
draw d and monomial d^n H_1 ... H_k = d^n 1[d > U], U = Max(u_1, ..., u_k):

    E[d^n] = m_n (0 for odd n),        E[d^n; d > U] = h_n - K_n(U),

with h_n = E|d|^n / 2 for odd n and m_n / 2 for even n, and K_n the law's partial moment
(derive.noise). Means are returned with placeholders: :func:`moment_symbol` (m_n),
:func:`abs_moment_symbol` (E|zeta|^n, odd n) and :func:`partial_call` (K_n(U)), filled per law by
the engine; pieces on a finite interval cancel their h_n exactly, so they need no moment of the law.
Injected Gaussian draws are averaged at once (their moments and K_n are known).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import symbols as S
from .errors import UnsupportedUpdateError
from .opaque import expand_outside
from .points import hvp


@dataclass(frozen=True)
class Indicator:
    """The placeholder ``symbol`` = 1[draw > threshold] for one noise draw."""

    symbol: sp.Symbol
    draw: sp.Symbol
    threshold: sp.Expr


_MOMENT = "zeta_moment_"
_ABS_MOMENT = "zeta_abs_moment_"
_PARTIAL = "K_"


def moment_symbol(n: int) -> sp.Symbol:
    """Placeholder for the law's even moment E[zeta^n], filled in per law."""
    return sp.Symbol(f"{_MOMENT}{n}", positive=True)


def abs_moment_symbol(n: int) -> sp.Symbol:
    """Placeholder for the law's absolute moment E|zeta|^n (odd n), filled in per law."""
    return sp.Symbol(f"{_ABS_MOMENT}{n}", positive=True)


def moment_order(sym: sp.Symbol) -> int | None:
    """n if ``sym`` is the placeholder of E[zeta^n], else None."""
    return int(sym.name[len(_MOMENT) :]) if sym.name.startswith(_MOMENT) else None


def abs_moment_order(sym: sp.Symbol) -> int | None:
    """n if ``sym`` is the placeholder of E|zeta|^n, else None."""
    return int(sym.name[len(_ABS_MOMENT) :]) if sym.name.startswith(_ABS_MOMENT) else None


def partial_call(n: int, u: sp.Expr) -> sp.Expr:
    """Placeholder K_n(u) = integral_0^u z^n p(z) dz of the law, written with u.could_extract_minus_sign()
    false (K_n(-u) = (-1)^(n+1) K_n(u): p is even)."""
    if u.could_extract_minus_sign():
        return (-1) ** (n + 1) * sp.Function(f"{_PARTIAL}{n}")(-u)
    return sp.Function(f"{_PARTIAL}{n}")(u)


def partial_order(call: sp.Basic) -> int | None:
    """n if ``call`` is a placeholder K_n(u), else None."""
    name = getattr(call.func, "__name__", "")
    return (
        int(name[len(_PARTIAL) :])
        if isinstance(call, sp.Function) and name.startswith(_PARTIAL) and name[len(_PARTIAL) :].isdigit()
        else None
    )


def shown(expr: sp.Expr, indicators: dict[sp.Symbol, Indicator]) -> sp.Expr:
    """``expr`` with each indicator written Heaviside(draw - threshold), for messages."""
    return expr.xreplace({s: sp.Heaviside(a.draw - a.threshold) for s, a in indicators.items()})


# ---------------------------------------------------------------------------------------------
# Rewriting piecewise functions of the noise into indicators
# ---------------------------------------------------------------------------------------------
_PIECEWISE = (sp.sign, sp.Abs, sp.Min, sp.Max, sp.Heaviside)


class _Isolator:
    """Rewrites the piecewise atoms of expressions, sharing one indicator table."""

    def __init__(self, table: dict[sp.Symbol, Indicator], where: str, variables: tuple[sp.Symbol, ...]):
        self.table, self.where, self.variables = table, where, variables

    def expand(self, e: sp.Expr) -> sp.Expr:
        return expand_outside(e, keep=lambda f: not self.random(f))

    def random(self, e: sp.Expr) -> bool:
        return bool(S.draws_in(e)) or any(e.has(h) for h in self.table)

    def rewrite(self, e: sp.Expr, atom: sp.Expr | None = None) -> sp.Expr:
        if e.is_Atom or not self.random(e):
            return e
        args = [self.rewrite(a, e if isinstance(e, _PIECEWISE) else atom) for a in e.args]
        if isinstance(e, sp.sign):
            return 2 * self.indicator(args[0], e) - 1
        if isinstance(e, sp.Heaviside):
            return self.indicator(args[0], e)
        if isinstance(e, sp.Abs):
            return self.expand(args[0] * (2 * self.indicator(args[0], e) - 1))
        if isinstance(e, (sp.Min, sp.Max)):
            out = args[0]
            for f in args[1:]:
                over = self.indicator(out - f, e)  # 1[out > f]
                out = (
                    self.expand(f + (out - f) * over) if isinstance(e, sp.Max) else self.expand(out + (f - out) * over)
                )
            return out
        polynomial = isinstance(e, (sp.Add, sp.Mul)) or (isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp > 0)
        inner = sorted((h for h in self.table if any(a.has(h) for a in args)), key=lambda h: h.name)
        if inner and not polynomial:  # f(A + B H) = H f(A + B) + (1 - H) f(A): H is 0 or 1
            h = inner[0]
            return h * self.rewrite(e.func(*args).xreplace({h: 1})) + (1 - h) * self.rewrite(
                e.func(*args).xreplace({h: 0})
            )
        return e.func(*args)

    def indicator(self, f: sp.Expr, atom: sp.Expr) -> sp.Expr:
        """I(f) = 1[f > 0] as a polynomial in indicators, or its deterministic limit."""
        f = self.expand(f)
        inner = sorted((h for h in self.table if f.has(h)), key=lambda h: h.name)
        if inner:
            h = inner[0]
            return self.expand(
                h * self.indicator(f.xreplace({h: 1}), atom) + (1 - h) * self.indicator(f.xreplace({h: 0}), atom)
            )
        draws = S.draws_in(f)
        if not draws:
            return (1 + sp.sign(f)) / 2
        if len(draws) > 1:
            raise UnsupportedUpdateError(
                f"{self.where}: the term {atom} is a piecewise function of several noise draws together "
                f"({', '.join(sorted(d.name for d in draws))}); only functions of one draw at a time are supported"
            )
        (d,) = draws
        try:
            poly = sp.Poly(f, d)
        except sp.PolynomialError:
            poly = None
        if poly is None or poly.degree() != 1:
            raise UnsupportedUpdateError(
                f"{self.where}: the term {atom} is a piecewise function of a non-affine function of "
                f"the noise {d}; only sign, Abs, Min, Max, Heaviside of a + b*{d} have a CDF rule"
            )
        b, a = poly.coeff_monomial(d), poly.coeff_monomial(1)
        if a != 0 and _eta_order(a) < _eta_order(b):  # the threshold -a/b diverges: I(f) -> 1[a_lead > 0]
            lead, _ = a.leadterm(S.eta)
            return (1 + sp.sign(lead)) / 2
        orientation = S.sign_in_unit_interval(b)
        if orientation is None:
            raise UnsupportedUpdateError(f"{self.where}: in {atom} the sign of the noise coefficient {b} is unknown")
        u = self.threshold(a, b)
        found = [s for s, v in self.table.items() if v.draw == d and sp.cancel(v.threshold - u) == 0]
        sym = found[0] if found else sp.Symbol(f"H_{len(self.table)}", real=True)
        self.table[sym] = Indicator(sym, d, u)
        return sym if orientation == 1 else 1 - sym

    def threshold(self, a: sp.Expr, b: sp.Expr) -> sp.Expr:
        """-a/b, readable: a collected in the variables (g, the states), common factors pulled out."""
        a, b = sp.factor_terms(a), sp.factor_terms(b)
        coeff, rest = a.as_independent(*self.variables, as_Add=False) if a.is_Mul else (sp.Integer(1), a)
        if rest.is_Add:
            rest = sp.collect(rest, [v for v in self.variables if rest.has(v)])
        return sp.Mul(-coeff, rest, 1 / b) if rest.is_Add else sp.cancel(-a / b)


def _eta_order(e: sp.Expr) -> sp.Expr:
    """The power of eta of the leading term of ``e`` as eta -> 0 (0 for an expression free of eta)."""
    if not e.has(S.eta):
        return sp.Integer(0)
    return e.leadterm(S.eta)[1]


def isolate(
    expr: sp.Expr, table: dict[sp.Symbol, Indicator], where: str, variables: tuple[sp.Symbol, ...] = (S.g,)
) -> sp.Expr:
    """``expr`` with its piecewise functions of the noise rewritten into indicators (added to
    ``table``); thresholds are written with their numerators collected in ``variables``."""
    out = _Isolator(table, where, tuple(variables)).rewrite(expr)
    return out.replace(
        lambda e: e.is_Pow and e.base in table and e.exp.is_Integer and e.exp > 0, lambda e: e.base
    )  # H^k = H


# ---------------------------------------------------------------------------------------------
# Expectations
# ---------------------------------------------------------------------------------------------
def _gaussian_law():
    from .noise import get_noise

    return get_noise("gaussian")


def _draw_mean(d: sp.Symbol, n: int, thresholds: list[sp.Expr], term: sp.Expr, sources: dict | None) -> sp.Expr:
    """E[d^n] or E[d^n; d > Max(thresholds)] for one draw."""
    gaussian = S.is_gaussian_draw(d)
    if not thresholds:
        if n % 2:
            return sp.Integer(0)
        if n == 0:
            return sp.Integer(1)
        return _gaussian_law().moment(n)[0] if gaussian else moment_symbol(n)
    u = sp.Max(*thresholds)
    if gaussian:
        law = _gaussian_law()
        return law.half_moment(n)[0] - law.partial(n, u)
    if n == 0:
        half = sp.Rational(1, 2)
    elif n % 2:
        half = abs_moment_symbol(n) / 2
    else:
        half = moment_symbol(n) / 2
    if sources is not None and n:
        sources.setdefault(n, term)
    return half - partial_call(n, u)


def expect(expr: sp.Expr, indicators: dict[sp.Symbol, Indicator], context: str, sources: dict | None = None) -> sp.Expr:
    """E[expr] over the draws of one step, with the law's moments and partial moments as
    placeholders (see the module docstring). ``sources`` (optional) collects, per order n, a
    term that needs the law's half moment h_n (for error messages)."""
    expr = expand_outside(expr, keep=lambda f: not is_random(f, indicators))
    total = []
    for term in sp.Add.make_args(expr):
        powers = term.as_powers_dict()
        hessian = [b for b in powers if isinstance(b, hvp) and is_random(b, indicators)]
        if hessian:  # E[c H u] = c H E[u] (coordinate by coordinate); H u times other noise needs diag(H)
            others = [b for b in powers if b not in hessian and is_random(b, indicators)]
            if len(hessian) > 1 or powers[hessian[0]] != 1 or others:
                raise UnsupportedUpdateError(
                    f"{context}: the term {shown(term, indicators)} multiplies the Hessian times the noise, "
                    f"{hessian[0]}, by other noise; its mean needs the Hessian's diagonal, which a coordinate-wise "
                    "SDE does not have"
                )
            total.append(term / hessian[0] * hvp(expect(hessian[0].args[0], indicators, context, sources)))
            continue
        per_draw: dict[sp.Symbol, list] = {}
        rest = sp.Integer(1)
        for base, e in powers.items():
            if isinstance(base, sp.Symbol) and (S.is_law_draw(base) or S.is_gaussian_draw(base)):
                if not (e.is_Integer and e >= 0):
                    raise UnsupportedUpdateError(
                        f"{context}: the term {shown(term, indicators)} has a non-integer power of the noise {base}"
                    )
                per_draw.setdefault(base, [0, []])[0] += int(e)
            elif base in indicators:
                if not (e.is_Integer and e > 0):
                    raise UnsupportedUpdateError(
                        f"{context}: the term {shown(term, indicators)} has a non-integer power of a piecewise function of the noise"
                    )
                ind = indicators[base]
                per_draw.setdefault(ind.draw, [0, []])[1].append(ind.threshold)
            else:
                rest *= base**e
        if S.draws_in(rest) or any(rest.has(h) for h in indicators):
            raise UnsupportedUpdateError(
                f"{context}: the term {shown(term, indicators)} is not polynomial in the noise (the factor {shown(rest, indicators)}); "
                "the engine averages polynomials in the noise draws and sign, Abs, Min, Max, Heaviside of affine functions of one draw"
            )
        value = rest
        for d, (n, thresholds) in per_draw.items():
            value *= _draw_mean(d, n, thresholds, shown(term, indicators), sources)
            if value == 0:
                break
        total.append(value)
    return sp.Add(*total)


def is_random(expr: sp.Expr, indicators: dict[sp.Symbol, Indicator]) -> bool:
    """Whether ``expr`` depends on the noise draws of the step."""
    return bool(S.draws_in(expr)) or any(expr.has(s) for s in indicators)
