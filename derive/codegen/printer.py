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

A printer records what the code it printed calls beyond Python and ``math`` (as SymPy's printers
record module imports in ``module_imports``): ``runtime_calls``, the printed names of the runtime
functions (keys of :data:`RUNTIME_FUNCTIONS`), and ``student_t_tails``, the straight-line Student-t
CDF functions by name. A generated module imports and defines exactly these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import Boolean
from sympy.printing.pycode import PythonCodePrinter

from ..errors import DeriveError
from .student_t_fit import HalfBetaFit, half_beta_fit

#: the runtime functions a kernel may call: printed name -> (module, function), in the order a
#: generated module imports them
RUNTIME_FUNCTIONS = {
    "_erf": ("derive.runtime.special", "erf"),
    "_exp_neg": ("derive.runtime.student_t", "exp_neg"),
    "_log_unit": ("derive.runtime.student_t", "log_unit"),
    "_betainc_reg": ("derive.runtime.student_t", "betainc_reg"),
    "_betainc": ("derive.runtime.student_t", "betainc"),
}


class CodegenError(DeriveError, ValueError):
    """An expression, spec or request that the code generator cannot turn into a kernel."""


class BetaRegX(sp.Function):
    """I_x(a, b) written with its arguments (a, b, x, xc), xc = 1 - x simplified symbolically."""


class BetaX(sp.Function):
    """B(x; a, b) written with its arguments (a, b, x, xc), xc = 1 - x simplified symbolically."""


def _with_complement(expr: sp.Expr, kind: type) -> sp.Expr:
    a, b, x1, x2 = expr.args
    if x1 != 0:
        raise CodegenError(f"{expr}: only incomplete beta functions from 0 are compiled")
    if not (a.is_number and b.is_number and a.is_positive and b.is_positive):
        raise CodegenError(
            f"{expr}: the incomplete beta function is compiled for numeric a, b > 0 only "
            "(a Student-t partial moment of order n needs nu > n here)"
        )
    return kind(a, b, x2, sp.factor(sp.cancel(1 - x2)))


def with_complements(expr: sp.Expr) -> sp.Expr:
    """Each incomplete beta function I_x(a, b) or B(x; a, b) rewritten to carry 1 - x as its own
    argument, simplified symbolically: the runtime then never forms 1 - x by cancellation, and
    neither hoisting nor common subexpressions can reintroduce it."""
    return sp.sympify(expr).replace(
        lambda e: isinstance(e, (sp.betainc_regularized, sp.betainc)),
        lambda e: _with_complement(e, BetaRegX if isinstance(e, sp.betainc_regularized) else BetaX),
    )


