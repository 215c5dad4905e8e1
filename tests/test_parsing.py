"""Strings are data: every expression string goes through derive.parsing, which builds SymPy
expressions from a whitelisted syntax tree and never evaluates the text."""

from __future__ import annotations

import glob

import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from derive import derive_sde, get_noise, load_spec
from derive.cli import main
from derive.errors import DeriveError, SpecError
from derive.optimizers import BUILTINS
from derive.parsing import ExpressionError, parse_expression, parse_number, sde_expression
from derive.spec import _DRAW, _GRADS, Optimizer, gradient_at

Y = sp.Symbol("y")
NAMES, FUNCTIONS = {"y": Y, "pi": sp.pi}, {"exp": sp.exp, "atan": sp.atan}


def _parse(text: str) -> sp.Expr:
    return parse_expression(text, names=NAMES, functions=FUNCTIONS, where="test")


@pytest.mark.parametrize(
    "text, construct",
    [
        ('__import__("os").system("touch F")', "the name '__import__'"),
        ("y.real", "attribute access ('.real')"),
        ("exp(y).func(y)", "attribute access ('.func')"),
        ("().__class__", "the name '__class__'"),
        ("y[0]", "a subscript"),
        ("(lambda: y)()", "a lambda"),
        ("[y for y in (1, 2)]", "a comprehension"),
        ("sum(y for y in (1, 2))", "a comprehension"),
        ('f"{y}"', "an f-string"),
        ('"y"', "a string"),
        ("_y + 1", "the name '_y'"),
        ("y or 1", "a boolean operator"),
        ("y if y else 1", "the keyword 'if'"),
        ("None", "the keyword None"),
        ("exp(y, evaluate=False)", "a keyword argument (evaluate=...)"),
        ("import os", "the Python keyword 'import'"),
        ("y < 1", "a comparison"),
        ("y ^ 2", "'^' (bitwise xor; write powers as **)"),
        ("y // 2", "'//'"),
        ("(y := 2)", "an assignment expression"),
        ("exp", "the function 'exp' without a call"),
        ("(exp)(y)", None),  # a plain call of an allowed function: fine
        ("[y]", "a list"),
        ("1j*y", "an imaginary number"),
        ("9**9**9", "more than 100000 digits"),
        ("y +\\\n 1", "a backslash"),
        ("(y\n+ 1)", "the character '\\n'"),
        ("y # note", "a comment"),
    ],
)
def test_each_construct_is_refused_in_one_line_naming_it(text, construct):
    if construct is None:
        assert _parse(text) == sp.exp(Y)
        return
    with pytest.raises(ExpressionError) as info:
        _parse(text)
    message = str(info.value)
    assert construct in message and "\n" not in message, message
    assert message.startswith("test: ")


def test_unknown_names_and_functions_are_refused_with_what_is_allowed():
    with pytest.raises(ExpressionError, match="unknown name 'z'; allowed names: pi, y"):
        _parse("y + z")
    with pytest.raises(ExpressionError, match="unknown function 'sin'; allowed functions: atan, exp"):
        _parse("sin(y)")
    with pytest.raises(ExpressionError, match="exp\\(...\\) cannot take these arguments"):
        _parse("exp(y, y)")


def test_any_function_the_caller_names_takes_any_number_of_arguments():
    """Issue 19 passes functions such as grad(P) and gradf(EXPR): the caller's callables are called."""
    calls = []

    def grad(*args):
        calls.append(args)
        return sp.Function("grad")(*args)

    expr = parse_expression("x - eta*grad(x + r*grad(x), 2, y)", names={}, functions={"grad": grad}, where="w",
                            new_symbol=sp.Symbol)  # fmt: skip
    x, eta, r, y = sp.symbols("x eta r y")
    assert expr == x - eta * sp.Function("grad")(x + r * sp.Function("grad")(x), 2, y) and len(calls) == 2


def _fresh_dir_is_untouched(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["sde", "signsgd", "--noise", 'cdf:__import__("os").system("touch F") or 1/(1+exp(-y))'], "'__import__'"),
        (["sde", "sgd", "--noise", "student-t", "--nu", '__import__("os").system("touch F")'], "'__import__'"),
        (["sde", "sgd", "--order", "2", "--curvature", '__import__("os").system("touch F")'], "'__import__'"),
        (
            [
                "stationary",
                "sgd",
                "--eta",
                "0.1",
                "--curvature",
                "1",
                "--hyper",
                'eta=__import__("os").system("touch F")',
            ],
            "eta must be a number",
        ),
    ],
)
def test_injections_on_the_command_line_are_refused_and_run_nothing(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "F").exists() and _fresh_dir_is_untouched(tmp_path) == []


