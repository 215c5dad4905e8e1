"""SignSGD phases: where its SDE behaves as sign descent, where it is linear, and in between.

With y = g/sigma the SignSGD SDE is dX = -s(y) dt + sqrt(eta) sqrt(1 - s(y)^2) dW (s from the
noise law). For Gaussian noise s(y) = erf(Y) with Y = g/(sqrt(2) sigma). Everything below is
computed from the SDE object:

* large |Y| (|Y| >= Y2): the limit of drift and diffusion as Y -> +-oo, the sign-descent SDE
  dX = -sign(g) dt (no noise);
* small |Y| (|Y| <= Y1): the first-order series in g of the drift and zeroth-order of the
  diffusion, the linear SDE dX = -2 p(0) g/sigma dt + sqrt(eta) dW;
* Y1 < |Y| < Y2: s(Y) is concave there, so the chord through (Y1, s(Y1)) and (Y2, s(Y2)) is a
  lower affine bound and the parallel tangent (where s'(Y) equals the chord's slope) an upper
  one: m Y + q- <= s(Y) <= m Y + q+ for Y in [Y1, Y2].

The default boundaries Y1 = 1 and Y2 = 3/2 are those of Compagnoni et al.; the report gives how
far each phase's approximation is from s at its boundary.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import symbols as S
from ..engine import derive_sde
from ..errors import DeriveError

Y = sp.Symbol("Y", positive=True)


@dataclass
class Phases:
    noise: str
    boundaries: tuple[sp.Expr, sp.Expr]
    sign_phase: tuple[sp.Expr, sp.Expr]  # drift, diffusion for g > 0, |Y| large
    linear_phase: tuple[sp.Expr, sp.Expr]
    slope: sp.Expr
    lower: sp.Expr  # q-
    upper: sp.Expr  # q+
    tangent_point: sp.Expr
    s_at: tuple[sp.Expr, sp.Expr]  # s(Y1), s(Y2)
    linear_error_at_y1: sp.Expr

    def to_text(self) -> str:
        y1, y2 = self.boundaries
        f = lambda e: f"{sp.N(e, 4)}"  # noqa: E731 - a formatting shorthand
        return "\n".join([
            f"SignSGD phases | noise {self.noise} | Y = g/(sqrt(2)*sigma)",
            f"  phase 1, |Y| >= {y2}: dX = ({self.sign_phase[0]}) dt + ({self.sign_phase[1]}) dW"
            f"   (limit Y -> oo; s({y2}) = {f(self.s_at[1])}, {f(100 * (1 - self.s_at[1]))}% from the limit)",
            f"  phase 2, {y1} < |Y| < {y2}: m|Y| + q- <= |drift| <= m|Y| + q+ with m = {f(self.slope)}, "
            f"q- = {f(self.lower)}, q+ = {f(self.upper)} (chord; tangent at Y = {f(self.tangent_point)})",
            f"  phase 3, |Y| <= {y1}: dX = ({self.linear_phase[0]}) dt + ({self.linear_phase[1]}) dW"
            f"   (first order in g; at Y = {y1} the linear drift is {f(100 * self.linear_error_at_y1)}% above s)",
            "  (drift for g > 0; odd in g)"])


def signsgd_phases(noise: str = "gaussian", nu=None, y1: "sp.Expr | str" = "1", y2: "sp.Expr | str" = "3/2") -> Phases:
    """Derive the three phases of the SignSGD SDE under ``noise``."""
    y1, y2 = sp.nsimplify(sp.sympify(y1)), sp.nsimplify(sp.sympify(y2))
    if not (0 < y1 < y2):
        raise DeriveError(f"phase boundaries must satisfy 0 < Y1 < Y2, got Y1 = {y1}, Y2 = {y2}")
    sde = derive_sde("signsgd", noise, nu=nu)
    drift, diffusion = sde.drift[0], sde.diffusion[0, 0]
    scale = sp.sqrt(2) * S.sigma
    s_of_y = sp.simplify(-drift.xreplace({S.g: scale * Y}))  # s as a function of Y > 0
    # phase 1: Y -> oo
    sign_drift = sp.limit(drift.xreplace({S.g: scale * Y}), Y, sp.oo) * sp.sign(S.g)
    sign_diffusion = sp.limit(diffusion.xreplace({S.g: scale * Y}), Y, sp.oo)
    # phase 3: first order in g
    linear_drift = sp.series(drift, S.g, 0, 2).removeO()
    linear_diffusion = sp.limit(diffusion, S.g, 0)
    # phase 2: affine bounds on [y1, y2]
    s1, s2 = s_of_y.subs(Y, y1), s_of_y.subs(Y, y2)
    slope = (s2 - s1) / (y2 - y1)
    lower = s1 - slope * y1
    derivative = sp.diff(s_of_y, Y)
    tangent = sp.nsolve(derivative - slope, Y, (y1 + y2) / 2)
    upper = s_of_y.subs(Y, tangent) - slope * tangent
    linear_at_y1 = -linear_drift.xreplace({S.g: scale * y1})
    return Phases(sde.noise, (y1, y2), (sign_drift, sign_diffusion), (linear_drift, linear_diffusion),
                  slope, lower, upper, tangent, (s1, s2), sp.simplify(linear_at_y1 / s1 - 1))
