"""Numbers for the closed forms: hyperparameters by name, and the curvatures of the quadratic model.

A closed form is an expression in the SDE's symbols (eta, sigma, rho_i = (1 - beta_i)/eta, eps,
theta, nu) and the curvature lambda. :func:`parameter_values` turns the user's values (PyTorch
names: eta, beta1, beta2, eps, theta) into those symbols' values, completing the optimizer's
defaults once eta is known; :func:`parse_curvatures` reads one curvature per coordinate.
"""

from __future__ import annotations

import math

import sympy as sp

from .. import symbols as S
from ..errors import DeriveError
from ..optimizers import get_optimizer
from ..parsing import parse_number


class ValueInputError(DeriveError, ValueError):
    """A numeric input (eta, sigma, a hyperparameter, a curvature) that is not allowed."""


def _number(name: str, value: object) -> float:
    try:
        number = float(parse_number(value, name)) if isinstance(value, str) else float(value)
    except (sp.SympifyError, TypeError, ValueError):
        raise ValueInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueInputError(f"{name} must be finite, got {value!r}")
    return number


def parse_hyper(items: list[str] | None) -> dict[str, float]:
    """NAME=VALUE strings -> {name: value}."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueInputError(f"--hyper takes NAME=VALUE, got {item!r}")
        out[name.strip()] = _number(name.strip(), value)
    return out


def parse_curvatures(text: str | None) -> list[sp.Expr] | None:
    """'1,4.75,8.5' -> one positive curvature per coordinate (exact rationals); None for the symbol."""
    if text is None:
        return None
    values = []
    for part in str(text).split(","):
        try:
            value = sp.nsimplify(parse_number(part.strip(), "--curvature"), rational=True)
        except (sp.SympifyError, TypeError, ValueError):
            value = None
        if value is None or not value.is_number or not value.is_real:
            raise ValueInputError(f"--curvature takes numbers separated by commas, got {part.strip()!r} in {text!r}")
        values.append(value)
    return values


def parameter_values(
    optimizer, eta: float | None = None, sigma: float | None = None, hyper: dict[str, float] | None = None
) -> dict[str, float]:
    """Values of the SDE's symbols by name: eta, sigma, each rate rho = (1 - beta)/eta, eps, theta.

    Hyperparameters not given take the optimizer's defaults when eta is given (a rate needs eta).
    """
    spec = get_optimizer(optimizer)
    lr = spec.hypers_with_role("lr")[0]
    values: dict[str, float] = {}
    hyper = dict(hyper or {})
    unknown = sorted(set(hyper) - set(spec.hyper))
    if unknown:
        raise ValueInputError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for {spec.name}; "
            f"it has {', '.join(n for n in spec.hyper if n != lr)}"
        )
    if lr in hyper:
        if eta is not None:
            raise ValueInputError(f"give the learning rate once: --eta or --hyper {lr}=..., not both")
        eta = hyper.pop(lr)
    if eta is not None:
        eta = _number("eta", eta)
        if eta <= 0:
            raise ValueInputError(f"eta must be > 0, got {eta}")
        values[S.eta.name] = eta
        hyper = {**{n: v for n, v in spec.defaults.items() if n != lr}, **hyper}
    if sigma is not None:
        sigma = _number("sigma", sigma)
        if sigma <= 0:
            raise ValueInputError(f"sigma must be > 0, got {sigma}")
        values[S.sigma.name] = sigma
    for name, value in hyper.items():
        role, value = spec.hyper[name], _number(name, value)
        if role == "decay":
            if not 0 < value < 1:
                raise ValueInputError(f"{name} must lie in (0, 1), got {value}")
            if eta is None:
                raise ValueInputError(f"{name} sets the rate (1 - {name})/eta: give --eta too")
            values[S.rate_name(name)] = (1.0 - value) / eta
        elif role in ("eps", "weight_decay") and value < 0:
            raise ValueInputError(f"{name} must be >= 0, got {value}")
        values[name] = value
    return values


def substitute(expr: sp.Expr, numbers: dict[str, float]) -> sp.Expr:
    """``expr`` with every symbol named in ``numbers`` replaced by its value."""
    expr = sp.sympify(expr)
    return expr.xreplace({s: sp.Float(numbers[s.name]) for s in expr.free_symbols if s.name in numbers})


def as_number(expr: sp.Expr) -> float | None:
    """A float if ``expr`` has no free symbols left, else None."""
    expr = sp.sympify(expr)
    if expr.free_symbols:
        return None
    value = complex(sp.N(expr))
    return value.real if abs(value.imag) <= 1e-12 * max(1.0, abs(value.real)) else None