class KernelPrinter(PythonCodePrinter):
    """Print scalar expressions for Numba kernels with a float type named ``_T`` in scope.

    Function names come from SymPy's own table of Python's math functions, ``_kf``, renamed to the
    generated module's ``_math`` import, and from the runtime (:data:`RUNTIME_FUNCTIONS`: erf is the
    runtime's branch-free ``_erf``, which LLVM vectorizes inside the update loops; math.erf would be
    a library call per element). Any other function is refused (:class:`CodegenError`).

    ``runtime_calls`` (printed names of the runtime functions called) and ``student_t_tails``
    (function name -> :class:`~derive.codegen.student_t_fit.HalfBetaFit`) record what the printed
    code calls, for the module's imports and definitions.
    """

    _kf = {name: "_" + fn if fn.startswith("math.") else fn for name, fn in PythonCodePrinter._kf.items()}

    def __init__(self) -> None:
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})
        self.runtime_calls: set[str] = set()
        self.student_t_tails: dict[str, HalfBetaFit] = {}

    def absorb(self, other: KernelPrinter) -> None:
        """Add the record of ``other`` (code printed by it that is kept) to this printer's."""
        self.runtime_calls |= other.runtime_calls
        self.student_t_tails.update(other.student_t_tails)

    def code(self, expr: sp.Expr) -> str:
        """Python source of one scalar expression, recorded (see the class docstring)."""
        expr = sp.sympify(expr)
        if (
            any(i.free_symbols for i in expr.atoms(sp.Integral))
            or expr.has(sp.Sum, sp.Limit, sp.Derivative)
            or expr.has(sp.zoo, sp.nan)
        ):
            raise CodegenError(f"expression cannot be compiled to a kernel: {expr}")
        return self.doprint(expr)

    def cse_lines(self, exprs: Sequence[sp.Expr], prefix: str = "_e") -> tuple[list[str], list[str]]:
        """Common subexpression elimination: (assignment lines, printed reduced expressions)."""
        reps, reduced = sp.cse(
            [with_complements(e) for e in exprs],
            symbols=sp.numbered_symbols(prefix),
            optimizations="basic",
            order="canonical",
        )
        return [f"{s} = {self.code(e)}" for s, e in reps], [self.code(e) for e in reduced]

    def _runtime_call(self, name: str, args: Iterable[sp.Expr]) -> str:
        """``name(args)`` for a key of :data:`RUNTIME_FUNCTIONS`, recorded."""
        self.runtime_calls.add(name)
        return f"{name}(" + ", ".join(self._print(a) for a in args) + ")"

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

    def _print_erf(self, expr: sp.Expr) -> str:
        return self._runtime_call("_erf", expr.args)

    def _print_BetaRegX(self, expr: sp.Expr) -> str:
        """I_x(a, b): for b = 1/2 (the Student-t CDF terms, a = nu/2) the generated module's own
        straight-line function (derive.codegen.student_t_fit); else, or for a large nu, the
        continued fraction derive.runtime.student_t.betainc_reg."""
        a, b, x, xc = expr.args
        fit = half_beta_fit(float(a)) if b == sp.Rational(1, 2) else None
        if fit is None:
            return f"_T({self._runtime_call('_betainc_reg', expr.args)})"
        self.student_t_tails[fit.name] = fit
        self.runtime_calls |= {"_exp_neg", "_log_unit"}  # what the fit's function calls
        return f"_T({fit.name}({self._print(x)}, {self._print(xc)}))"

    def _print_BetaX(self, expr: sp.Expr) -> str:
        """B(x; a, b) = B(a, b) I_x(a, b): derive.runtime.student_t.betainc (partial moments K_n)."""
        return f"_T({self._runtime_call('_betainc', expr.args)})"

    def _print_betainc_regularized(self, expr: sp.Expr) -> str:
        return self._print(with_complements(expr))

    _print_betainc = _print_betainc_regularized

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        a = self._print(expr.args[0])
        return f"(_T(1) if {a} > 0 else (_T(0) if {a} < 0 else _T(0.5)))"

    def _print_Integral(self, expr: sp.Expr) -> str:
        """A constant integral (a user law's moment without a closed form): its value."""
        if expr.free_symbols:
            raise CodegenError(f"expression cannot be compiled to a kernel: {expr}")
        return f"_T({float(expr.evalf(30))!r})"

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
        if type(expr).__name__ not in self.known_functions:
            raise CodegenError(f"function {type(expr).__name__}() has no Numba translation (in {expr})")
        return super()._print_Function(expr)


def code(expr: sp.Expr) -> str:
    """Python source of one scalar expression, by a fresh :class:`KernelPrinter` (no record kept)."""
    return KernelPrinter().code(expr)


def hoist(
    exprs: Sequence[sp.Expr], element: Iterable[sp.Symbol], prefix: str, start: int = 0
) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list[sp.Expr]]:
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
        whole = not isinstance(e, (sp.Piecewise, ExprCondPair, Boolean))  # a branch or condition is no number
        if whole and e.free_symbols and not (e.free_symbols & element):
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

    return consts, [visit(with_complements(e)) for e in exprs]


def cse_lines(exprs: Sequence[sp.Expr], prefix: str = "_e") -> tuple[list[str], list[str]]:
    """:meth:`KernelPrinter.cse_lines` by a fresh printer (no record kept)."""
    return KernelPrinter().cse_lines(exprs, prefix)
