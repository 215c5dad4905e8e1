"""Shared helpers for the symbolic tests."""

from __future__ import annotations

import sympy as sp

from derive import symbols as S


def identical(a: sp.Expr, b: sp.Expr) -> bool:
    """Exact symbolic identity of a and b.

    Piecewise/sign/Abs expressions are compared separately for g > 0 and g < 0, where they
    reduce to analytic expressions; everything else by simplify(a - b) == 0.
    """
    diff = sp.simplify(a - b)
    if diff == 0:
        return True
    if not diff.has(sp.sign, sp.Abs, sp.Piecewise):
        return False
    q = sp.Symbol("q", positive=True)
    return all(sp.simplify(diff.xreplace({S.g: s * q})) == 0 for s in (1, -1))
