"""The standard bivariate normal law: its CDF Phi2 and its truncated moments (reference section 9).

(X, Y) standard normal with correlation r, s = sqrt(1 - r^2); Phi, phi the univariate CDF and density.

**Phi2(h, k, r) = P(X < h, Y < k)**, a SymPy function of the engine: printed and parsed by that name,
differentiated by

    d/dh Phi2 = phi(h) Phi((k - r h)/s),   d/dk Phi2 = phi(k) Phi((h - r k)/s),
    d/dr Phi2 = phi2(h, k; r) = exp(-(h^2 - 2 r h k + k^2)/(2 s^2)) / (2 pi s)   (Plackett 1954),

with its known values: Phi2(0, 0, r) = 1/4 + asin(r)/(2 pi) (Sheppard), Phi2(h, k, 0) = Phi(h) Phi(k),
Phi2(h, k, 1) = Phi(min(h, k)), Phi2(h, k, -1) = max(0, Phi(h) - Phi(-k)), and its limits at h, k = +-oo.
Numbers (``evalf``, any precision) come from :func:`phi2_mpmath`; the float64 kernel of the simulators
is :func:`derive.runtime.bvn.phi2`.

**Representation.** Integrating Plackett's identity from r = -1, with u = sin(theta) = tanh(log w)::

    Phi2(h, k, r) = max(0, Phi(h) - Phi(-k))
                    + (1/pi) e^{-(h^2 + k^2)/4} [ int_0^{min(1, W)} q_{A,B}(w) dw + [W > 1] int_{1/W}^1 q_{B,A}(w) dw ],
    q_{A,B}(w) = exp(-(A w^2 + B / w^2)/2) / (1 + w^2),   A = (h - k)^2/4,  B = (h + k)^2/4,
    W = sqrt((1 + r)/(1 - r)),

(the piece on [1, W] mapped by w -> 1/w): every term is non-negative, so relative accuracy survives
far in the tails, where the textbook forms subtract nearly equal numbers. With t = sqrt(A) w - sqrt(B)/w
(increasing in w), A w^2 + B/w^2 = t^2 + 2 sqrt(A B): the exponential factor is a Gaussian in t, which
places every breakpoint of the quadrature.

**Truncated moments** L_{p,q}(U, V) = E[X^p Y^q; X > U, Y > V] (Tallis 1961; here by Stein's identity
E[X f(X, Y)] = E[d_x f] + r E[d_y f] with f = X^(p-1) Y^q 1[X > U] 1[Y > V]):

    L_{0,0} = Phi2(-U, -V, r),   L_{0,q}(U, V) = L_{q,0}(V, U) (roles exchanged), and for p >= 1
    L_{p,q} = (p - 1) L_{p-2,q} + U^(p-1) phi(U) A_q(U, V) + r [q L_{p-1,q-1} + V^q phi(V) A_{p-1}(V, U)],
    A_q(U, V) = E[Y^q; Y > V | X = U] = sum_k C(q, k) (r U)^(q-k) s^k T_k((V - r U)/s),
    T_k(c) = E[Z^k; Z > c]:  T_0 = Phi(-c), T_1 = phi(c), T_k = c^(k-1) phi(c) + (k - 1) T_(k-2).

E.g. L_{1,0} = phi(U) Phi((r U - V)/s) + r phi(V) Phi((r V - U)/s) and
L_{1,1} = r Phi2(-U, -V, r) + r U phi(U) Phi((r U - V)/s) + r V phi(V) Phi((r V - U)/s) + s phi(U) phi((V - r U)/s);
tests/test_bivariate.py checks the recursion by quadrature.
"""

from __future__ import annotations

from functools import lru_cache

import mpmath
import sympy as sp


def normal_cdf(x: sp.Expr) -> sp.Expr:
    """Phi(x) = (1 + erf(x/sqrt 2))/2, in the erf form the engine writes the Gaussian law's s(y) in."""
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


def normal_pdf(x: sp.Expr) -> sp.Expr:
    """phi(x) = exp(-x^2/2)/sqrt(2 pi)."""
    return sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)


