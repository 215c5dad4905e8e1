"""Exact samplers of the standardized noise laws zeta of the optimizers (reference section 1).

Each takes a stream state ``s`` (see :mod:`derive.runtime.rng`) and returns ``(zeta, new state)``.
The laws are those of :data:`LAWS`, in the scale-1 forms of the reference table; a law outside
this list (a user ``cdf:`` law) is sampled by inverting its CDF in the generated module.
"""

from __future__ import annotations

import math

from numba import njit

from .rng import normal, random_bit, uniform

#: laws with an exact sampler here; derive.noise names the same laws
LAWS = ("gaussian", "student-t", "cauchy", "laplace", "uniform")


@njit(cache=True)
def gaussian(s):
    """zeta ~ N(0, 1)."""
    return normal(s)


@njit(cache=True)
def student_t(nu, s):
    """zeta ~ Student-t with nu > 0 degrees of freedom (Cauchy at nu = 1), Bailey's polar method:
    (u, v) uniform in the unit disc, w = u^2 + v^2, zeta = u sqrt(nu (w^(-2/nu) - 1) / w)."""
    while True:
        a, s = uniform(s)
        b, s = uniform(s)
        u = 2.0 * a - 1.0
        v = 2.0 * b - 1.0
        w = u * u + v * v
        if w < 1.0:
            return u * math.sqrt(nu * (w ** (-2.0 / nu) - 1.0) / w), s


@njit(cache=True)
def laplace(s):
    """zeta with density exp(-|z|)/2: an Exp(1) magnitude with a random sign."""
    a, s = uniform(s)
    e = -math.log(a)
    bit, s = random_bit(s)
    return (e if bit else -e), s


@njit(cache=True)
def uniform_pm1(s):
    """zeta ~ Uniform(-1, 1)."""
    a, s = uniform(s)
    return 2.0 * a - 1.0, s


@njit(cache=True)
def gamma(a, s):
    """Gamma(a, 1) by Marsaglia and Tsang's squeeze (a >= 1; a < 1 through Gamma(a + 1) U^(1/a))."""
    boost = 1.0
    if a < 1.0:
        u, s = uniform(s)
        boost = u ** (1.0 / a)
        a += 1.0
    dd = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * dd)
    while True:
        x, s = normal(s)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u, s = uniform(s)
        if math.log(u) < 0.5 * x * x + dd - dd * v + dd * math.log(v):
            return dd * v * boost, s


#: the mixing variables W of the elliptical laws (derive.correlation.Mixing), by code
MIXING_CODES = {"gaussian": 0, "student-t": 1, "laplace": 2}


@njit(cache=True)
def mixing(kind, nu, s):
    """W of g~ = g + sqrt(W) S xi, one per draw of all coordinates: 1 (kind 0, Gaussian), nu / chi2_nu
    (kind 1, Student-t; chi2_nu = 2 Gamma(nu / 2)), exponential with mean 2 (kind 2, Laplace)."""
    if kind == 1:
        c, s = gamma(0.5 * nu, s)
        return nu / (2.0 * c), s
    if kind == 2:
        u, s = uniform(s)
        return -2.0 * math.log(u), s
    return 1.0, s
