"""Expectations over the noise draw zeta of a symmetric law.

Inputs are expressions polynomial in ``zeta`` and in sign placeholders S_i = sign(y_i + zeta)
(see :class:`SignAtom`); the rules are

* E[zeta^n] = m_n, the law's moment (0 for odd n, by symmetry);
* E[S_i] = s(y_i) = 2F(y_i) - 1, the CDF rule (never SymPy's integral of sign);
* S_i^2 = 1 almost surely (the law has a density), so E[S_i^(2j) zeta^n] = m_n;
* anything else that involves zeta (a product of sign and zeta, two different signs, or a
  function of zeta that is not a polynomial) is refused with the offending term named.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import symbols as S
from .errors import UnsupportedUpdateError


@dataclass(frozen=True)
class SignAtom:
    """The placeholder S = sign(y + zeta) that stands for sign(a + b zeta) = sign(b) S, y = a/b."""

    symbol: sp.Symbol
    y: sp.Expr


_MOMENT = "zeta_moment_"


def moment_symbol(n: int) -> sp.Symbol:
    """Placeholder for the law's even moment E[zeta^n], filled in per law."""
    return sp.Symbol(f"{_MOMENT}{n}", positive=True)


def moment_order(sym: sp.Symbol) -> int | None:
    """n if ``sym`` is the placeholder of E[zeta^n], else None."""
    return int(sym.name[len(_MOMENT):]) if sym.name.startswith(_MOMENT) else None


def sign_mean_symbol(atom: SignAtom) -> sp.Function:
    return sp.Function("s")(atom.y)


def _shown(term: sp.Expr, signs: dict[sp.Symbol, SignAtom]) -> sp.Expr:
    """``term`` with sign placeholders written back as sign(y + zeta), for messages."""
    return term.xreplace({s: sp.sign(a.y + S.zeta) for s, a in signs.items()})


def expect(expr: sp.Expr, signs: dict[sp.Symbol, SignAtom], context: str) -> sp.Expr:
    """E[expr] over zeta, with moments as :func:`moment_symbol` and E[S] as s(y) (unevaluated)."""
    expr = sp.expand(expr)
    sign_syms = set(signs)
    total = []
    for term in sp.Add.make_args(expr):
        powers = term.as_powers_dict()
        n = powers.pop(S.zeta, 0)
        sign_powers = {s: powers.pop(s) for s in list(powers) if s in sign_syms}
        rest = sp.Mul(*[b**e for b, e in powers.items()])
        if rest.has(S.zeta) or any(rest.has(s) for s in sign_syms):
            raise UnsupportedUpdateError(
                f"{context}: the term {_shown(term, signs)} is not polynomial in the noise zeta (the factor {_shown(rest, signs)}); "
                "the engine averages polynomials in zeta and sign(affine in zeta) only")
        if not (isinstance(n, sp.Integer) or isinstance(n, int)) or n < 0:
            raise UnsupportedUpdateError(f"{context}: the term {_shown(term, signs)} has a non-integer power of the noise zeta")
        odd_signs = [s for s, p in sign_powers.items() if p % 2]
        if len(odd_signs) > 1:
            raise UnsupportedUpdateError(
                f"{context}: the term {_shown(term, signs)} multiplies signs of different functions of the noise; "
                "their joint law is not supported")
        if odd_signs and n:
            raise UnsupportedUpdateError(
                f"{context}: the term {_shown(term, signs)} needs E[zeta^{n} sign(...)], a partial moment of the law, "
                "which the engine does not support")
        if odd_signs:
            total.append(rest * sign_mean_symbol(signs[odd_signs[0]]))
        elif n % 2:
            continue
        elif n:
            total.append(rest * moment_symbol(int(n)))
        else:
            total.append(rest)
    return sp.Add(*total)


def is_random(expr: sp.Expr, signs: dict[sp.Symbol, SignAtom]) -> bool:
    """Whether ``expr`` depends on the noise draw."""
    return expr.has(S.zeta) or any(expr.has(s) for s in signs)