class Phi2(sp.Function):
    """Phi2(h, k, r) = P(X < h, Y < k) for a standard bivariate normal (X, Y) with correlation r."""

    nargs = 3

    @classmethod
    def eval(cls, h, k, r):
        if r.is_zero:
            return normal_cdf(h) * normal_cdf(k)
        if h.is_zero and k.is_zero:
            return sp.Rational(1, 4) + sp.asin(r) / (2 * sp.pi)
        if r == 1:
            return normal_cdf(sp.Min(h, k))
        if r == -1:
            return sp.Max(0, normal_cdf(h) - normal_cdf(-k))
        if h is sp.S.NegativeInfinity or k is sp.S.NegativeInfinity:
            return sp.Integer(0)
        if h is sp.S.Infinity:
            return normal_cdf(k)
        if k is sp.S.Infinity:
            return normal_cdf(h)
        if sp.default_sort_key(k) < sp.default_sort_key(h):  # symmetric in (h, k): one canonical order
            return cls(k, h, r)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        h, k, r = self.args
        s = sp.sqrt(1 - r**2)
        if argindex == 1:
            return normal_pdf(h) * normal_cdf((k - r * h) / s)
        if argindex == 2:
            return normal_pdf(k) * normal_cdf((h - r * k) / s)
        if argindex == 3:
            return sp.exp(-(h**2 - 2 * r * h * k + k**2) / (2 * (1 - r**2))) / (2 * sp.pi * s)
        raise sp.ArgumentIndexError(self, argindex)

    def _eval_evalf(self, prec: int) -> sp.Float | None:
        if not all(a.is_number for a in self.args):
            return None
        with mpmath.workprec(prec + 20):
            h, k, r = (mpmath.mpf(sp.Float(a, prec + 20)) for a in self.args)
            value = phi2_mpmath(h, k, r)
        return sp.Float(value, precision=prec)

    def _latex(self, printer, exp=None) -> str:
        h, k, r = (printer._print(a) for a in self.args)
        base = rf"\Phi_{{2}}\left({h}, {k}; {r}\right)"
        return base if exp is None else rf"{base}^{{{exp}}}"


def phi2_mpmath(h, k, r) -> mpmath.mpf:
    """Phi2(h, k, r) at mpmath's working precision (relative accuracy, tails included), by the
    all-positive representation of the module docstring: each piece is integrated by tanh-sinh
    quadrature between breakpoints where the Gaussian factor e^{-t^2/2} has moved by one e-fold, the
    integrand scaled to peak near 1 (mpmath's error control is absolute)."""
    h, k, r = mpmath.mpf(h), mpmath.mpf(k), mpmath.mpf(r)
    if not (-1 <= r <= 1):
        raise ValueError(f"Phi2 needs a correlation r in [-1, 1], got {r}")
    if r == 1:
        return mpmath.ncdf(min(h, k))
    if r == -1:
        return max(mpmath.mpf(0), mpmath.ncdf(h) - mpmath.ncdf(-k))
    A, B = (h - k) ** 2 / 4, (h + k) ** 2 / 4
    W = mpmath.sqrt((1 + r) / (1 - r))
    lo, hi = min(h, k), max(h, k)
    base = max(mpmath.mpf(0), mpmath.ncdf(lo) - mpmath.ncdf(-hi))  # = Phi(h) - Phi(-k), both in the lower tail
    total = _piece(A, B, mpmath.mpf(0), min(mpmath.mpf(1), W))
    if W > 1:
        total += _piece(B, A, 1 / W, mpmath.mpf(1))
    return base + total * mpmath.exp(-(h * h + k * k) / 4) / mpmath.pi


def _w_of_t(t, A, B):
    """The w > 0 with sqrt(A) w - sqrt(B)/w = t (each branch in its cancellation-free form)."""
    c = mpmath.sqrt(t * t + 4 * mpmath.sqrt(A * B))
    return (t + c) / (2 * mpmath.sqrt(A)) if t >= 0 else 2 * mpmath.sqrt(B) / (c - t)


