"""A noise law evaluated numerically: s(y) = 2F(y) - 1 on arrays, p(0), and the inverse of s.

Built from the symbolic :class:`derive.noise.NoiseLaw` objects (this lives here rather than in
``noise.py``, which another part of the project owns). For the Student-t family (Cauchy is nu = 1)
s(y) = 2 stdtr(nu, y) - 1 = sign(y) I_{y^2/(nu+y^2)}(1/2, nu/2) with SciPy's regularized incomplete
beta function, valid for every real nu > 0 and free of the cancellation of 2F - 1 near y = 0; every other law, user CDFs included, is
the law's own s(y) expression lambdified for NumPy and SciPy (uniform: a Piecewise, clipped).

Since |sign| = 1, P(|zeta| <= u) = s(u) for u >= 0: the quantiles of |zeta| are s^-1(q).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp
from scipy import optimize, special

from ..errors import DeriveError
from ..noise import NoiseLaw, StudentT, get_noise


@dataclass(frozen=True)
class NumericLaw:
    """s(y) on arrays, p(0) and the support bound of one standardized symmetric law."""

    law: NoiseLaw
    s: Callable[[np.ndarray], np.ndarray]
    p0: float
    bound: float  #: |zeta| <= bound (inf for unbounded laws)

    @property
    def label(self) -> str:
        return self.law.label

    def s_of(self, y: float) -> float:
        return float(self.s(np.asarray(float(y))))

    def abs_quantile(self, q: float) -> float:
        """u with P(|zeta| <= u) = s(u) = q, 0 < q < 1."""
        if not 0 < q < 1:
            raise DeriveError(f"a quantile level must lie in (0, 1), got {q}")
        hi = 1.0
        while self.s_of(hi) < q and hi < 1e300:
            hi *= 2.0
        return float(optimize.brentq(lambda u: self.s_of(u) - q, 0.0, hi, xtol=1e-14, rtol=1e-14))


def _numeric_nu(law: StudentT) -> float:
    if not law.nu.is_number:
        raise DeriveError(f"the {law.label} law has a symbolic nu; give a numeric one (--nu 2.5) to evaluate it")
    return float(law.nu)


@cache
def _numeric(law: NoiseLaw) -> NumericLaw:
    y = sp.Symbol("y", real=True)
    if isinstance(law, StudentT):
        nu = _numeric_nu(law)

        def s(v):  # 2 stdtr(nu, v) - 1, written without the cancellation near v = 0
            return np.sign(v) * special.betainc(0.5, nu / 2, v * v / (nu + v * v))
    else:
        s = sp.lambdify(y, law.s(y), modules=["numpy", "scipy"])
    p0 = law.p0
    if not p0.is_number:
        raise DeriveError(f"p(0) of the {law.label} law is {p0}, not a number")
    bound = float(law.bound) if law.bound != sp.oo else np.inf

    def vector_s(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        return np.broadcast_to(np.asarray(s(v), dtype=float), v.shape).copy()

    return NumericLaw(law, vector_s, float(p0), bound)


def numeric_law(noise: str | NoiseLaw = "gaussian", nu: object = None) -> NumericLaw:
    """The numeric form of a law given by name (as :func:`derive.noise.get_noise`) or object."""
    return _numeric(get_noise(noise, nu))
