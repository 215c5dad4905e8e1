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
    "eps": dict(nonnegative=True),
    "weight_decay": dict(nonnegative=True),
    "const": dict(real=True),
}


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
