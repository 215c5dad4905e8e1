"""SignSGD phases: where its SDE behaves as sign descent, where it is linear, and in between,
with each law's thresholds found from its own s(y).

With y = g/sigma the SignSGD SDE is dX = -s(y) dt + sqrt(eta) sqrt(1 - s(y)^2) dW, s(y) = 2F(y) - 1
from the noise law. The limits are computed from the SDE object:

* sign phase, |y| >= y2: the limit y -> oo of drift and diffusion, dX = -sign(g) dt (no noise);
* linear phase, |y| <= y1: the first-order term in g of the drift and the diffusion at g = 0,
  dX = -2 p(0) g/sigma dt + sqrt(eta) dW;
* y1 < |y| < y2: s is concave for y > 0 (s' = 2p, p decreasing), so the chord through
  (y1, s(y1)) and (y2, s(y2)) is a lower affine bound and the parallel tangent an upper one.

The thresholds are tolerances on s, not fixed values of y: y2 is where s(y) comes within
``sign_tol`` of its limit 1, y1 is where the linear drift 2 p(0) y exceeds s(y) by ``linear_tol``
(relative). The default tolerances are those of the Gaussian phases of Compagnoni et al.
(Y = g/(sqrt(2) sigma) = 1 and 3/2: 1 - erf(3/2) = 3.4%, 2 p(0) y / s(y) - 1 = 33.9% at Y = 1), so
the Gaussian thresholds are unchanged and every other law gets the thresholds at which its own s
is as close to each limit (Cauchy: the sign phase starts at y = 18.8, not 2.1). Under uniform noise
the linear phase is exact up to |y| = 1 and the sign phase exact beyond: the phases meet, and there
is no intermediate phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp
from scipy import optimize

from .. import symbols as S
from ..errors import DeriveError
from .numeric_law import NumericLaw, numeric_law
from .quadratic import analytic_form, branch_near_zero, sde_of

_h = sp.Symbol("h", positive=True)
#: the Gaussian phase boundaries of Compagnoni et al., in Y = g/(sqrt(2) sigma)
GAUSSIAN_Y1, GAUSSIAN_Y2 = 1.0, 1.5


def default_tolerances() -> tuple[float, float]:
    """(linear_tol, sign_tol) of the Gaussian phases at Y = 1 and Y = 3/2."""
    gauss = numeric_law("gaussian")
    y1, y2 = math.sqrt(2) * GAUSSIAN_Y1, math.sqrt(2) * GAUSSIAN_Y2
    return 2 * gauss.p0 * y1 / gauss.s_of(y1) - 1, 1 - gauss.s_of(y2)


@dataclass
class Phases:
    noise: str
    tolerances: tuple[float, float]  #: (linear_tol, sign_tol)
    boundaries: tuple[float, float]  #: (y1, y2) in y = g/sigma
    sign_phase: tuple[sp.Expr, sp.Expr]  #: drift, diffusion as y -> oo (for g > 0, times sign(g))
    linear_phase: tuple[sp.Expr, sp.Expr]
    s_at: tuple[float, float]  #: s(y1), s(y2)
    linear_error_at_y1: float  #: 2 p(0) y1 / s(y1) - 1
    bounds: tuple[float, float, float, float] | None  #: slope, q-, q+, tangent point (None: phases meet)

    def to_text(self) -> str:
        y1, y2 = self.boundaries
        lin_tol, sign_tol = self.tolerances
        lines = [
            f"SignSGD phases | noise {self.noise} | y = g/sigma; thresholds from this law's s(y)",
            f"  phase 1, |y| >= {y2:.4g}: dX = ({self.sign_phase[0]}) dt + ({self.sign_phase[1]}) dW"
            f"   (limit y -> oo; s({y2:.4g}) = {self.s_at[1]:.4g}, {100 * (1 - self.s_at[1]):.2f}% from the limit;"
            f" threshold: within {100 * sign_tol:.2f}%)",
        ]
        if self.bounds is None:
            lines.append(f"  phase 2: none, the linear and sign phases meet (y1 = {y1:.4g} >= y2 = {y2:.4g})")
        else:
            slope, lower, upper, tangent = self.bounds
            lines.append(
                f"  phase 2, {y1:.4g} < |y| < {y2:.4g}: m|y| + q- <= |drift| <= m|y| + q+ with m = {slope:.4g}, "
                f"q- = {lower:.4g}, q+ = {upper:.4g} (chord; tangent at y = {tangent:.4g})"
            )
        lines.append(
            f"  phase 3, |y| <= {y1:.4g}: dX = ({self.linear_phase[0]}) dt + ({self.linear_phase[1]}) dW"
            f"   (first order in g; at y = {y1:.4g} the linear drift is {100 * self.linear_error_at_y1:.2f}% above s;"
            f" threshold: {100 * lin_tol:.2f}%)"
        )
        if self.noise == "gaussian":
            lines.append(f"  in Y = g/(sqrt(2)*sigma): Y1 = {y1 / math.sqrt(2):.4g}, Y2 = {y2 / math.sqrt(2):.4g}")
        lines.append("  (drift for g > 0; odd in g)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = {
            "noise": self.noise,
            "variable": "y = g/sigma",
            "linear_tol": self.tolerances[0],
            "sign_tol": self.tolerances[1],
            "y1": self.boundaries[0],
            "y2": self.boundaries[1],
            "sign_phase": {"drift": str(self.sign_phase[0]), "diffusion": str(self.sign_phase[1])},
            "linear_phase": {"drift": str(self.linear_phase[0]), "diffusion": str(self.linear_phase[1])},
            "s_at_y1": self.s_at[0],
            "s_at_y2": self.s_at[1],
            "linear_error_at_y1": self.linear_error_at_y1,
            "intermediate": None,
        }
        if self.bounds is not None:
            slope, lower, upper, tangent = self.bounds
            out["intermediate"] = {"slope": slope, "q_lower": lower, "q_upper": upper, "tangent_point": tangent}
        return out


def _limit(expr: sp.Expr, what: str) -> sp.Expr:
    """lim_{h -> 0+} expr(h), each Piecewise on its branch there and incomplete betas rewritten."""
    try:
        value = sp.limit(branch_near_zero(analytic_form(expr), _h), _h, 0, "+")
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise DeriveError(f"SymPy cannot take the {what}: {type(exc).__name__}") from None
    if value.has(sp.Limit, sp.nan, sp.zoo) or not value.is_finite:
        raise DeriveError(f"the {what} does not exist (SymPy gives {value})")
    return sp.simplify(value)


def _root(fn, lo: float, hi: float, what: str) -> float:
    while fn(hi) < 0:
        hi *= 2
        if hi > 1e12:
            raise DeriveError(f"the {what} threshold is not reached for |y| < 1e12")
    return float(optimize.brentq(fn, lo, hi, xtol=1e-13, rtol=1e-13))


def thresholds(law: NumericLaw, linear_tol: float, sign_tol: float) -> tuple[float, float]:
    """(y1, y2): 2 p(0) y1 / s(y1) - 1 = linear_tol and 1 - s(y2) = sign_tol."""
    tiny = 1e-6
    y1 = _root(lambda y: 2 * law.p0 * y / law.s_of(y) - 1 - linear_tol, tiny, 1.0, "linear-phase")
    y2 = _root(lambda y: law.s_of(y) - (1 - sign_tol), tiny, 1.0, "sign-phase")
    return y1, y2


def affine_bounds(law: NumericLaw, y1: float, y2: float) -> tuple[float, float, float, float]:
    """Chord slope m, q- (chord) and q+ (parallel tangent) with m y + q- <= s(y) <= m y + q+ on [y1, y2]."""
    s1, s2 = law.s_of(y1), law.s_of(y2)
    slope = (s2 - s1) / (y2 - y1)
    lower = s1 - slope * y1
    step = 1e-6 * max(1.0, y2)

    def derivative(y: float) -> float:
        return (law.s_of(y + step) - law.s_of(y - step)) / (2 * step)

    tangent = float(optimize.brentq(lambda y: derivative(y) - slope, y1, y2, xtol=1e-12))
    return slope, lower, law.s_of(tangent) - slope * tangent, tangent


def signsgd_phases(
    noise: str = "gaussian",
    nu=None,
    linear_tol: float | None = None,
    sign_tol: float | None = None,
    y1: float | None = None,
    y2: float | None = None,
) -> Phases:
    """Derive the three phases of the SignSGD SDE under ``noise``; y1, y2 (in y = g/sigma) override
    the thresholds found from the tolerances."""
    default_lin, default_sign = default_tolerances()
    lin = default_lin if linear_tol is None else float(linear_tol)
    sign = default_sign if sign_tol is None else float(sign_tol)
    if not (lin > 0 and 0 < sign < 1):
        raise DeriveError(f"tolerances must satisfy linear_tol > 0 and 0 < sign_tol < 1, got {lin}, {sign}")
    sde = sde_of("signsgd", noise, nu=nu)
    law = numeric_law(noise, nu)
    found = thresholds(law, lin, sign)
    b1 = found[0] if y1 is None else float(y1)
    b2 = found[1] if y2 is None else float(y2)
    if not 0 < b1 and 0 < b2:
        raise DeriveError(f"phase boundaries must be positive, got y1 = {b1}, y2 = {b2}")
    drift, diffusion = sde.drift[0], sde.diffusion[0, 0]
    at_large = {S.g: S.sigma / _h}
    sign_phase = (
        _limit(drift.xreplace(at_large), "limit y -> oo of the drift") * sp.sign(S.g),
        _limit(diffusion.xreplace(at_large), "limit y -> oo of the diffusion"),
    )
    slope0 = _limit(drift.xreplace({S.g: _h}) / _h, "slope of the drift at g = 0")
    linear_phase = (slope0 * S.g, _limit(diffusion.xreplace({S.g: _h}), "diffusion at g = 0"))
    s1, s2 = law.s_of(b1), law.s_of(b2)
    bounds = affine_bounds(law, b1, b2) if b1 < b2 else None
    return Phases(
        sde.noise, (lin, sign), (b1, b2), sign_phase, linear_phase, (s1, s2), 2 * law.p0 * b1 / s1 - 1, bounds
    )
