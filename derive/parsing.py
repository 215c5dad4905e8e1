"""One parser for every expression string the tool reads: strings are data, never code.

Update rules, ``cdf:`` laws, numbers given as text (``--nu``, ``--hyper``, curvatures) and the
expression strings of an SDE's JSON all go through :func:`parse_expression`. It parses the text
with Python's :mod:`ast` (which only builds a tree, it runs nothing) and builds the SymPy
expression from that tree itself, node by node, over a whitelist:

* numbers (integers and decimals; ``0.9`` becomes ``Float('0.9')`` exactly as SymPy's own parser
  reads it, so the expressions are the same as before);
* the names the caller allows, mapped to the SymPy objects the caller gives;
* ``+ - * / **``, unary minus and plus;
* calls of the functions the caller allows, with positional arguments (any number).

Everything else is refused in one line naming the construct: attribute access (``a.b``),
subscripts, lambdas, comprehensions, f-strings and other strings, names starting with ``_``
(``__import__``), keywords (``or``, ``if``, ``None``, keyword arguments), comparisons, calls of
anything but an allowed function name (comparisons, ``&``, ``|``, ``~`` and ``True`` only where the
caller's grammar has conditions: a printed ``Piecewise``), and line breaks, comments and backslashes (the text is one
line: generated modules quote it in comments). The text is never handed to ``eval``, ``sympify``
or ``parse_expr``.
"""

from __future__ import annotations

import ast
import io
import keyword
import math
import operator
import tokenize
from collections.abc import Callable, Mapping

import sympy as sp

from .errors import DeriveError

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_LOGIC = {ast.BitAnd: sp.And, ast.BitOr: sp.Or}
_COMPARE = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}
_OPERATOR_NAMES = {
    ast.FloorDiv: "'//' (floor division)",
    ast.Mod: "'%' (modulo)",
    ast.MatMult: "'@' (matrix product)",
    ast.BitXor: "'^' (bitwise xor; write powers as **)",
    ast.BitAnd: "'&'",
    ast.BitOr: "'|'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.Invert: "'~'",
    ast.Not: "the keyword 'not'",
}
_CONSTRUCTS = {
    ast.Subscript: "a subscript",
    ast.Slice: "a slice",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.BoolOp: "a boolean operator ('and', 'or')",
    ast.IfExp: "the keyword 'if' (a conditional expression)",
    ast.Compare: "a comparison",
    ast.NamedExpr: "an assignment expression (':=')",
    ast.Await: "the keyword 'await'",
    ast.Yield: "the keyword 'yield'",
    ast.YieldFrom: "the keyword 'yield'",
    ast.Starred: "unpacking ('*')",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
}
#: digits of the largest exact power of a number that an expression may ask for (9**9**9 would
#: take SymPy minutes and gigabytes; 10**100000 is still quick)
_MAX_POWER_DIGITS = 100_000


class ExpressionError(DeriveError, ValueError):
    """An expression string that the grammar refuses; ``reason`` is the message without ``where``."""

    def __init__(self, where: str, reason: str):
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}" if where else reason)


def parse_expression(
    text: str,
    *,
    names: Mapping[str, sp.Basic],
    functions: Mapping[str, Callable[..., sp.Basic]],
    where: str,
    new_symbol: Callable[[str], sp.Basic] | None = None,
    conditions: bool = False,
) -> sp.Expr:
    """The SymPy expression written in ``text``, built from its syntax tree over the whitelist.

    ``names`` maps each allowed name to its SymPy object and ``functions`` each allowed function
    name to a callable taking SymPy arguments (the call site names it: ``f(a, b)``; a name may be
    in both). A name in neither becomes ``new_symbol(name)`` when given (the caller then checks
    the names itself, as update rules do to list every unknown one), else it is refused.
    ``conditions`` lets the grammar have conditions, as SymPy prints a Piecewise: comparisons
    (< <= > >=), ``&``, ``|``, ``~``, ``True``, ``False`` and pairs ``(value, condition)`` as call
    arguments. ``where`` starts every error message. Raises :class:`ExpressionError`.
    """
    if not isinstance(text, str):
        raise ExpressionError(where, f"the expression must be a string, got {type(text).__name__}")
    odd = next((c for c in text if c in "#\\" or not (c.isprintable() or c == "\t")), None)
    if odd is not None:  # one printable line, no comment: the text is also copied into generated files
        what = {"#": "a comment ('#')", "\\": "a backslash"}.get(odd, f"the character {odd!r} (one line of text)")
        raise ExpressionError(where, f"not allowed in an expression: {what}")
    try:
        tree = ast.parse(text.strip(), mode="eval")  # strip: leading blanks would be an indentation error
    except SyntaxError as exc:
        raise ExpressionError(where, _syntax_reason(text, exc)) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise ExpressionError(where, f"cannot parse the expression ({type(exc).__name__})") from None
    builder = _Builder(text.strip(), names, functions, where, new_symbol, conditions)
    try:
        builder.check(tree)
        return builder.build(tree.body)
    except RecursionError:
        raise ExpressionError(where, "the expression is nested too deeply") from None


