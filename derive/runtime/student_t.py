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
Everything is float64 inside; this module imports only math, NumPy and Numba.

**The kernels' fast path.** A Student-t CDF term in a printed SDE kernel is I_x(a, 1/2), a = nu/2
(the tail T = 1 - |s|). For a moderate nu the generated module holds its own function for it, a
straight-line polynomial per side (derive/codegen/student_t_fit.py writes it), which needs from
here only :func:`log_unit` and :func:`exp_neg`: a log and an exp without library calls or branches,
so that the update loops calling them stay free of calls (as the runtime's erf).
"""

from __future__ import annotations

import math

import numpy as np
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


# ---- the kernels' fast path: branch-free, vectorizable -----------------------------------------
_LN2_HI = 0.6931471803691238  # ln 2 = _LN2_HI + _LN2_LO (_LN2_HI has 32 significant bits)
_LN2_LO = 1.9082149292705877e-10
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer
_MAGIC_BITS = 4843621399236968448  # its bit pattern


@njit(cache=True, error_model="numpy", inline="always")
def log_unit(x):
    """log(x) for 2.2e-308 <= x <= 1: exponent from the bits, log of the mantissa m in
    [sqrt(1/2), sqrt(2)) as 2 atanh((m - 1)/(m + 1)) (odd series through f^21)."""
    bits = np.float64(x).view(np.int64)
    e = (bits >> np.int64(52)) - np.int64(1023)
    m = np.int64((bits & np.int64(4503599627370495)) | np.int64(4607182418800017408)).view(np.float64)  # [1, 2)
    big = m > 1.4142135623730951
    m = 0.5 * m if big else m
    ef = float(e + np.int64(1)) if big else float(e)
    f = (m - 1.0) / (m + 1.0)
    t = f * f
    p = 1.0 / 21.0
    p = p * t + 1.0 / 19.0
    p = p * t + 1.0 / 17.0
    p = p * t + 1.0 / 15.0
    p = p * t + 1.0 / 13.0
    p = p * t + 1.0 / 11.0
    p = p * t + 1.0 / 9.0
    p = p * t + 1.0 / 7.0
    p = p * t + 1.0 / 5.0
    p = p * t + 1.0 / 3.0
    p = p * t + 1.0
    return ef * _LN2_HI + (ef * _LN2_LO + 2.0 * f * p)


@njit(cache=True, error_model="numpy", inline="always")
def exp_neg(r):
    """exp(r) for r <= 0 (0 below -745): r = k ln2 + q, |q| <= ln2/2, e^q by its Taylor polynomial
    through q^13, 2^k as two bit patterns (so that k down to -1075 stays representable)."""
    under = r < -745.0
    r = max(r, -745.0)
    z = r * 1.4426950408889634 + _MAGIC
    kf = z - _MAGIC
    k = np.float64(z).view(np.int64) - np.int64(_MAGIC_BITS)
    q = (r - kf * _LN2_HI) - kf * _LN2_LO
    e = 1.0 / 6227020800.0
    e = e * q + 1.0 / 479001600.0
    e = e * q + 1.0 / 39916800.0
    e = e * q + 1.0 / 3628800.0
    e = e * q + 1.0 / 362880.0
    e = e * q + 1.0 / 40320.0
    e = e * q + 1.0 / 5040.0
    e = e * q + 1.0 / 720.0
    e = e * q + 1.0 / 120.0
    e = e * q + 1.0 / 24.0
    e = e * q + 1.0 / 6.0
    e = e * q + 0.5
    e = e * q + 1.0
    e = e * q + 1.0
    k1 = k >> np.int64(1)
    s1 = np.int64((k1 + np.int64(1023)) << np.int64(52)).view(np.float64)
    s2 = np.int64((k - k1 + np.int64(1023)) << np.int64(52)).view(np.float64)
    return 0.0 if under else e * s1 * s2
