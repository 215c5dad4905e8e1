"""The shared SymPy symbols of the project, with the assumptions the derivation relies on.

Names match the JSON output (``sympy.sympify`` of the strings gives symbols of the same names,
without assumptions; :func:`plain` strips assumptions for such comparisons).
"""

from __future__ import annotations

import sympy as sp

eta = sp.Symbol("eta", positive=True)  #: learning rate
sigma = sp.Symbol("sigma", positive=True)  #: scale of the gradient noise
g = sp.Symbol("g", real=True)  #: true gradient coordinate d_i f(x)
t = sp.Symbol("t", positive=True)  #: SDE time (one optimizer step = eta)
zeta = sp.Symbol("zeta", real=True)  #: standardized noise draw
nu = sp.Symbol("nu", positive=True)  #: Student-t degrees of freedom, when symbolic
grad = sp.Symbol("grad", real=True)  #: stochastic gradient g + sigma*zeta, as written in update rules
k = sp.Symbol("k", positive=True, integer=True)  #: step count (1 for the first step, as in PyTorch)

_BY_ROLE = {
    "lr": dict(positive=True),
    "decay": dict(positive=True),
    "fixed_decay": dict(positive=True),
    "noise_scale": dict(positive=True),
    "positive": dict(positive=True),
    "radius": dict(positive=True),
    "eps": dict(nonnegative=True),
    "weight_decay": dict(nonnegative=True),
    "const": dict(real=True),
}


def law_draw(i: int = 0) -> sp.Symbol:
    """The i-th independent draw of the gradient-noise law in one step (0: ``grad``, i: ``grad_i``)."""
    return zeta if i == 0 else sp.Symbol(f"zeta_{i}", real=True)


def grad_draw(i: int = 0) -> sp.Symbol:
    """The stochastic gradient of draw i as written in update rules: ``grad`` or ``grad_i``."""
    return grad if i == 0 else sp.Symbol(f"grad_{i}", real=True)


def gaussian_draw(i: int = 0) -> sp.Symbol:
    """An injected standard Gaussian draw as written in update rules: ``xi`` or ``xi_i``."""
    return sp.Symbol("xi" if i == 0 else f"xi_{i}", real=True)


def draw_index(sym: sp.Symbol, stem: str) -> int | None:
    """i if ``sym`` is named ``stem`` (i = 0) or ``stem_i`` (i >= 1), else None."""
    name = sym.name
    if name == stem:
        return 0
    head, sep, tail = name.rpartition("_")
    return int(tail) if sep and head == stem and tail.isdigit() and int(tail) >= 1 and str(int(tail)) == tail else None


def is_law_draw(sym: sp.Basic) -> bool:
    """Whether ``sym`` is a draw zeta, zeta_i of the gradient-noise law."""
    return isinstance(sym, sp.Symbol) and draw_index(sym, "zeta") is not None


def is_gaussian_draw(sym: sp.Basic) -> bool:
    """Whether ``sym`` is an injected standard Gaussian draw xi, xi_i."""
    return isinstance(sym, sp.Symbol) and draw_index(sym, "xi") is not None


def draws_in(expr: sp.Expr) -> set[sp.Symbol]:
    """The noise draws (law and injected Gaussian) that ``expr`` depends on."""
    return {s for s in expr.free_symbols if is_law_draw(s) or is_gaussian_draw(s)}


_COMPLEMENT = "one_minus_"


def complement_symbol(decay_name: str) -> sp.Symbol:
    """The positive symbol c = 1 - beta through which the engine writes a fixed EMA factor
    beta = 1 - c; :func:`sign_in_unit_interval` also uses c < 1."""
    return sp.Symbol(f"{_COMPLEMENT}{decay_name}", positive=True)


def sign_in_unit_interval(expr: sp.Expr) -> int | None:
    """The sign of ``expr`` (1, -1, or None if undecided), using that every complement symbol c
    of :func:`complement_symbol` lies in (0, 1) (written c = q/(1 + q), q > 0)."""
    for candidate in (expr, _unit_interval(expr)):
        if candidate.is_positive:
            return 1
        if candidate.is_negative:
            return -1
    return None


def _unit_interval(expr: sp.Expr) -> sp.Expr:
    subs = {c: sp.Symbol(f"q_{c.name}", positive=True) for c in expr.free_symbols if c.name.startswith(_COMPLEMENT)}
    return sp.factor(sp.together(expr.xreplace({c: q / (1 + q) for c, q in subs.items()}))) if subs else expr


def hyper_symbol(name: str, role: str) -> sp.Symbol:
    """The symbol of a hyperparameter with the assumptions its role allows."""
    return sp.Symbol(name, **_BY_ROLE[role])


def rate_name(decay_name: str) -> str:
    """Name of the rate rho = (1 - beta)/eta that replaces a decay hyperparameter beta."""
    return decay_name.replace("beta", "rho") if "beta" in decay_name else f"rho_{decay_name}"


def bias_name(decay_name: str) -> str:
    """Name of gamma = 1 - exp(-rho t), the continuous bias-correction factor of a decay."""
    return decay_name.replace("beta", "gamma") if "beta" in decay_name else f"gamma_{decay_name}"


def plain(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every symbol replaced by an assumption-free symbol of the same name."""
    return expr.xreplace({s: sp.Symbol(s.name) for s in expr.free_symbols})