def parse_number(value: object, where: str) -> sp.Expr:
    """A number given as text (``'5/2'``, ``'2.5'``, ``'sqrt(2)'``, ``'pi/4'``) or as a Python or
    SymPy number, as a SymPy expression; the caller checks that it is a number of the kind it needs."""
    if not isinstance(value, str):
        try:
            return sp.sympify(value, strict=True)  # strict: never converts an object through its string
        except sp.SympifyError:
            raise ExpressionError(where, f"not a number: {value!r}") from None
    return parse_expression(value, names=NUMBER_NAMES, functions=NUMBER_FUNCTIONS, where=where)


#: constants a number or a law may name
NUMBER_NAMES: dict[str, sp.Basic] = {"pi": sp.pi, "E": sp.E}
#: functions a number given as text may use
NUMBER_FUNCTIONS: dict[str, Callable[..., sp.Basic]] = {"sqrt": sp.sqrt, "exp": sp.exp, "log": sp.log}

#: functions that appear in the expression strings of an SDE's JSON (sde.to_dict)
SDE_FUNCTIONS: dict[str, Callable[..., sp.Basic]] = {
    f.__name__: f
    for f in (
        sp.erf,
        sp.erfc,
        sp.atan,
        sp.exp,
        sp.log,
        sp.sqrt,
        sp.sign,
        sp.Abs,
        sp.Min,
        sp.Max,
        sp.Heaviside,
        sp.tanh,
        sp.betainc,
        sp.betainc_regularized,
        sp.gamma,
        sp.Piecewise,
    )
}
SDE_FUNCTIONS["hvp"] = sp.Function("hvp")
SDE_FUNCTIONS["gradf"] = sp.Function("gradf")


def sde_expression(text: str) -> sp.Expr:
    """An expression string of an SDE's JSON (``derive sde ... --format json``) read back: every
    name becomes an assumption-free symbol (x, m, v, g, sigma, eta, rho1, ...; ``pi`` and ``E``
    the constants), the functions those strings use (:data:`SDE_FUNCTIONS`) their SymPy functions,
    ``hvp`` and ``gradf`` undefined functions; conditions as in a printed Piecewise."""
    return parse_expression(
        text,
        names={**NUMBER_NAMES, "oo": sp.oo},
        functions=SDE_FUNCTIONS,
        where="SDE expression",
        new_symbol=sp.Symbol,
        conditions=True,
    )


def _syntax_reason(text: str, exc: SyntaxError) -> str:
    """Why ``text`` is not an expression: a Python keyword if it has one (``import``, ``for``), else
    Python's own message and where."""
    try:
        words = [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.NAME]
    except (tokenize.TokenError, SyntaxError):
        words = []
    found = [w for w in words if keyword.iskeyword(w)]
    if found:
        return f"cannot parse the expression: the Python keyword {found[0]!r} is not allowed in an expression"
    at = f", column {exc.offset}" if exc.offset else ""
    return f"cannot parse the expression ({exc.msg}{at})"


