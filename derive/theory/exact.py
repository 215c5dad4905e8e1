"""The exact stationary law of a one-state SDE on the quadratic model, by quadrature.

For dX = b(X) dt + sqrt(D(X)) dW on an interval where D > 0, a stationary density with zero
probability flux, b p - (1/2) (D p)' = 0, is

    p(x) = exp(Phi(x)) / D(x) / Z,     Phi(x) = integral from 0 to x of 2 b(u) / D(u) du,

(reference section 5b). It needs no closure and no smoothness of the law at 0 (Laplace), and it
respects a bounded support: under uniform noise SignSGD's D = eta (1 - s^2) vanishes for
|lambda x / sigma| >= 1, and the density lives inside that interval. Phi and the moments are
integrals of the SDE's own lambdified drift and diffusion (scipy.integrate.quad), on segments of
half the linearised standard deviation, outwards on each side until the density has fallen by
exp(-60) or D reaches 0 (the edge of the support, located by bisection).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import integrate

from ..sde import SDE
from .quadratic import NoStationaryLawError, on_quadratic

#: the density is followed outwards until it has fallen by this factor (e^-60 ~ 1e-26)
LOG_DROP = 60.0
_QUAD = dict(epsabs=0.0, epsrel=1e-11, limit=200)


@dataclass(frozen=True)
class ExactStationary:
    """Moments of the exact stationary density of a one-state SDE on f = lam x^2/2."""

    curvature: float
    mean: float
    second_moment: float  #: E X^2
    support: tuple[float, float]  #: where the density was integrated (an edge where D = 0, or its tail cut)
    relative_error: float  #: quadrature error estimate of E X^2

    @property
    def expected_loss(self) -> float:
        return self.curvature * self.second_moment / 2

    def to_dict(self) -> dict:
        return {
            "curvature": self.curvature,
            "mean": self.mean,
            "second_moment": self.second_moment,
            "expected_loss": self.expected_loss,
            "support": list(self.support),
            "relative_error": self.relative_error,
        }


def coefficients(
    sde: SDE, lam: float, numbers: dict[str, float], vectorized: bool = False
) -> tuple[Callable, Callable]:
    """b(x) and D(x) = (G G^T)_xx of a one-state ``sde`` on f = lam x^2/2 (t -> oo), as functions
    of a float (or, if ``vectorized``, of an array) x; ``numbers`` gives every parameter by name."""
    if len(sde.state) != 1:
        raise NoStationaryLawError(
            f"the exact stationary density needs a one-state SDE; {sde.optimizer} has "
            f"states {', '.join(sde.state_names)}"
        )
    x = sde.state[0]
    drift, cov = on_quadratic(sde, sp.Float(lam))
    exprs = [drift[0], cov[0, 0]]
    values = {s: sp.Float(numbers[s.name]) for e in exprs for s in e.free_symbols if s.name in numbers}
    exprs = [e.xreplace(values) for e in exprs]
    missing = sorted({s.name for e in exprs for s in e.free_symbols} - {x.name})
    if missing:
        raise NoStationaryLawError(
            f"give a numeric value for {', '.join(missing)} to evaluate the exact stationary law"
        )
    b, d = (sp.lambdify(x, e, modules=["numpy", "scipy"]) for e in exprs)
    if vectorized:
        return (lambda v: np.broadcast_to(b(v), np.shape(v))), (lambda v: np.broadcast_to(d(v), np.shape(v)))
    return (lambda v: float(b(v))), (lambda v: float(d(v)))


def _side(b: Callable, d: Callable, step: float, direction: int) -> tuple[float, float, float, float, float]:
    """Integrals over x in [0, +-oo) of exp(Phi)/D times 1, x, x^2 (density unnormalised, scaled by
    D(0)), the end of the support on this side, and the largest quadrature error estimate."""
    sign = float(direction)
    d0 = d(0.0)

    def integrand_phi(u: float) -> float:
        return 2.0 * b(u) / d(u)

    def positive(u: float) -> bool:
        value = d(u)
        return math.isfinite(value) and value > 0

    totals = np.zeros(3)
    worst = 0.0
    lo, phi_lo = 0.0, 0.0
    for _ in range(100000):
        hi = lo + sign * step
        if not positive(hi):  # the support ends in (lo, hi]: bisect for its edge
            inner, outer = lo, hi
            for _ in range(200):
                mid = 0.5 * (inner + outer)
                if mid in (inner, outer):
                    break
                inner, outer = (mid, outer) if positive(mid) else (inner, mid)
            hi, last = inner, True
        else:
            last = False

        def density(u: float, lo=lo, phi_lo=phi_lo) -> np.ndarray:
            phi = phi_lo + integrate.quad(integrand_phi, lo, u, **_QUAD)[0]
            weight = math.exp(phi) * d0 / d(u)
            return np.array([weight, weight * u, weight * u * u])

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            if last:  # D -> 0 at the edge: exp(Phi)/D may have an integrable singularity there, which
                # QAGS (quad) handles by extrapolation and quad_vec, without it, only by endless bisection
                parts = [
                    integrate.quad(
                        lambda u, i=i: density(u)[i], min(lo, hi), max(lo, hi), epsabs=0.0, epsrel=1e-10, limit=200
                    )
                    for i in range(3)
                ]
                part, err = np.array([p[0] for p in parts]), max(p[1] for p in parts)
            else:
                part, err = integrate.quad_vec(density, min(lo, hi), max(lo, hi), epsabs=0.0, epsrel=1e-11)
            increment = integrate.quad(integrand_phi, lo, hi, **_QUAD)[0] if not last else -math.inf
        totals += part
        worst = max(worst, float(err))
        phi_hi = phi_lo + increment
        if last or phi_hi - math.log(d(hi) / d0) < -LOG_DROP:
            return (*totals, hi, worst)
        lo, phi_lo = hi, phi_hi
    raise NoStationaryLawError("the stationary density is not normalisable: the drift does not confine X")


def exact_stationary(sde: SDE, lam: float, numbers: dict[str, float]) -> ExactStationary:
    """E X and E X^2 of the exact stationary density of a one-state ``sde`` on f = lam x^2/2."""
    if not lam > 0:
        raise NoStationaryLawError(f"curvature {lam} is not positive: no stationary law on a non-convex quadratic")
    b, d = coefficients(sde, lam, numbers)
    d0 = d(0.0)
    if not (math.isfinite(d0) and d0 > 0):
        raise NoStationaryLawError(f"the diffusion of {sde.optimizer} vanishes at the minimum (D(0) = {d0})")
    h = 1e-6 * math.sqrt(d0)
    rate = -(b(h) - b(-h)) / (2 * h)
    if not rate > 0:
        raise NoStationaryLawError(
            f"the drift of {sde.optimizer} does not pull x back to the minimum (slope {-rate:.3g})"
        )
    step = 0.5 * math.sqrt(d0 / (2 * rate))
    right, left = _side(b, d, step, +1), _side(b, d, step, -1)
    mass = right[0] + left[0]
    m1, m2 = (right[1] + left[1]) / mass, (right[2] + left[2]) / mass
    error = (right[4] + left[4]) / max(right[2] + left[2], 1e-300)
    return ExactStationary(float(lam), m1, m2, (left[3], right[3]), error)
