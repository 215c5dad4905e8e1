"""Function applications (and powers with a symbolic exponent) held as symbols while the algebra
around them is rearranged.

Expanding, cancelling or factoring an expression that contains erf(...), exp(...), sign(...),
betainc_regularized(...) or a Piecewise also rewrites their arguments (SymPy's operations are
deep); the engine instead writes each application as a symbol (:class:`Opaque`), rearranges the
rational structure around it, and puts the applications back: exact, faster, and the arguments
keep the readable form they were built in.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp


class Opaque:
    """A two-way table application <-> symbol; ``keep(f)`` says which applications to hide."""

    def __init__(self, keep: Callable[[sp.Expr], bool] = lambda f: True) -> None:
        self.keep = keep
        self.symbols: dict[sp.Expr, sp.Symbol] = {}

    def _symbol(self, f: sp.Expr) -> sp.Symbol:
        if f not in self.symbols:
            name = f"f{len(self.symbols)}"
            self.symbols[f] = sp.Dummy(name, positive=True) if f.is_positive else sp.Dummy(name, real=True)
        return self.symbols[f]

    def hide(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with each outermost hidden application replaced by its symbol."""
        if (isinstance(expr, sp.Function) or (expr.is_Pow and not expr.exp.is_number)) and self.keep(expr):
            return self._symbol(expr)
        if expr.is_Atom or not expr.args:
            return expr
        args = [self.hide(a) for a in expr.args]
        return expr if all(a is b for a, b in zip(args, expr.args, strict=False)) else expr.func(*args)

    def show(self, expr: sp.Expr) -> sp.Expr:
        """The applications put back."""
        return expr.xreplace({d: f for f, d in self.symbols.items()}) if self.symbols else expr


def expand_outside(expr: sp.Expr, keep: Callable[[sp.Expr], bool] = lambda f: True) -> sp.Expr:
    """sympy.expand of ``expr`` that leaves the arguments of (kept) function applications as they are."""
    opaque = Opaque(keep)
    return opaque.show(sp.expand(opaque.hide(expr)))
