"""erf without library calls, for the generated kernels: polynomials and selects only, so that the
update loops calling it vectorize (a libm ``erf`` call per element keeps LLVM from vectorizing).

|x| < 1: erf(x) = x + x (P(x^2) - 1); 1 <= |x| <= top: erf(x) = sign(x) (1 - exp(-x^2) N(x^2) / (|x| D(x^2)))
(N/D a rational in x^2, exp by Cody-Waite reduction, a polynomial and a 2^-k bit pattern); |x| > top:
+-1. Coefficients: least squares with Lawson reweighting on Chebyshev nodes in mpmath
(derive/codegen/erf_fit.py). Both branches are computed and one is selected. float64: within 1 ulp
of the exact erf; float32: the same scheme in float32 arithmetic, coefficients rounded to float32,
x^2 not split (its rounding costs < 0.2 ulp of erf), within 1 ulp of float32(erf) (checked on every
float32). ``erf`` picks erf32 or erf64 by the argument's type (a Numba overload).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numba import njit, types
from numba.core.errors import NumbaIRAssumptionWarning
from numba.extending import overload

# Numba's typed inliner (the overload below is inline="always") reconstructs SSA over erf64/erf32's
# inlined IR, and its pedantic scope check (numba/core/ssa.py) then names a phi variable of their
# ``a if c else b`` selects "not in scope": the inliner renames the callee's variables with its own
# prefix, and the check does not know that prefix's scope. A bookkeeping check, not a wrong IR: the
# compiled erf matches erf64/erf32 called directly (within 1 ulp of the exact erf, tests/test_special.py)
# and every golden number of the kernels that inline it is reproduced bit for bit
# (tests/test_golden.py). Only that message about this overload's variables is silenced.
warnings.filterwarnings(
    "ignore",
    message=r"variable '_erf_overload__locals___lambda__\S*' is not in scope",
    category=NumbaIRAssumptionWarning,
)


@njit(cache=True, error_model="numpy", inline="always")
def erf64(x):
    """erf(x), float64: selects instead of branches, so that a loop calling it vectorizes."""
    t = x * x
    ps = -7.779463167293573e-10
    ps = ps * t + 1.3710977454148519e-08
    ps = ps * t + -1.620631305482573e-07
    ps = ps * t + 1.6447131476161706e-06
    ps = ps * t + -1.492471229401953e-05
    ps = ps * t + 0.00012055293576469008
    ps = ps * t + -0.0008548325929299499
    ps = ps * t + 0.005223977606118148
    ps = ps * t + -0.026866170643111427
    ps = ps * t + 0.11283791670944185
    ps = ps * t + -0.3761263890318352
    ps = ps * t + 0.12837916709551256
    small = x + x * ps  # erf(x) = x P(x^2), P(0) = 2/sqrt(pi)
    b = min(max(abs(x), 1.0), 6.0)  # erf = 1 - erfc on [1.0, 6.0], exactly 1 beyond
    y = b * b
    bs = b * 134217729.0  # Dekker: b = bh + bl with bh of 26 bits, so b^2 = bh^2 + yl exactly enough
    bh = bs - (bs - b)
    yh = bh * bh
    yl = (b - bh) * (b + bh)
    z = y * 1.4426950408889634 + 6755399441055744.0  # 1.5 * 2^52: rounds y/ln2 to the integer k
    kf = z - 6755399441055744.0
    r = (kf * 0.6931471803691238 - yh) + (kf * 1.9082149292705877e-10 - yl)  # k ln2 - b^2, |r| <= ln2/2
    e = 2.4994294312795887e-08
    e = e * r + 2.76322932415518e-07
    e = e * r + 2.7557622565449376e-06
    e = e * r + 2.480148652154365e-05
    e = e * r + 0.00019841269432638198
    e = e * r + 0.0013888888951223862
    e = e * r + 0.008333333333559293
    e = e * r + 0.04166666666649277
    e = e * r + 0.1666666666666617
    e = e * r + 0.5000000000000018
    e = e * r + 1.0
    e = e * r + 1.0
    scale = np.int64((np.int64(4843621399236969471) - np.float64(z).view(np.int64)) << np.int64(52)).view(
        np.float64
    )  # 2^-k
    pn = 0.5641895733887431
    pn = pn * y + 8.464125891085859
    pn = pn * y + 43.140257478959334
    pn = pn * y + 93.05287240381742
    pn = pn * y + 86.67517621605381
    pn = pn * y + 31.848193098299905
    pn = pn * y + 3.5762964748358135
    pn = pn * y + 0.052472869736316693
    pd = 1.0
    pd = pd * y + 15.502271275665079
    pd = pd * y + 83.46529402297955
    pd = pd * y + 196.91188726907325
    pd = pd * y + 212.00612515876335
    pd = pd * y + 98.81115776522385
    pd = pd * y + 16.926382339673452
    pd = pd * y + 0.6899178329030379
    large = math.copysign(1.0 - (e * scale) * pn / (b * pd), x)  # erfc = exp(-y) N(y) / (x D(y))
    out = small if abs(x) < 1.0 else large
    out = x if x != x else out
    return out


@njit(cache=True, error_model="numpy", inline="always")
def erf32(x):
    """erf(x), float32: evaluated in float32 throughout (full-width float32 vectors)."""
    t = x * x
    ps = np.float32(7.853847637306899e-05)
    ps = ps * t + np.float32(-0.0008010189631022513)
    ps = ps * t + np.float32(0.00518832728266716)
    ps = ps * t + np.float32(-0.026853810995817184)
    ps = ps * t + np.float32(0.1128358542919159)
    ps = ps * t + np.float32(-0.3761262595653534)
    ps = ps * t + np.float32(0.12837916612625122)
    small = x + x * ps  # erf(x) = x P(x^2), P(0) = 2/sqrt(pi)
    b = min(max(abs(x), np.float32(1.0)), np.float32(4.0))  # erf = 1 - erfc on [1, 4], float32(erf) = 1 beyond
    y = b * b
    z = y * np.float32(1.4426950216293335) + np.float32(12582912.0)  # 1.5 * 2^23: rounds x^2/ln2 to the integer k
    kf = z - np.float32(12582912.0)
    r = (kf * np.float32(0.693145751953125) - y) + kf * np.float32(1.428606765330187e-06)  # k ln2 - x^2, |r| <= ln2/2
    e = np.float32(0.001383683062158525)
    e = e * r + np.float32(0.008374815806746483)
    e = e * r + np.float32(0.04166822507977486)
    e = e * r + np.float32(0.16666419804096222)
    e = e * r + np.float32(0.49999991059303284)
    e = e * r + np.float32(1.0)
    e = e * r + np.float32(1.0)
    scale = np.int32((np.int32(1262485631) - np.float32(z).view(np.int32)) << np.int32(23)).view(np.float32)  # 2^-k
    pn = np.float32(0.5641283392906189)
    pn = pn * y + np.float32(1.8839861154556274)
    pn = pn * y + np.float32(1.110023021697998)
    pn = pn * y + np.float32(0.0627799853682518)
    pd = np.float32(1.0)
    pd = pd * y + np.float32(3.8367786407470703)
    pd = pd * y + np.float32(3.1640799045562744)
    pd = pd * y + np.float32(0.4674680233001709)
    large = math.copysign(np.float32(1.0) - (e * scale) * pn / (b * pd), x)  # erfc = exp(-y) N(y) / (x D(y))
    out = small if abs(x) < np.float32(1.0) else large
    out = x if x != x else out
    return out


def erf(x):
    """erf(x) in the kernels: erf32 for float32 x, erf64 otherwise (a Numba overload; plain math.erf in Python)."""
    return math.erf(x)


@overload(erf, inline="always")
def _erf_overload(x):
    if x == types.float32:
        return lambda x: erf32(x)
    return lambda x: erf64(np.float64(x))
