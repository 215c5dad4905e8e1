"""SymPy -> scalar Numba code.

:class:`KernelPrinter` prints one SymPy expression as a Python expression that Numba compiles
to scalar machine code. Every number is cast to the kernel's float type ``_T`` (``_T(0.5)``), so a
float32 kernel stays float32 end to end. ``sqrt(a)`` of a compound argument is printed as
``_math.sqrt(max(_T(0), a))``: quantities that are non-negative in exact arithmetic, such as
``1 - s(y)^2`` with ``|s| <= 1``, can round below zero (by one ulp) and must not turn into NaN in
float32 where float64 gives a number. ``sqrt`` of a bare symbol (a state such as ``v``) is not
clipped: a negative second moment is a genuine failure of the scheme, reported as divergence.

:func:`hoist` splits an expression into per-step constants (subexpressions free of the
per-element symbols) and the per-element remainder; :func:`cse_lines` runs SymPy's common
subexpression elimination and returns assignment lines.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..errors import DeriveError


class CodegenError(DeriveError, ValueError):
    """An expression, spec or request that the code generator cannot turn into a kernel."""


class KernelPrinter(PythonCodePrinter):
    """Print scalar expressions for Numba kernels with a float type named ``T`` in scope."""

    def __init__(self) -> None:
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})

    # -- numbers: always of the kernel's float type -----------------------------------------
    def _print_Integer(self, expr: sp.Integer) -> str:
        return f"_T({int(expr)})"

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"_T({float(expr)!r})"

    def _print_Float(self, expr: sp.Float) -> str:
        return f"_T({float(expr)!r})"

    def _print_Pi(self, expr: sp.Expr) -> str:
        return "_T(_math.pi)"

    def _print_Exp1(self, expr: sp.Expr) -> str:
        return "_T(_math.e)"

    def _print_Infinity(self, expr: sp.Expr) -> str:
        return "_T(_math.inf)"

    def _print_NegativeInfinity(self, expr: sp.Expr) -> str:
        return "_T(-_math.inf)"

    def _print_ImaginaryUnit(self, expr: sp.Expr) -> str:
        raise CodegenError("a kernel expression contains the imaginary unit; only real expressions can be simulated")

    # -- powers: products for small integers, sqrt with clipping ----------------------------
    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        b = self.parenthesize(base, 100)
        if exp.is_Integer and 1 <= abs(int(exp)) <= 4:
            prod = "*".join([b] * abs(int(exp)))
            return prod if exp > 0 else f"(_T(1)/({prod}))"
        if exp == sp.Rational(1, 2):
            return self._sqrt(base)
        if exp == -sp.Rational(1, 2):
            return f"(_T(1)/{self._sqrt(base)})"
        return f"{b}**{self.parenthesize(exp, 100)}"

    def _sqrt(self, base: sp.Expr) -> str:
        arg = self._print(base)
        if base.is_Symbol or base.is_number:
            return f"_math.sqrt({arg})"
        return f"_math.sqrt(max(_T(0), {arg}))"

    # -- functions ----------------------------------------------------------------------------
    def _print_sign(self, expr: sp.Expr) -> str:
        a = self._print(expr.args[0])
        return f"(_T(1) if {a} > 0 else (_T(-1) if {a} < 0 else _T(0)))"

    def _print_Abs(self, expr: sp.Expr) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_Min(self, expr: sp.Expr) -> str:
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Max(self, expr: sp.Expr) -> str:
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_betainc_regularized(self, expr: sp.Expr) -> str:
        a, b, x1, x2 = expr.args
        lower = "" if x1 == 0 else f" - _betainc({self._print(a)}, {self._print(b)}, {self._print(x1)})"
        return f"(_betainc({self._print(a)}, {self._print(b)}, {self._print(x2)}){lower})"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        out, tail = [], ""
        for value, cond in expr.args:
            if cond == sp.true:
                tail = self._print(value)
                break
            out.append(f"{self._print(value)} if {self._print(cond)} else ")
        if not tail:
            raise CodegenError(f"Piecewise without a default branch cannot be compiled: {expr}")
        return "(" + "(".join(out) + tail + ")" * len(out)

    def _print_Relational(self, expr: sp.Expr) -> str:
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_Function(self, expr: sp.Expr) -> str:
        name = type(expr).__name__
        if name not in ("erf", "erfc", "atan", "exp", "log", "tanh", "sin", "cos", "cosh", "sinh", "atan2", "gamma", "lgamma"):
            raise CodegenError(f"function {name}() has no Numba translation (in {expr})")
        return f"_math.{name}(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_erf(self, expr: sp.Expr) -> str:
        """``_erf``: the generated module's branch-free erf (see templates/special.py.j2), which
        LLVM vectorizes inside the update loops; math.erf would be a library call per element."""
        return f"_erf({self._print(expr.args[0])})"

    _print_erfc = _print_atan = _print_exp = _print_log = _print_Function
    _print_tanh = _print_sin = _print_cos = _print_atan2 = _print_Function


_PRINTER = KernelPrinter()


def code(expr: sp.Expr) -> str:
    """Python source of one scalar expression (see :class:`KernelPrinter`)."""
    expr = sp.sympify(expr)
    if expr.has(sp.Integral, sp.Sum, sp.Limit, sp.Derivative) or expr.has(sp.zoo, sp.nan):
        raise CodegenError(f"expression cannot be compiled to a kernel: {expr}")
    return _PRINTER.doprint(expr)


def hoist(exprs: Sequence[sp.Expr], element: Iterable[sp.Symbol], prefix: str,
          start: int = 0) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list[sp.Expr]]:
    """Replace each maximal non-atomic subexpression free of ``element`` symbols by a constant.

    Returns (constants, rewritten) where constants are (symbol, expression) pairs to compute once
    per step and ``rewritten`` are the expressions in terms of element symbols and constants.
    Identical subexpressions share one constant; names are ``prefix0``, ``prefix1``, ... in order
    of first appearance (deterministic).
    """
    element = set(element)
    table: dict[sp.Expr, sp.Symbol] = {}
    consts: list[tuple[sp.Symbol, sp.Expr]] = []

    def visit(e: sp.Expr) -> sp.Expr:
        if e.is_Atom:
            return e
        if not (e.free_symbols & element) and e.free_symbols and not isinstance(e, sp.Piecewise):
            if e not in table:
                table[e] = sp.Symbol(f"{prefix}{start + len(consts)}", real=True)
                consts.append((table[e], e))
            return table[e]
        if isinstance(e, (sp.Add, sp.Mul)):
            inner = [a for a in e.args if not (a.free_symbols & element)]
            if len(inner) > 1 and any(a.free_symbols for a in inner):
                rest = [visit(a) for a in e.args if a.free_symbols & element]
                return e.func(visit(e.func(*inner)), *rest, evaluate=False)
        return e.func(*[visit(a) for a in e.args])

    return consts, [visit(sp.sympify(e)) for e in exprs]


def cse_lines(exprs: Sequence[sp.Expr], prefix: str = "_e") -> tuple[list[str], list[str]]:
    """Common subexpression elimination: (assignment lines, printed reduced expressions)."""
    reps, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols(prefix), optimizations="basic", order="canonical")
    return [f"{s} = {code(e)}" for s, e in reps], [code(e) for e in reduced]
