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