class _Builder:
    """Checks one syntax tree against the whitelist (:meth:`check`), then builds its SymPy
    expression (:meth:`build`), which meets only whitelisted nodes."""

    def __init__(self, text, names, functions, where, new_symbol, conditions):
        self.text, self.names, self.functions = text, names, functions
        self.where, self.new_symbol, self.conditions = where, new_symbol, conditions

    def refuse(self, what: str) -> ExpressionError:
        allowed = ", ".join(sorted(self.functions)) or "none"
        return ExpressionError(
            self.where,
            f"not allowed in an expression: {what} (allowed: numbers, names, + - * / **, unary - and +, "
            f"and calls of the functions {allowed})",
        )

    # -- the whitelist ---------------------------------------------------------------------
    def check(self, tree: ast.Expression) -> None:
        """Refuse the first node off the whitelist, naming it; private names first, wherever they are."""
        nodes = list(ast.walk(tree.body))
        for node in nodes:
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
            if name.startswith("_"):
                raise self.refuse(f"the name {name!r}: names starting with '_' are reserved")
        for node in nodes:
            self.check_node(node)

    def check_node(self, node: ast.AST) -> None:
        logic = self.conditions and type(getattr(node, "op", None)) in (*_LOGIC, ast.Invert)
        if isinstance(node, ast.Name | ast.expr_context | ast.operator | ast.unaryop | ast.cmpop):
            return
        if isinstance(node, ast.Constant):
            self.check_constant(node)
        elif isinstance(node, ast.BinOp | ast.UnaryOp):
            if not (type(node.op) in _BINARY or type(node.op) in _UNARY or isinstance(node.op, ast.Pow) or logic):
                raise self.refuse(_OPERATOR_NAMES.get(type(node.op), type(node.op).__name__))
        elif isinstance(node, ast.Call):
            if node.keywords:
                arg = node.keywords[0].arg
                raise self.refuse(f"a keyword argument ({f'{arg}=' if arg else '**'}...)")
            if not isinstance(node.func, ast.Name):
                self.check_node(node.func)  # names the construct called (a lambda, an attribute), if refused
                raise self.refuse("a call of an expression")
        elif isinstance(node, ast.Compare) and self.conditions:
            if not all(type(op) in _COMPARE for op in node.ops):
                raise self.refuse(f"the comparison {type(node.ops[0]).__name__}")
        elif not (isinstance(node, ast.Tuple) and self.conditions and len(node.elts) == 2):
            if isinstance(node, ast.Attribute):
                raise self.refuse(f"attribute access ('.{node.attr}')")
            raise self.refuse(_CONSTRUCTS.get(type(node), f"the construct {type(node).__name__}"))

    def check_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) and self.conditions:
            return
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.refuse(f"the keyword {value!r}")
        if isinstance(value, str | bytes):
            raise self.refuse(f"a string ({value!r})")
        if isinstance(value, complex):
            raise self.refuse(f"an imaginary number ({ast.get_source_segment(self.text, node)})")

    # -- building --------------------------------------------------------------------------
    def build(self, node: ast.AST) -> sp.Basic:
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand)
            return sp.Not(operand) if isinstance(node.op, ast.Invert) else _UNARY[type(node.op)](operand)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Tuple):  # a pair (value, condition), as a Piecewise argument
            return sp.Tuple(*(self.build(e) for e in node.elts))
        return self.call(node)

    def number(self, node: ast.Constant) -> sp.Basic:
        value = node.value
        if isinstance(value, bool):
            return sp.true if value else sp.false
        if isinstance(value, int):
            return sp.Integer(value)
        # a decimal as SymPy's parser reads it: from its digits, with their precision
        digits = (ast.get_source_segment(self.text, node) or repr(value)).replace("_", "")
        return sp.Float(digits)

    def name(self, name: str) -> sp.Basic:
        if name in self.names:
            return self.names[name]
        if self.new_symbol is not None and name not in self.functions:
            return self.new_symbol(name)
        if name in self.functions:
            raise self.refuse(f"the function {name!r} without a call (write {name}(...))")
        allowed = ", ".join(sorted(self.names)) or "none"
        raise ExpressionError(self.where, f"unknown name {name!r}; allowed names: {allowed}")

    def binary(self, node: ast.BinOp) -> sp.Basic:
        left, right = self.build(node.left), self.build(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right, self.where)
            return left**right
        return {**_BINARY, **_LOGIC}[type(node.op)](left, right)

    def compare(self, node: ast.Compare) -> sp.Basic:
        """a < b <= c as And(a < b, b <= c), as Python chains comparisons."""
        terms = [self.build(node.left), *(self.build(c) for c in node.comparators)]
        return sp.And(*(_COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, terms, terms[1:], strict=False)))

    def call(self, node: ast.Call) -> sp.Basic:
        name = node.func.id
        if name not in self.functions:
            allowed = ", ".join(sorted(self.functions)) or "none"
            raise ExpressionError(self.where, f"unknown function {name!r}; allowed functions: {allowed}")
        args = [self.build(a) for a in node.args]
        try:
            return self.functions[name](*args)
        except DeriveError:
            raise
        except Exception as exc:  # noqa: BLE001 - a wrong argument count or type, in SymPy's words
            raise ExpressionError(self.where, f"{name}(...) cannot take these arguments: {exc}") from None


def _check_power(base: sp.Basic, exponent: sp.Basic, where: str) -> None:
    """Refuse an exact power of a number too large to compute (9**9**9)."""
    if not (isinstance(base, sp.Rational) and isinstance(exponent, sp.Integer)):
        return
    size = max(abs(base.p), abs(base.q))
    if size > 1 and abs(int(exponent)) * math.log10(size) > _MAX_POWER_DIGITS:
        raise ExpressionError(
            where, f"the power {base}**{exponent} has more than {_MAX_POWER_DIGITS} digits; write a smaller number"
        )
