"""Gradients at another point than x: ``grad(P)`` in an update rule (reference section 12).

In an update rule, bare ``grad`` is the stochastic gradient at the current x, g~ = g + sigma*zeta,
and ``grad(P)`` the stochastic gradient at the point P with the same noise draw (one minibatch at
both points): g~(P) = grad f(P) + sigma*zeta; ``grad_i(P)`` takes the independent draw zeta_i.
The engine (:func:`derive.engine.at_points`) writes each one about x, with delta = P - x:

* delta small (its size in eta, from the hyperparameters' roles, positive): a Taylor expansion
  g~(P) = g~ + H delta + O(|delta|^2), printed ``hvp(delta)`` (:class:`hvp`, coordinate i of the
  Hessian times the vector delta; the order-2 drifts of :mod:`derive.order2` use it too); the
  O(|delta|^2) term must be beyond the order of the SDE (else the gradient at P would need the
  third derivative of f, and it is refused);
* delta of order 1 and free of the noise (schedule-free SGD's y = (1 - beta) z + beta x): the
  gradient field there, g~(P) = gradf(P) + sigma*zeta (:class:`gradf`), which the SDE keeps;
* delta of order 1 and random: refused (the gradient at a random O(1) point has no expansion).

:func:`linear_hvp` writes every hvp(u) as a sum of hvp of per-coordinate vectors with the global
(scalar) factors outside, hvp(r*(g + sigma*zeta)) = r*hvp(g) + r*sigma*hvp(zeta), so that the
expectations see the Hessian applied to the noise vector as its own kind of term (its mean is
hvp of the mean; its covariance is the Hessian noise of :class:`derive.sde.HessianNoise`).

``norm(u)`` is the Euclidean norm over all coordinates (normalised SAM's r*grad/norm(grad)): it
couples every coordinate, so the engine, which derives coordinate-wise SDEs, refuses it by name.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from . import symbols as S


class hvp(sp.Function):  # noqa: N801 - printed as hvp(EXPR), the name of the JSON contract
    """hvp(u): coordinate i of the Hessian H of f times the vector whose coordinates are u
    (u written in the symbols of coordinate i: x, m, v, g, ...). Numeric factors come out."""

    nargs = 1

    @classmethod
    def eval(cls, u):
        coeff, rest = sp.factor_terms(u).as_coeff_Mul()
        if coeff == 0:
            return sp.Integer(0)
        if coeff != 1:
            return coeff * cls(rest)
        return None


class grad_at(sp.Function):  # noqa: N801 - printed grad(P) / grad_i(P), as written in update rules
    """grad_at(P, i): the stochastic gradient of draw i (0: ``grad``, i: ``grad_i``) at the point P
    (P written in the symbols of coordinate i: x, the states, grad, ...)."""

    nargs = 2

    @property
    def point(self) -> sp.Expr:
        return self.args[0]

    @property
    def draw(self) -> int:
        return int(self.args[1])

    def _sympystr(self, printer) -> str:
        return f"{S.grad_draw(self.draw).name}({printer._print(self.point)})"


class gradf(sp.Function):  # noqa: N801 - printed gradf(EXPR), the name of the JSON contract
    """gradf(P): coordinate i of the true gradient of f at the point whose coordinates are P
    (P written in the symbols of coordinate i: x, z, ...); gradf(x) is g."""

    nargs = 1

    @classmethod
    def eval(cls, point):
        if point == sp.Symbol("x", real=True):
            return S.g
        return None


class norm(sp.Function):  # noqa: N801 - written norm(...) in update rules
    """norm(u): the Euclidean norm over all coordinates of the vector whose coordinates are u."""

    nargs = 1


def refuse_norm(expr: sp.Expr) -> sp.Expr | None:
    """The first norm(...) in ``expr`` (None if there is none)."""
    found = sorted(expr.atoms(norm), key=sp.default_sort_key)
    return found[0] if found else None


def innermost(expr: sp.Expr) -> list[grad_at]:
    """The gradients at other points whose point contains no other one (resolved first)."""
    return sorted((a for a in expr.atoms(grad_at) if not a.point.has(grad_at)), key=sp.default_sort_key)


def draw_at_x(atom: grad_at) -> sp.Symbol:
    """The stochastic gradient of the same draw at x: ``grad`` or ``grad_i``."""
    return S.grad_draw(atom.draw)


def linear_hvp(expr: sp.Expr, local: Iterable[sp.Symbol]) -> sp.Expr:
    """``expr`` with every hvp(u) written as sum_k c_k hvp(u_k): u expanded, each term's factors
    free of the per-coordinate symbols ``local`` (states, g, noise draws) taken outside
    (H is linear and the same in every coordinate; hyperparameters, eta and t are scalars)."""
    local = frozenset(local)

    def split(u: sp.Expr) -> sp.Expr:
        out = sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(u)):
            term = sp.factor_terms(term)  # 1/(eta*a + eta*b) -> 1/(eta*(a + b)): the scalar eta comes out
            coeff, rest = term.as_independent(*local, as_Add=False) if local else (term, sp.Integer(1))
            out += coeff * hvp(rest)
        return out

    if not expr.has(hvp):
        return expr
    return expr.replace(lambda e: isinstance(e, hvp), lambda e: split(e.args[0]))


def random_hvps(expr: sp.Expr) -> list[sp.Expr]:
    """The applications hvp(u) in ``expr`` whose u depends on a noise draw (H times the noise)."""
    return sorted((a for a in expr.atoms(hvp) if S.draws_in(a.args[0])), key=sp.default_sort_key)
