"""Noise laws: standardized symmetric laws of zeta in g~ = g + sigma*zeta.

Each law knows its density p, its sign function s(y) = E[sign(y + zeta)] = 2F(y) - 1 obtained
from the CDF F (by integrating the density, never by SymPy's expectation of sign), its moments
E[zeta^n] (possibly infinite, possibly finite only under a condition on a symbolic parameter)
and p(0). Laws are scale-1 forms, as in the reference table: Laplace has density exp(-|z|)/2
(E[zeta^2] = 2), Uniform lives on [-1, 1] (E[zeta^2] = 1/3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import sympy as sp

from . import symbols as S
from .errors import DeriveError, UnknownNameError

_y = sp.Symbol("y", real=True)
_u = sp.Symbol("u", positive=True)


@dataclass(frozen=True, eq=False)
class NoiseLaw:
    """A symmetric law given by its density ``density(u)`` (in the dummy ``u``) on [-bound, bound].

    ``params`` records the law's parameters (e.g. nu) for provenance; ``conditions`` are filled
    by moments that need a condition on a symbolic parameter.
    """

    name: str
    density_expr: sp.Expr  # in terms of _u (positive dummy); the law is symmetric
    bound: sp.Expr = sp.oo
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({extra})" if extra else self.name

    def density(self, z: sp.Expr) -> sp.Expr:
        """p(z) for real z (using symmetry p(z) = p(|z|))."""
        return self.density_expr.subs(_u, sp.Abs(z))

    @cached_property
    def p0(self) -> sp.Expr:
        """Density at zero, p(0); the slope of s at 0 is 2 p(0)."""
        return sp.simplify(sp.limit(self.density_expr, _u, 0, "+"))

    # -- the CDF route for E[sign(y + zeta)] ------------------------------------------------
    def _s_positive(self) -> sp.Expr:
        """s(y) for 0 < y < bound: 2 F(y) - 1 = 2 * integral_0^y p(u) du."""
        yp = sp.Symbol("y", positive=True)
        return sp.simplify(2 * sp.integrate(self.density_expr, (_u, 0, yp))).subs(yp, _y)

    @cached_property
    def _s_expr(self) -> sp.Expr:
        inner = self._s_positive()
        odd = sp.simplify(inner.subs(_y, -_y) + inner) == 0
        if self.bound != sp.oo:
            if not odd:
                inner = sp.sign(_y) * inner.subs(_y, sp.Abs(_y))
            return sp.Piecewise((-1, _y < -self.bound), (inner, _y <= self.bound), (1, True))
        return inner if odd else sp.sign(_y) * inner.subs(_y, sp.Abs(_y))

    def s(self, y: sp.Expr) -> sp.Expr:
        """E[sign(y + zeta)] = 2F(y) - 1 for real y."""
        return self._s_expr.subs(_y, y)

    @lru_cache(maxsize=None)  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def s_series(self, y: sp.Expr, var: sp.Symbol, order: int) -> sp.Expr:
        """s(y) expanded in ``var`` up to var**order, for an argument y that vanishes at var = 0.

        Uses s(y) = 2 * integral_0^y p, expanding the density about 0 (p is even, so s is odd).
        """
        w = sp.Symbol("w", real=True)
        p_series = sp.series(self.density_expr.subs(_u, w), w, 0, order + 1).removeO()
        s_poly = 2 * sp.integrate(p_series, (w, 0, w))
        return sp.series(s_poly.subs(w, y), var, 0, order + 1).removeO()

    # -- moments ----------------------------------------------------------------------------
    def moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """E[zeta^n] and the condition (on a symbolic parameter) under which it is finite.

        Returns (sympy.oo, None) for a moment that is infinite.
        """
        if n % 2:
            return sp.Integer(0), None
        return self._even_moment(n), None

    @lru_cache(maxsize=None)  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def _even_moment(self, n: int) -> sp.Expr:
        """2 * integral_0^bound u^n p(u) du; by quadrature (a Float) when SymPy finds no closed form."""
        integrand = 2 * _u**n * self.density_expr
        value = sp.integrate(integrand, (_u, 0, self.bound))
        if value.has(sp.Integral):
            value = sp.Integral(integrand, (_u, 0, self.bound)).evalf()
            if not (value.is_number and value.is_finite):
                raise DeriveError(f"cannot decide whether E[zeta^{n}] is finite for the {self.label} law")
        return sp.oo if value.has(sp.oo, sp.zoo) else sp.simplify(value)


@dataclass(frozen=True, eq=False)
class StudentT(NoiseLaw):
    """Student-t with nu degrees of freedom (nu a positive number or the symbol nu)."""

    nu: sp.Expr = S.nu

    @property
    def _integer_nu(self) -> bool:
        return bool(self.nu.is_Integer)

    def _s_positive(self) -> sp.Expr:
        # F(y) - 1/2 = integral_0^y p. For integer nu, substitute u = sqrt(nu) tan(theta):
        # p(u) du = c sqrt(nu) cos(theta)^(nu-1) d theta, an elementary integral.
        nu = self.nu
        if not self._integer_nu:
            # The regularized incomplete beta form of the Student-t CDF.
            return 1 - sp.betainc_regularized(nu / 2, sp.Rational(1, 2), 0, nu / (nu + _y**2))
        c = sp.gamma((nu + 1) / 2) / (sp.sqrt(nu * sp.pi) * sp.gamma(nu / 2))
        th, upper = sp.Symbol("theta_"), sp.Symbol("T", positive=True)
        integral = sp.integrate(sp.cos(th) ** (nu - 1), (th, 0, upper))
        yp = sp.Symbol("y", positive=True)
        return sp.simplify(2 * c * sp.sqrt(nu) * integral.subs(upper, sp.atan(yp / sp.sqrt(nu)))).subs(yp, _y)

    @cached_property
    def _s_expr(self) -> sp.Expr:
        inner = self._s_positive()
        if not self._integer_nu:
            return sp.sign(_y) * inner
        return inner if sp.simplify(inner.subs(_y, -_y) + inner) == 0 else sp.sign(_y) * inner.subs(_y, sp.Abs(_y))

    @lru_cache(maxsize=None)  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """E[zeta^n] = nu^(n/2) Gamma((n+1)/2) Gamma((nu-n)/2) / (sqrt(pi) Gamma(nu/2)), n < nu."""
        if n % 2:
            return sp.Integer(0), None
        nu = self.nu
        if nu.is_number and nu <= n:
            return sp.oo, None
        value = sp.gammasimp(nu ** sp.Rational(n, 2) * sp.gamma(sp.Rational(n + 1, 2)) * sp.gamma((nu - n) / 2)
                             / (sp.sqrt(sp.pi) * sp.gamma(nu / 2)))
        return sp.factor(value), (None if nu.is_number else f"nu > {n}")


@dataclass(frozen=True, eq=False)
class CdfLaw(NoiseLaw):
    """A user law given by its CDF F(y); s(y) = 2F(y) - 1 directly."""

    cdf: sp.Expr = sp.Integer(0)

    def _s_positive(self) -> sp.Expr:
        return 2 * self.cdf - 1

    @cached_property
    def _s_expr(self) -> sp.Expr:
        return sp.simplify(2 * self.cdf - 1)


def _gaussian() -> NoiseLaw:
    return NoiseLaw("gaussian", sp.exp(-_u**2 / 2) / sp.sqrt(2 * sp.pi))


def _parse_nu(nu: object) -> sp.Expr:
    if nu is None or (isinstance(nu, str) and nu.strip() == "nu"):
        return S.nu
    try:
        value = sp.nsimplify(sp.sympify(nu), rational=True)
    except (sp.SympifyError, TypeError, ValueError):
        value = None
    if value is None or not value.is_number or not value.is_real or value <= 0 or not value.is_finite:
        raise DeriveError(f"nu must be a positive finite number or 'nu' (symbolic), got {nu!r}")
    return value


def _student_t(nu: object) -> StudentT:
    value = _parse_nu(nu)
    density = sp.gamma((value + 1) / 2) / (sp.sqrt(value * sp.pi) * sp.gamma(value / 2)) * (1 + _u**2 / value) ** (-(value + 1) / 2)
    return StudentT("student-t", density, params={"nu": value}, nu=value)


def cdf_law(cdf: "str | sp.Expr", name: str | None = None) -> CdfLaw:
    """A symmetric law from its CDF, an expression in ``y``; checked to be a symmetric CDF."""
    text = str(cdf)
    try:
        expr = sp.sympify(cdf, locals={"y": _y, "pi": sp.pi, "E": sp.E}) if isinstance(cdf, str) else sp.sympify(cdf)
    except (sp.SympifyError, TypeError) as exc:
        raise DeriveError(f"cannot parse the CDF {text!r}: {exc}") from None
    extra = sorted(s.name for s in expr.free_symbols if s.name != "y")
    if extra:
        raise DeriveError(f"the CDF {text!r} may depend on y only; it also uses {', '.join(extra)}")
    expr = expr.xreplace({s: _y for s in expr.free_symbols})
    if sp.simplify(expr + expr.subs(_y, -_y) - 1) != 0:
        raise DeriveError(f"the CDF {text!r} is not symmetric: F(y) + F(-y) != 1; only symmetric laws are supported")
    lo, hi = sp.limit(expr, _y, -sp.oo), sp.limit(expr, _y, sp.oo)
    if lo != 0 or hi != 1:
        raise DeriveError(f"the CDF {text!r} is not a CDF: its limits are {lo} at -oo and {hi} at +oo (need 0 and 1)")
    density = sp.simplify(sp.diff(expr, _y)).subs(_y, _u)
    return CdfLaw(name or f"cdf:{text}", density, cdf=expr)


NAMES = ("gaussian", "student-t", "cauchy", "laplace", "uniform", "cdf:EXPR")
#: The built-in laws at their defaults (student-t with a symbolic nu).
BUILTIN_LAWS = ("gaussian", "student-t", "cauchy", "laplace", "uniform")


def get_noise(name: "str | NoiseLaw", nu: object = None) -> NoiseLaw:
    """A noise law by name (see :data:`NAMES`); ``nu`` only for student-t."""
    if isinstance(name, NoiseLaw):
        return name
    key = str(name).strip()
    if key.lower().startswith("cdf:"):
        return _cached(("cdf", key[4:]), lambda: cdf_law(key[4:]))
    key = key.lower()
    if nu is not None and key != "student-t":
        raise DeriveError(f"--nu is only meaningful for the student-t law, not {key!r}")
    if key == "gaussian":
        return _cached(("gaussian",), _gaussian)
    if key in ("student-t", "studentt", "t"):
        return _cached(("student-t", str(_parse_nu(nu))), lambda: _student_t(nu))
    if key == "cauchy":
        return _cached(("cauchy",), lambda: StudentT("cauchy", 1 / (sp.pi * (1 + _u**2)), nu=sp.Integer(1)))
    if key == "laplace":
        return _cached(("laplace",), lambda: NoiseLaw("laplace", sp.exp(-_u) / 2))
    if key == "uniform":
        return _cached(("uniform",), lambda: NoiseLaw("uniform", sp.Rational(1, 2), bound=sp.Integer(1)))
    raise UnknownNameError("noise law", name, NAMES)


_LAWS: dict[tuple, NoiseLaw] = {}


def _cached(key: tuple, make) -> NoiseLaw:
    """One law object per name, so its derived s(y) and moments are computed once a process."""
    if key not in _LAWS:
        _LAWS[key] = make()
    return _LAWS[key]