def _piece(A, B, a, b):
    """int_a^b q_{A,B}(w) dw for 0 <= a < b <= 1 (see :func:`phi2_mpmath`)."""
    if not a < b:
        return mpmath.mpf(0)
    sa, sb = mpmath.sqrt(A), mpmath.sqrt(B)
    ta = (-mpmath.inf if B > 0 else mpmath.mpf(0)) if a == 0 else sa * a - sb / a
    tb = sa * b - sb / b
    tm = min(max(mpmath.mpf(0), ta), tb)  # the t of the largest Gaussian factor on [a, b]
    scale = tm * tm / 2 + sa * sb  # minus the log of that factor

    def f(w):
        if w == 0:
            return mpmath.mpf(1) if B == 0 else mpmath.mpf(0)
        return mpmath.exp(scale - (A * w * w + B / (w * w)) / 2) / (1 + w * w)

    points = {a, b}
    for w in (mpmath.mpf(1) / 16, mpmath.mpf(1) / 4, mpmath.mpf(1) / 2):  # the scale of 1/(1 + w^2)
        if a < w < b:
            points.add(w)
    cut = mpmath.mp.dps * mpmath.log(10) + 10  # e^{-cut} is below the working precision
    drop = mpmath.mpf(1) / 4
    while drop <= 2 * cut:  # where the Gaussian factor has fallen by 1/4, 1/2, 1, 2, 4, ... e-folds
        t2 = tm * tm + 2 * drop
        for t in (-mpmath.sqrt(t2), mpmath.sqrt(t2)):
            if ta < t < tb:
                points.add(_w_of_t(t, A, B))
        drop *= 2
    if ta < tm < tb:
        points.add(_w_of_t(tm, A, B))
    return mpmath.quad(f, sorted(points)) * mpmath.exp(-scale)


# ---------------------------------------------------------------------------------------------
# Truncated moments
# ---------------------------------------------------------------------------------------------
def _upper_moment(k: int, c: sp.Expr) -> sp.Expr:
    """T_k(c) = E[Z^k; Z > c] for Z ~ N(0, 1)."""
    if k == 0:
        return normal_cdf(-c)
    if k == 1:
        return normal_pdf(c)
    return c ** (k - 1) * normal_pdf(c) + (k - 1) * _upper_moment(k - 2, c)


def _conditional_upper(q: int, u: sp.Expr, v: sp.Expr, r: sp.Expr) -> sp.Expr:
    """A_q(u, v) = E[Y^q; Y > v | X = u] (Y | X = u is N(r u, 1 - r^2))."""
    s = sp.sqrt(1 - r**2)
    c = (v - r * u) / s
    return sp.Add(*[sp.binomial(q, k) * (r * u) ** (q - k) * s**k * _upper_moment(k, c) for k in range(q + 1)])


@lru_cache(maxsize=1024)
def tail_moment(p: int, q: int, U: sp.Expr, V: sp.Expr, r: sp.Expr) -> sp.Expr:
    """L_{p,q}(U, V) = E[X^p Y^q; X > U, Y > V] for the standard bivariate normal with correlation r
    (the recursion of the module docstring)."""
    if p < 0 or q < 0:
        return sp.Integer(0)
    if p == 0 and q == 0:
        return Phi2(-U, -V, r)
    if p == 0:
        return tail_moment(q, 0, V, U, r)
    return (
        (p - 1) * tail_moment(p - 2, q, U, V, r)
        + U ** (p - 1) * normal_pdf(U) * _conditional_upper(q, U, V, r)
        + r * (q * tail_moment(p - 1, q - 1, U, V, r) + V**q * normal_pdf(V) * _conditional_upper(p - 1, V, U, r))
    )


def lambdify_modules() -> list:
    """The ``modules`` argument of ``sympy.lambdify`` for expressions with Phi2: the float64 kernel
    :func:`derive.runtime.bvn.phi2_ufunc` (NumPy arrays broadcast), then SciPy and NumPy."""
    from .runtime.bvn import phi2_ufunc

    return [{"Phi2": phi2_ufunc}, "scipy", "numpy"]
