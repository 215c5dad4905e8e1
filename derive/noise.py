"""Noise laws: standardized symmetric laws of zeta in g~ = g + sigma*zeta.

Each law knows its density p, its sign function s(y) = E[sign(y + zeta)] = 2F(y) - 1 obtained
from the CDF F (by integrating the density, never by SymPy's expectation of sign), its moments
E[zeta^n] (possibly infinite, possibly finite only under a condition on a symbolic parameter)
and p(0). Laws are scale-1 forms, as in the reference table: Laplace has density exp(-|z|)/2
(E[zeta^2] = 2), Uniform lives on [-1, 1] (E[zeta^2] = 1/3).

Partial moments (reference section 2b). With K_n(u) = integral_0^u z^n p(z) dz, finite for every
finite u under every law, and the half moment h_n = integral_0^oo z^n p(z) dz (possibly infinite),

    M_n(u) = E[zeta^n; zeta < u] = (-1)^n h_n + K_n(u),    E[zeta^n; zeta > u] = h_n - K_n(u),

so a piece of a piecewise function supported on a finite interval (u1, u2) averages to
K_n(u2) - K_n(u1) without any moment condition; h_n enters only through pieces unbounded in zeta.
K_0 = s/2. Closed forms: Gaussian K_n = -u^(n-1) phi(u) + (n-1) K_(n-2) (K_1 = phi(0) - phi(u));
Student-t K_1 = p(0) nu/(nu - 1) (1 - (1 + u^2/nu)^((1 - nu)/2)) (Cauchy: log(1 + u^2)/(2 pi)) and,
for n >= 2 and a real nu, K_n = p(0) nu^((n+1)/2) B(u^2/(nu + u^2); (n+1)/2, (nu-n)/2) / 2 (the
incomplete beta function, a hypergeometric function for nu <= n); integer nu, Laplace, uniform and
user CDF laws (p = F') by exact integration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property

import mpmath
import sympy as sp

from . import symbols as S
from .errors import DeriveError, UnknownNameError
from .parsing import NUMBER_NAMES, ExpressionError, parse_expression, parse_number

_y = sp.Symbol("y", real=True)
_u = sp.Symbol("u", positive=True)
_w = sp.Symbol("w", positive=True)


def _parity_extension(positive: sp.Expr, odd: bool) -> sp.Expr:
    """The odd (or even) function of real _y equal to ``positive`` (an expression in _w) for y > 0."""
    direct = positive.subs(_w, _y)
    mirrored = direct.subs(_y, -_y)
    gap = mirrored + direct if odd else mirrored - direct
    if sp.expand(gap) == 0 or sp.simplify(gap) == 0:
        return direct
    inner = positive.subs(_w, sp.Abs(_y))
    return sp.sign(_y) * inner if odd else inner


def _exact_number(integrand: sp.Expr, var: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    """integral_lo^hi integrand d var, exactly: SymPy's closed form, else the quadrature's value
    identified as a rational combination of pi^k, log 2 and zeta(3) (checked to 40 digits), else
    the unevaluated integral itself (exact; evaluated numerically only where code is printed)."""
    value = sp.integrate(integrand, (var, lo, hi))
    if not value.has(sp.Integral):
        return sp.oo if value.has(sp.oo, sp.zoo) else sp.simplify(value)
    if hi == sp.oo and sp.limit(var * integrand, var, sp.oo) != 0:
        return sp.oo  # decays no faster than 1/var: the integral diverges
    f = sp.lambdify(var, integrand, modules="mpmath")
    with mpmath.workdps(60):
        number = mpmath.quad(f, [float(lo) if lo.is_finite else -mpmath.inf, mpmath.inf if hi == sp.oo else float(hi)])
        if not mpmath.isfinite(number):
            return sp.oo
        for constants in ([f"pi**{k}" for k in range(1, 9)], ["pi", "log(2)", "zeta(3)"]):
            for c in ([x] for x in constants) if len(constants) > 3 else [constants]:
                found = mpmath.identify(number, c, tol=mpmath.mpf(10) ** -45)
                if found:
                    candidate = sp.nsimplify(sp.sympify(found), rational=True)
                    if abs(sp.N(candidate, 60) - sp.Float(number, 60)) < sp.Float(10) ** -40 * max(
                        1, abs(sp.Float(number, 60))
                    ):
                        return candidate
    return sp.Integral(integrand, (var, lo, hi))


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

    # -- partial moments (reference section 2b) ----------------------------------------------
    def _partial_positive(self, n: int) -> sp.Expr:
        """K_n(w) = integral_0^w z^n p(z) dz for 0 < w < bound, in the dummy _w."""
        return sp.integrate(_u**n * self.density_expr, (_u, 0, _w))

    @cache  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def _partial_expr(self, n: int) -> sp.Expr:
        """K_n(y) for real y, in the dummy _y (odd in y for even n, even for odd n)."""
        if n == 0:
            return self.s(_y) / 2
        inner = self._partial_positive(n)
        if inner.has(sp.Integral):
            raise DeriveError(
                f"cannot integrate z^{n} p(z) in closed form for the {self.label} law "
                f"(needed for E[zeta^{n}; zeta < u])"
            )
        body = _parity_extension(inner, odd=(n % 2 == 0))
        if self.bound == sp.oo:
            return body
        edge = inner.subs(_w, self.bound)
        return sp.Piecewise(((-1) ** (n + 1) * edge, _y < -self.bound), (body, _y <= self.bound), (edge, True))

    def partial(self, n: int, u: sp.Expr) -> sp.Expr:
        """K_n(u) = integral_0^u z^n p(z) dz, finite for every finite u."""
        return self._partial_expr(n).subs(_y, u)

    @cache  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def half_moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """h_n = integral_0^oo z^n p(z) dz = E[|zeta|^n] / 2, and the condition (on a symbolic
        parameter) under which it is finite; (sympy.oo, None) when it is infinite."""
        if n % 2 == 0:
            value, condition = self.moment(n)
            return (sp.oo if value == sp.oo else value / 2), condition
        return _exact_number(_u**n * self.density_expr, _u, sp.Integer(0), self.bound), None

    def abs_moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """E[|zeta|^n] and its condition (see :meth:`half_moment`)."""
        value, condition = self.half_moment(n)
        return (sp.oo if value == sp.oo else 2 * value), condition

    def partial_moment(self, n: int, u: sp.Expr) -> sp.Expr:
        """M_n(u) = E[zeta^n; zeta < u] = (-1)^n h_n + K_n(u) (sympy.oo or -oo where h_n is infinite)."""
        half, _ = self.half_moment(n)
        if half == sp.oo:
            return (-1) ** n * sp.oo
        return (-1) ** n * half + self.partial(n, u)

    def partial_series(self, n: int, u: sp.Expr, var: sp.Symbol, order: int) -> sp.Expr:
        """K_n(u) expanded in ``var`` through var**order, for an argument u that vanishes at var = 0.

        With the density's Taylor series p(z) = sum_j q_j |z|^j at 0+, K_n(u) = sum_j q_j u^(n+1)
        |u|^j / (n + j + 1) (for any sign of u; odd j are the terms of a law not smooth at 0, as
        Laplace's)."""
        r = sp.Symbol("r", positive=True)
        coeffs = sp.Poly(sp.series(self.density_expr.subs(_u, r), r, 0, order + 1).removeO(), r).all_coeffs()[::-1]
        w, power = u.as_independent(var, as_Add=False)
        _, p = power.as_base_exp() if power != 1 else (var, sp.Integer(0))
        if power.as_base_exp()[0] == var and p.is_positive and not w.has(var):  # u = var^p w: a polynomial in var
            return sum(
                (
                    q * power ** (n + 1 + j) * w ** (n + 1) * sp.Abs(w) ** j / (n + j + 1)
                    for j, q in enumerate(coeffs)
                    if p * (n + 1 + j) <= order
                ),
                sp.Integer(0),
            )
        total = sum((q * u ** (n + 1) * sp.Abs(u) ** j / (n + j + 1) for j, q in enumerate(coeffs)), sp.Integer(0))
        return sp.series(total, var, 0, order + 1).removeO()

    def partial_taylor(self, n: int, u: sp.Expr, u0: sp.Expr, terms: int) -> sp.Expr:
        """K_n(u) as its Taylor polynomial about u0 != 0 with ``terms`` derivative terms:
        K_n(u0) + sum_j (u - u0)^j / j! d^(j-1)/dz^(j-1) [z^n p(z)] at z = u0."""
        z = sp.Symbol("z", real=True)
        f = z**n * self.density(z)
        out = self.partial(n, u0)
        for j in range(1, terms + 1):
            out += (u - u0) ** j / sp.factorial(j) * f.subs(z, u0)
            f = sp.diff(f, z)
        return out

    def sign_tail(self, y: sp.Expr) -> sp.Expr | None:
        """1 - |s(y)| in a form free of cancellation, where the law's s(y) is written through it
        (Student-t with a non-integer or symbolic nu); None for other laws."""
        return None

    # -- moments ----------------------------------------------------------------------------
    def moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """E[zeta^n] and the condition (on a symbolic parameter) under which it is finite.

        Returns (sympy.oo, None) for a moment that is infinite; odd moments are 0 by symmetry.
        """
        if n % 2:
            return sp.Integer(0), None
        return self._even_moment(n), None

    @cache  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def _even_moment(self, n: int) -> sp.Expr:
        """2 * integral_0^bound u^n p(u) du, exactly (see _exact_number)."""
        value = _exact_number(2 * _u**n * self.density_expr, _u, sp.Integer(0), self.bound)
        return value


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

    @cache  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """E[zeta^n] = nu^(n/2) Gamma((n+1)/2) Gamma((nu-n)/2) / (sqrt(pi) Gamma(nu/2)), n < nu."""
        if n % 2:
            return sp.Integer(0), None
        return self._absolute(n)

    def _absolute(self, n: int) -> tuple[sp.Expr, str | None]:
        """E|zeta|^n by the formula of :meth:`moment` (any n), with its condition nu > n."""
        nu = self.nu
        if nu.is_number and nu <= n:
            return sp.oo, None
        value = sp.gammasimp(
            nu ** sp.Rational(n, 2)
            * sp.gamma(sp.Rational(n + 1, 2))
            * sp.gamma((nu - n) / 2)
            / (sp.sqrt(sp.pi) * sp.gamma(nu / 2))
        )
        return sp.factor(value), (None if nu.is_number else f"nu > {n}")

    @cache  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def half_moment(self, n: int) -> tuple[sp.Expr, str | None]:
        if n == 0:
            return sp.Rational(1, 2), None
        value, condition = self._absolute(n)
        return (sp.oo if value == sp.oo else value / 2), condition

    def _partial_positive(self, n: int) -> sp.Expr:
        nu, w = self.nu, _w
        c = sp.gamma((nu + 1) / 2) / (sp.sqrt(nu * sp.pi) * sp.gamma(nu / 2))
        if n == 1:
            if nu == 1:
                return sp.log(1 + w**2) / (2 * sp.pi)
            return c * nu / (nu - 1) * (1 - (1 + w**2 / nu) ** ((1 - nu) / 2))
        if self._integer_nu:
            return sp.simplify(sp.integrate(_u**n * self.density_expr, (_u, 0, w)))
        return (
            c / 2 * nu ** sp.Rational(n + 1, 2) * sp.betainc(sp.Rational(n + 1, 2), (nu - n) / 2, 0, w**2 / (nu + w**2))
        )

    def sign_tail(self, y: sp.Expr) -> sp.Expr | None:
        """1 - |s(y)| = I_{nu/(nu + y^2)}(nu/2, 1/2) (the two-sided tail 2F(-|y|)) for a real nu."""
        if self._integer_nu:
            return None
        return sp.betainc_regularized(self.nu / 2, sp.Rational(1, 2), 0, self.nu / (self.nu + y**2))


@dataclass(frozen=True, eq=False)
class CdfLaw(NoiseLaw):
    """A user law given by its CDF F(y); s(y) = 2F(y) - 1 directly."""

    cdf: sp.Expr = sp.Integer(0)

    def _s_positive(self) -> sp.Expr:
        return 2 * self.cdf - 1

    @cached_property
    def _s_expr(self) -> sp.Expr:
        return sp.simplify(2 * self.cdf - 1)

    @cached_property
    def _derivative(self) -> sp.Expr:
        """p = F' as differentiated (unsimplified forms integrate more readily), in _u."""
        return sp.diff(self.cdf, _y).subs(_y, _u)

    def _partial_positive(self, n: int) -> sp.Expr:
        return sp.integrate(_u**n * self._derivative, (_u, 0, _w))

    @cache  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def _even_moment(self, n: int) -> sp.Expr:
        return _exact_number(2 * _u**n * self._derivative, _u, sp.Integer(0), self.bound)

    @cache  # noqa: B019 - laws are process-lifetime singletons (see get_noise)
    def half_moment(self, n: int) -> tuple[sp.Expr, str | None]:
        if n % 2 == 0:
            return super().half_moment(n)
        return _exact_number(_u**n * self._derivative, _u, sp.Integer(0), self.bound), None


@dataclass(frozen=True, eq=False)
class Gaussian(NoiseLaw):
    """The standard normal law; K_n by the recursion K_n = -w^(n-1) phi(w) + (n-1) K_(n-2)."""

    def _s_positive(self) -> sp.Expr:
        return sp.erf(_y / sp.sqrt(2))

    def moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """E[zeta^n] = (n - 1)!! for even n."""
        return (sp.Integer(0) if n % 2 else sp.factorial2(n - 1)), None

    def half_moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """h_n = 2^(n/2) Gamma((n + 1)/2) / (2 sqrt(pi))."""
        return sp.gammasimp(2 ** sp.Rational(n, 2) * sp.gamma(sp.Rational(n + 1, 2)) / (2 * sp.sqrt(sp.pi))), None

    def _partial_positive(self, n: int) -> sp.Expr:
        phi = self.density_expr.subs(_u, _w)
        if n == 0:
            return sp.erf(_w / sp.sqrt(2)) / 2
        if n == 1:
            return (1 - sp.exp(-(_w**2) / 2)) / sp.sqrt(2 * sp.pi)
        return sp.expand(-(_w ** (n - 1)) * phi + (n - 1) * self._partial_positive(n - 2))


@dataclass(frozen=True, eq=False)
class Laplace(NoiseLaw):
    """Density exp(-|z|)/2: s(y) = sign(y) (1 - exp(-|y|)), tail 1 - |s| = exp(-|y|)."""

    def sign_tail(self, y: sp.Expr) -> sp.Expr | None:
        return sp.exp(-sp.Abs(y))

    def half_moment(self, n: int) -> tuple[sp.Expr, str | None]:
        """h_n = integral_0^oo z^n exp(-z)/2 dz = n!/2."""
        return sp.factorial(n) / 2, None


def _gaussian() -> NoiseLaw:
    return Gaussian("gaussian", sp.exp(-(_u**2) / 2) / sp.sqrt(2 * sp.pi))


def _parse_nu(nu: object) -> sp.Expr:
    if nu is None or (isinstance(nu, str) and nu.strip() == "nu"):
        return S.nu
    try:
        value = sp.nsimplify(parse_number(nu, "nu"), rational=True)
    except ExpressionError as exc:
        raise DeriveError(f"nu must be a positive finite number or 'nu' (symbolic), got {nu!r}: {exc.reason}") from None
    except (TypeError, ValueError):
        value = None
    if value is None or not value.is_number or not value.is_real or value <= 0 or not value.is_finite:
        raise DeriveError(f"nu must be a positive finite number or 'nu' (symbolic), got {nu!r}")
    return value


def _student_t(nu: object) -> StudentT:
    value = _parse_nu(nu)
    density = (
        sp.gamma((value + 1) / 2)
        / (sp.sqrt(value * sp.pi) * sp.gamma(value / 2))
        * (1 + _u**2 / value) ** (-(value + 1) / 2)
    )
    return StudentT("student-t", density, params={"nu": value}, nu=value)


#: functions a CDF given as text may use (with the names y, pi and E)
CDF_FUNCTIONS = {
    f.__name__: f
    for f in (sp.sqrt, sp.exp, sp.log, sp.erf, sp.erfc, sp.atan, sp.tanh, sp.sinh, sp.cosh, sp.asinh, sp.Abs, sp.sign)
} | {"Min": sp.Min, "Max": sp.Max}


def cdf_law(cdf: str | sp.Expr, name: str | None = None) -> CdfLaw:
    """A symmetric law from its CDF, an expression in ``y``; checked to be a symmetric CDF."""
    text = str(cdf)
    try:
        expr = (
            parse_expression(  # other names become symbols, refused below by name
                cdf,
                names={"y": _y, **NUMBER_NAMES},
                functions=CDF_FUNCTIONS,
                where=f"the CDF {text!r}",
                new_symbol=sp.Symbol,
            )
            if isinstance(cdf, str)
            else sp.sympify(cdf, strict=True)
        )
    except sp.SympifyError as exc:
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


def get_noise(name: str | NoiseLaw, nu: object = None) -> NoiseLaw:
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
        return _cached(("laplace",), lambda: Laplace("laplace", sp.exp(-_u) / 2))
    if key == "uniform":
        return _cached(("uniform",), lambda: NoiseLaw("uniform", sp.Rational(1, 2), bound=sp.Integer(1)))
    raise UnknownNameError("noise law", name, NAMES)


_LAWS: dict[tuple, NoiseLaw] = {}


def _cached(key: tuple, make) -> NoiseLaw:
    """One law object per name, so its derived s(y) and moments are computed once a process."""
    if key not in _LAWS:
        _LAWS[key] = make()
    return _LAWS[key]