def test_an_injection_in_an_update_rule_is_refused_and_runs_nothing(tmp_path, monkeypatch, capsys):
    """The spec file is code by design (the user names it); the update-rule string inside it is data."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.py").write_text(
        "from derive import Optimizer\n"
        "bad = Optimizer(name='bad', hyper={'eta': 'lr'},\n"
        "                update=[('x', 'x - eta*grad + 0*__import__(\"os\").system(\"touch F\")')])\n"
    )
    assert main(["sde", "spec.py:bad"]) == 2
    err = capsys.readouterr().err
    assert "assignment x <- " in err and "the name '__import__'" in err and err.count("\n") == 1, err
    assert not (tmp_path / "F").exists()
    with pytest.raises(SpecError, match="attribute access \\('.system'\\)"):
        Optimizer(name="bad", hyper={"eta": "lr"}, update=[("x", "x - eta*grad.system('touch F')")])


class _SymbolAndFunction(sp.Symbol):
    """``grad`` (a symbol) that is also the function ``grad(P)``, for SymPy's parser in the reference."""

    def __call__(self, *args):
        return gradient_at(self.name)(*args)


def _reference_parse(spec: Optimizer) -> list[tuple[str, sp.Expr]]:
    """The update rule as SymPy's own parser read it before (trusted strings only; ``grad(P)`` as
    the engine's gradient at P, the bare ``grad`` the draw at x)."""
    known, out = set(spec.state_names), []
    for target, text in spec.update:
        ns = spec._namespace()
        ns.update({n: sp.Symbol(n, real=True) for n in known if n not in ns})
        ns.update({name: sp.Symbol(name, real=True) for name in _DRAW.findall(text)})
        both = {n: _SymbolAndFunction(n, **ns[n].assumptions0) for n in _GRADS.findall(text) if n in ns}
        expr = parse_expr(text, local_dict={**ns, **both}, evaluate=True)
        out.append((target, expr.xreplace({both[n]: ns[n] for n in both})))
        known.add(target)
    return out


EXAMPLES = [
    f"{path}:{name}"
    for path in sorted(glob.glob("examples/*.py"))
    for name, value in __import__("runpy").run_path(path).items()
    if isinstance(value, Optimizer)
]


@pytest.mark.parametrize("ref", [*BUILTINS, *EXAMPLES])
def test_every_builtin_and_example_parses_to_the_same_expression(ref):
    spec = BUILTINS[ref] if ref in BUILTINS else load_spec(ref)
    ours, before = spec.parsed(), _reference_parse(spec)
    assert [t for t, _ in ours] == [t for t, _ in before]
    for (_, a), (_, b) in zip(ours, before, strict=True):
        assert sp.srepr(a) == sp.srepr(b), (ref, a, b)


def test_examples_are_all_found():
    assert len(EXAMPLES) >= 4, EXAMPLES


@pytest.mark.parametrize(
    "cdf", ["1/(1+exp(-y))", "1/(1 + exp(-y))", "1/2 + atan(y)/pi", "(1 + erf(y/sqrt(2)))/2", "1/2 + tanh(y)/2"]
)
def test_every_law_parses_to_the_same_cdf(cdf):
    reference = sp.sympify(cdf, locals={"y": sp.Symbol("y", real=True), "pi": sp.pi, "E": sp.E})
    assert sp.srepr(get_noise(f"cdf:{cdf}").cdf) == sp.srepr(reference)


@pytest.mark.parametrize("text", ["3", "5/2", "2.5", "0.1234567890123456789", "1e-8", "sqrt(2)", "pi/4", " 7 "])
def test_numbers_parse_as_before(text):
    assert sp.srepr(parse_number(text, "nu")) == sp.srepr(sp.sympify(text.strip()))


def test_nu_and_curvature_keep_their_messages():
    with pytest.raises(DeriveError, match="nu must be a positive finite number or 'nu' .*unknown name 'abc'"):
        get_noise("student-t", "abc")
    assert get_noise("student-t", "2.5").nu == sp.Rational(5, 2)


@pytest.mark.parametrize(
    "args",
    [("signsgd", "uniform", "paper"), ("signsgd", "student-t", "paper"), ("rmsprop", "gaussian", "noise-dominated")],
)
def test_json_sdes_read_back_as_sympify_read_them(args):
    """Piecewise (with conditions), betainc_regularized, the state and parameter names."""
    data = derive_sde(*args).to_dict()
    strings = [*data["drift"].values(), *(e for row in data["diffusion"] for e in row)]
    for text in strings:
        assert sde_expression(text) == sp.sympify(text), text


def test_json_hvp_reads_back_as_an_undefined_function():
    text = "-g - eta*hvp(g)/2"
    assert sde_expression(text) == parse_expr(text, local_dict={"hvp": sp.Function("hvp")})
