"""The Student-t CDF of a real nu in the generated SDE kernels: a straight-line function per nu.

A kernel's Student-t term is T = I_x(a, 1/2) with a = nu/2 and x = nu/(nu + y^2) (the two-sided
tail 1 - |s(y)|). With the Euler transformations of its hypergeometric series (DLMF 8.17.8, 15.8.1),

    x <= 1/2:  T = x^a G_t(x) / (a B(a, 1/2)),              G_t = 2F1(1/2, a; a + 1; x),
    x >= 1/2:  1 - T = 2 sqrt(1 - x) G_b(1 - x) / B(a, 1/2),  G_b = 2F1(1 - a, 1/2; 3/2; 1 - x),

where G_t and G_b are smooth and of order 1 on [0, 1/2] (their singularity is at 1). Each is
expanded in Chebyshev polynomials of t = 4x - 1 (resp. 4(1 - x) - 1) from 40-digit values at
Chebyshev nodes (mpmath), cut where the remaining coefficients sum to below 1e-17 times the
smallest value of the function there, and converted (in 40 digits) to a polynomial in t, which the
generated function evaluates by Horner's rule; x^a = exp(a log x) by the runtime's branch-free
log_unit and exp_neg (derive/runtime/student_t.py). Both sides are computed and one is selected:
no loop, branch or library call, so the update loops stay vectorizable. On the side x >= 1/2,
T = 1 - (1 - T) has a relative error of about 1e-16 / T(1/2); a nu whose T(1/2) is below
MIN_SWITCH_TAIL (nu above about 20), or whose series would be too long, is compiled as a call to
the continued fraction ``betainc_reg`` instead. Deterministic, so generated modules are byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import mpmath

#: longest polynomial compiled
MAX_TERMS = 64
#: smallest tail at the switch x = 1/2 (see the module docstring)
MIN_SWITCH_TAIL = 1e-4
_NODES = 96


@dataclass(frozen=True)
class HalfBetaFit:
    """Polynomials in t (coefficients of t^0, t^1, ...) and norms for one a = nu/2."""

    a: float
    tail: tuple[float, ...]
    body: tuple[float, ...]
    tail_norm: float  # 1 / (a B(a, 1/2))
    body_norm: float  # 2 / B(a, 1/2)

    @property
    def name(self) -> str:
        """The generated function's name, e.g. ``_student_t_tail_1p25`` for a = 1.25."""
        return "_student_t_tail_" + repr(self.a).replace(".", "p").replace("-", "m")


def _chebyshev(f) -> list:
    n = _NODES
    nodes = [(j + mpmath.mpf(1) / 2) * mpmath.pi / n for j in range(n)]
    values = [f((mpmath.cos(th) + 1) / 4) for th in nodes]
    coeffs = [
        2 * mpmath.fsum(v * mpmath.cos(k * th) for v, th in zip(values, nodes, strict=False)) / n for k in range(n)
    ]
    coeffs[0] /= 2
    smallest = min(abs(v) for v in values)
    for cut in range(1, n):
        if mpmath.fsum(abs(c) for c in coeffs[cut:]) < mpmath.mpf(10) ** -17 * smallest:
            return coeffs[:cut]
    return coeffs


def _monomial(chebyshev: list) -> tuple[float, ...]:
    """sum_k c_k T_k(t) as coefficients of 1, t, t^2, ... (T_k built by T_(k+1) = 2t T_k - T_(k-1))."""
    n = len(chebyshev)
    out = [mpmath.mpf(0)] * n
    prev, cur = [mpmath.mpf(1)] + [mpmath.mpf(0)] * (n - 1), [mpmath.mpf(0), mpmath.mpf(1)] + [mpmath.mpf(0)] * (n - 2)
    for k, c in enumerate(chebyshev):
        poly = prev if k == 0 else cur
        out = [o + c * p for o, p in zip(out, poly, strict=False)]
        if k >= 1:
            prev, cur = cur, [2 * (cur[i - 1] if i else 0) - prev[i] for i in range(n)]
    return tuple(float(c) for c in out)


@cache
def half_beta_fit(a: float) -> HalfBetaFit | None:
    """The polynomials for a = nu/2 > 0, or None where the straight-line form is not used (see the
    module docstring)."""
    with mpmath.workdps(40):
        A, half = mpmath.mpf(a), mpmath.mpf(1) / 2
        if mpmath.betainc(A, half, 0, half, regularized=True) < MIN_SWITCH_TAIL:
            return None
        tail = _chebyshev(lambda x: mpmath.hyp2f1(half, A, A + 1, x))
        body = _chebyshev(lambda z: mpmath.hyp2f1(1 - A, half, 3 * half, z))
        if max(len(tail), len(body)) > MAX_TERMS:
            return None
        beta = mpmath.beta(A, half)
        return HalfBetaFit(float(a), _monomial(tail), _monomial(body), float(1 / (A * beta)), float(2 / beta))


def _horner(name: str, coeffs: tuple[float, ...]) -> list[str]:
    lines = [f"    {name} = {coeffs[-1]!r}"]
    return lines + [f"    {name} = {name} * _t + {c!r}" for c in coeffs[-2::-1]]


def kernel_source(fit: HalfBetaFit) -> str:
    """Source of the generated function ``fit.name(x, xc)`` = I_x(a, 1/2) (xc = 1 - x given), for a
    module that imports _njit, _math, _exp_neg and _log_unit."""
    nu = 2 * fit.a
    lines = [
        '@_njit(cache=True, error_model="numpy", inline="always")',
        f"def {fit.name}(x, xc):",
        f'    """I_x(a, 1/2) at a = {fit.a!r}: the two-sided Student-t tail 1 - |s(y)| for nu = {nu!r},',
        '    x = nu/(nu + y^2), xc = 1 - x (derive/codegen/student_t_fit.py)."""',
        "    x = float(x)",
        "    xc = float(xc)",
        "    _t = min(4.0 * x - 1.0, 1.0)",
        *_horner("_p", fit.tail),
        f"    _tail = {fit.tail_norm!r} * _exp_neg({fit.a!r} * _log_unit(max(x, 2.2250738585072014e-308))) * _p",
        "    _t = min(4.0 * xc - 1.0, 1.0)",
        *_horner("_q", fit.body),
        f"    _body = {fit.body_norm!r} * _math.sqrt(max(xc, 0.0)) * _q",
        "    return _tail if x <= 0.5 else 1.0 - _body",
    ]
    return "\n".join(lines)
