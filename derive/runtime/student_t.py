"""The Student-t CDF for the generated SDE kernels: the regularized incomplete beta function.

With x = nu/(nu + y^2) and its complement xc = y^2/(nu + y^2) (both computed without cancellation),

    F(-|y|) = I_x(nu/2, 1/2) / 2,      s(y) = 2F(y) - 1 = sign(y) I_xc(1/2, nu/2),
    1 - |s(y)| = I_x(nu/2, 1/2),       sqrt(1 - s^2) = 2 sqrt(F(y) F(-y)) = sqrt(T (2 - T)), T = 1 - |s|.

:func:`ibeta_pair` returns both I_x(a, b) and 1 - I_x(a, b), each computed directly where it is the
smaller one (the continued fraction of Numerical Recipes' betacf, evaluated by the modified Lentz
method, on the side x < (a + 1)/(a + b + 2) where it converges fast, and the symmetry
I_x(a, b) = 1 - I_(1-x)(b, a) on the other side), so each has a small relative error (about 1e-15,
growing like |log x| eps far into a tail) instead of the absolute error of 1 - (1 - T). The printed
kernels call :func:`betainc_reg` (I_x) and :func:`betainc` (B(a, b) I_x, the unregularized form of
the partial moments K_n) with x and xc both passed, so that neither is formed by cancellation.
Everything is float64 inside; this module imports only math and Numba.
"""
from __future__ import annotations

import math

from numba import njit

_EPS = 1e-16
_TINY = 1e-300


@njit(cache=True)
def _continued_fraction(a, b, x):
    """The continued fraction of I_x(a, b) (Numerical Recipes betacf), modified Lentz."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, 1000):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


@njit(cache=True)
def ibeta_pair(a, b, x, xc):
    """(I_x(a, b), 1 - I_x(a, b)) for a, b > 0, 0 <= x <= 1, xc = 1 - x (given, exact enough)."""
    a, b, x, xc = float(a), float(b), float(x), float(xc)
    if x <= 0.0:
        return 0.0, 1.0
    if xc <= 0.0:
        return 1.0, 0.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(xc)
    if x < (a + 1.0) / (a + b + 2.0):
        p = math.exp(log_front) * _continued_fraction(a, b, x) / a
        return p, 1.0 - p
    q = math.exp(log_front) * _continued_fraction(b, a, xc) / b
    return 1.0 - q, q


@njit(cache=True)
def betainc_reg(a, b, x, xc):
    """I_x(a, b), the regularized incomplete beta function (xc = 1 - x)."""
    return ibeta_pair(a, b, x, xc)[0]


@njit(cache=True)
def betainc(a, b, x, xc):
    """B(x; a, b) = B(a, b) I_x(a, b), the incomplete beta function (a, b > 0; xc = 1 - x)."""
    return math.exp(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)) * ibeta_pair(a, b, x, xc)[0]


@njit(cache=True)
def _tail_and_sign(y, nu):
    """(T, s) = (1 - |s(y)|, s(y)) of Student-t with nu degrees of freedom."""
    y, nu = float(y), float(nu)
    r = y / math.sqrt(nu)
    r2 = r * r
    x = 1.0 / (1.0 + r2)  # nu / (nu + y^2)
    xc = r2 / (1.0 + r2)  # y^2 / (nu + y^2)
    tail, body = ibeta_pair(0.5 * nu, 0.5, x, xc)
    return tail, math.copysign(body, y) if y != 0.0 else 0.0


@njit(cache=True)
def cdf(y, nu):
    """F(y) = P(zeta <= y) for zeta ~ Student-t(nu); relative accuracy in both tails."""
    tail, _ = _tail_and_sign(y, nu)
    return 0.5 * tail if y < 0.0 else 1.0 - 0.5 * tail


@njit(cache=True)
def sign_mean(y, nu):
    """s(y) = E[sign(y + zeta)] = 2F(y) - 1, with a small relative error also near y = 0."""
    return _tail_and_sign(y, nu)[1]


@njit(cache=True)
def tail(y, nu):
    """1 - |s(y)| = 2F(-|y|), with a small relative error far into the tails."""
    return _tail_and_sign(y, nu)[0]


@njit(cache=True)
def sign_sd(y, nu):
    """sqrt(1 - s(y)^2) = 2 sqrt(F(y) F(-y)), without the cancellation of 1 - s^2."""
    t = _tail_and_sign(y, nu)[0]
    return math.sqrt(t * (2.0 - t))
