"""The bivariate normal CDF Phi2(h, k, r) = P(X < h, Y < k) in float64, for the generated kernels.

(X, Y) standard normal with correlation r. The representation of :mod:`derive.bivariate` (Plackett's
identity integrated from r = -1), every term non-negative:

    Phi2 = max(0, Phi(h) - Phi(-k)) + (1/pi) [I(A, B; 0, min(1, W)) + [W > 1] I(B, A; 1/W, 1)],
    I(A, B; a, b) = int_a^b exp(-(A w^2 + B/w^2)/2 - (h^2 + k^2)/4) / (1 + w^2) dw,
    A = (h - k)^2/4,  B = (h + k)^2/4,  W = sqrt((1 + r)/(1 - r)),

so there is no cancellation in the tails and the result is accurate relative to its size. Each
integral is taken on the window where the Gaussian factor exp(-t^2/2), t = sqrt(A) w - sqrt(B)/w, is
within e^-40 of its largest value on [a, b] (closed-form ends), by Gauss-Legendre quadrature with two
panels of 20 nodes, in log w when B > 1e-30 (the factor exp(-B/(2 w^2)) then rises steeply near w = 0)
and in w otherwise. Cost: at most 80 exponentials and one or two erfc; no loop of data-dependent length.

Accuracy (tests/test_bivariate.py, against an independent mpmath quadrature): relative error below
1e-12 for |h|, |k| <= 10 and |r| <= 0.999 wherever the value is a normal float (down to about 1e-300),
tails included; the difference term max(0, Phi(h) - Phi(-k)) is computed as Phi(min) - Phi(-max), both
lower-tail values, so it too is relative except when the two nearly cancel (h + k -> 0+ with r -> -1,
where the value is then about (h + k) phi(h) and loses digits in proportion). r = +-1 and infinite h, k
take their limits; r outside [-1, 1] or a NaN gives NaN. SciPy's ``multivariate_normal.cdf`` (Genz's
quasi-Monte Carlo, default abseps 1e-5) is accurate to about 1e-6 here and returns 0 for values below
its absolute tolerance (see the test).

Registering in the code printer: the SymPy function is :class:`derive.bivariate.Phi2` (name ``Phi2``,
arguments ``(h, k, r)``); the kernel calls ``phi2(h, k, r)`` from this module (float64 in, float64
out; a float32 kernel casts its arguments and the result).
"""

from __future__ import annotations

import math

import numpy as np
from numba import float64, njit, vectorize

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)
_CUT = 40.0  # the window ends where the Gaussian factor is e^-_CUT below its peak on the interval
_B_TINY = 1e-30  # below it the wall exp(-B/(2 w^2)) holds no mass that float64 can see: integrate in w
_SQRT1_2 = 1.0 / math.sqrt(2.0)


@njit(cache=True, error_model="numpy", inline="always")
def _ncdf(x):
    return 0.5 * math.erfc(-x * _SQRT1_2)


@njit(cache=True, error_model="numpy", inline="always")
def _w_of_t(t, A, B):
    """The w > 0 with sqrt(A) w - sqrt(B)/w = t, in the cancellation-free form for the sign of t."""
    c = math.sqrt(t * t + 4.0 * math.sqrt(A * B))
    return (t + c) / (2.0 * math.sqrt(A)) if t >= 0.0 else 2.0 * math.sqrt(B) / (c - t)


@njit(cache=True, error_model="numpy")
def _piece(A, B, a, b, hk4):
    """I(A, B; a, b) for 0 <= a < b <= 1 (module docstring)."""
    sa = math.sqrt(A)
    sb = math.sqrt(B)
    if a > 0.0:
        ta = sa * a - sb / a
    else:
        ta = -math.inf if B > 0.0 else 0.0
    tb = sa * b - sb / b
    tm = min(max(0.0, ta), tb)
    cut = math.sqrt(tm * tm + 2.0 * _CUT)
    lo = a if ta >= -cut else _w_of_t(-cut, A, B)
    hi = b if tb <= cut else _w_of_t(cut, A, B)
    if not lo < hi:
        return 0.0
    logarithmic = B > _B_TINY
    if logarithmic:
        lo = math.log(lo)
        hi = math.log(hi)
    half = 0.25 * (hi - lo)  # two panels, each of half-width `half`
    total = 0.0
    for panel in range(2):
        mid = lo + (2 * panel + 1) * half
        for i in range(_NODES.size):
            u = mid + half * _NODES[i]
            w = math.exp(u) if logarithmic else u
            w2 = w * w
            f = math.exp(-0.5 * (A * w2 + B / w2) - hk4) / (1.0 + w2)
            total += _WEIGHTS[i] * (f * w if logarithmic else f)
    return total * half


@njit(cache=True, error_model="numpy")
def phi2(h, k, r):
    """Phi2(h, k, r) = P(X < h, Y < k), float64 (module docstring)."""
    if h != h or k != k or r != r or r < -1.0 or r > 1.0:
        return math.nan
    lo = min(h, k)
    hi = max(h, k)
    if lo == -math.inf:
        return 0.0
    if hi == math.inf:
        return _ncdf(lo)
    if r == 1.0:
        return _ncdf(lo)
    base = max(0.0, _ncdf(lo) - _ncdf(-hi))  # Phi(h) - Phi(-k), both terms lower-tail values
    if r == -1.0:
        return base
    A = 0.25 * (h - k) * (h - k)
    B = 0.25 * (h + k) * (h + k)
    hk4 = 0.25 * (h * h + k * k)
    W = math.sqrt((1.0 + r) / (1.0 - r))
    total = _piece(A, B, 0.0, min(1.0, W), hk4)
    if W > 1.0:
        total += _piece(B, A, 1.0 / W, 1.0, hk4)
    return base + total / math.pi


@vectorize([float64(float64, float64, float64)], cache=True)
def phi2_ufunc(h, k, r):
    """:func:`phi2` as a NumPy ufunc (broadcasting arrays; for ``sympy.lambdify`` and tests)."""
    return phi2(h, k, r)
