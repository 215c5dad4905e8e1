"""E X^2 of a one-state SDE beyond the linear phase: the consistent expansion of reference 5b.

On f = lambda x^2/2 the SDE dX = b(X) dt + sqrt(D(X)) dW has, for x > 0 (b odd, D even),

    b(x) = -a x + c2 x^2 + c3 x^3 + O(x^4),    D(x) = B0 + d2 x^2 + O(x^3),

read off the SDE's own series in x (c2 != 0 when the law is not smooth at 0, as Laplace:
s(y) = y - y|y|/2 + ...). Stationarity of E X^2 (Ito: E[2 X b(X) + D(X)] = 0), with the
linear-phase value m0 = B0/(2a) inside the correction terms, gives:

* smooth law (c2 = 0): the cubic drift term and the quadratic diffusion term are of the same
  order (relative O(eta)) and must be kept together; with the closure E X^4 = 3 (E X^2)^2,
      E X^2 = B0 / (2a - 6 c3 m0 - d2).
  For SignSGD, s(y) = a1 y + a3 y^3 and k = lambda/sigma this is
  eta / (2 a1 k + eta k^2 (a1^2 + 3 a3/a1)) (Gaussian: a1^2 + 3 a3/a1 = 2/pi - 1/2).
  (Keeping d2 without c3, as an earlier version did, is inconsistent: -12% against the exact
  law at eta lambda/sigma = 0.5, Gaussian.)
* law not smooth at 0 (c2 != 0): the x|x| drift term is the leading correction, relative
  O(sqrt(eta)); with E|X|^3 = 2 sqrt(2/pi) (E X^2)^(3/2) at leading order,
      E X^2 = B0 / (2a - 4 c2 sqrt(2/pi) sqrt(m0)),
  and the O(eta) terms are not kept (they would need the non-Gaussian shape at O(sqrt(eta))).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .quadratic import LinearModel, NoStationaryLawError, analytic_form, branch_near_zero, on_quadratic

_h = sp.Symbol("h", positive=True)


@dataclass(frozen=True)
class Expansion:
    """Series coefficients of drift and diffusion about x = 0 and the resulting E X^2."""

    a: sp.Expr
    c2: sp.Expr
    c3: sp.Expr
    b0: sp.Expr
    d2: sp.Expr
    second_moment: sp.Expr

    @property
    def smooth(self) -> bool:
        return self.c2 == 0

    @property
    def description(self) -> str:
        if self.smooth:
            return (
                "consistent second order (reference 5b): cubic drift and quadratic diffusion terms together, "
                "closure E x^4 = 3 (E x^2)^2"
            )
        return "first correction, relative O(sqrt(eta)): the x|x| drift term of a law not smooth at 0"

    def to_dict(self) -> dict:
        return {
            "a": str(self.a),
            "c2": str(self.c2),
            "c3": str(self.c3),
            "B0": str(self.b0),
            "d2": str(self.d2),
            "second_moment": str(self.second_moment),
            "smooth": self.smooth,
            "description": self.description,
        }


def _coefficients(expr: sp.Expr, order: int) -> list[sp.Expr]:
    """Taylor coefficients of expr(h) at h = 0+ up to h^order."""
    series = sp.series(branch_near_zero(analytic_form(expr), _h), _h, 0, order + 1).removeO()
    if series.has(sp.Order, sp.log) or any(
        p.exp.is_number and not p.exp.is_integer for p in series.atoms(sp.Pow) if p.base == _h
    ):
        raise NoStationaryLawError(f"the SDE has no power series about the minimum: {series}")
    return [sp.simplify(series.coeff(_h, n)) for n in range(order + 1)]


def expansion(model: LinearModel) -> Expansion | None:
    """The expansion of E X^2 for a one-state SDE whose drift or diffusion is not linear in x;
    None for other SDEs (several states, or linear ones, where the Lyapunov result is exact)."""
    sde = model.sde
    if len(sde.state) != 1:
        return None
    x = sde.state[0]
    drift, cov = on_quadratic(sde, model.curvature)
    b = _coefficients(drift[0].xreplace({x: _h}), 3)
    d = _coefficients(cov[0, 0].xreplace({x: _h}), 2)
    if b[0] != 0 or d[1] != 0:
        raise NoStationaryLawError(
            f"the SDE of {sde.optimizer} is not symmetric about the minimum (b(0) = {b[0]}, D'(0) = {d[1]})"
        )
    a, c2, c3, b0, d2 = -b[1], b[2], b[3], d[0], d[2]
    if c2 == 0 and c3 == 0 and d2 == 0:
        return None
    m0 = b0 / (2 * a)
    if c2 == 0:
        value = b0 / (2 * a - 6 * c3 * m0 - d2)
    else:
        value = b0 / (2 * a - 4 * c2 * sp.sqrt(2 / sp.pi) * sp.sqrt(m0))
    return Expansion(a, c2, c3, b0, d2, sp.factor(sp.simplify(value)))
