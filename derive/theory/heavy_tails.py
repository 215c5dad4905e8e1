"""SGD under Cauchy noise: the exact stationary law of the discrete chain, and its quantiles.

SGD on f = lambda x^2/2 is the linear chain x_{k+1} = (1 - eta lambda) x_k - eta sigma zeta_k, so
x_k = (1 - eta lambda)^k x_0 - sum_j c_j zeta_{k-1-j} with c_j = eta sigma (1 - eta lambda)^j. The
Cauchy law is strictly 1-stable: sum_j c_j zeta_j has the law of (sum_j |c_j|) zeta. For
0 < eta lambda <= 1 the stationary law is therefore, exactly and for every eta,

    x = s zeta,   s = sum_j eta sigma (1 - eta lambda)^j = sigma / lambda,

which is also the stationary law of the Cauchy-driven SDE dX = -lambda X dt + sigma dL_t (the
Gaussian order-1 SDE does not exist: E[zeta^2] = oo). No moment of f = lambda x^2/2 of order
>= 1/2 is finite, so a mean with a standard error tests nothing; the quantiles are finite:
P(|zeta| <= u) = s(u), so the q-quantile of lambda |x| / sigma is s^-1(q) (tan(pi q / 2) for Cauchy).
"""

from __future__ import annotations

import sympy as sp

from .. import symbols as S
from .numeric_law import numeric_law
from .quadratic import curvature


def sgd_cauchy_scale() -> sp.Expr:
    """The scale of the stationary Cauchy law of the SGD chain, summed symbolically (0 < eta lambda <= 1)."""
    j = sp.Symbol("j", integer=True, nonnegative=True)
    total = sp.summation(S.eta * S.sigma * (1 - S.eta * curvature) ** j, (j, 0, sp.oo))
    # the branch of the convergent geometric series, |1 - eta lambda| < 1
    return sp.simplify(total.replace(sp.Piecewise, lambda *pairs: pairs[0][0]))


def abs_quantile(q: float) -> float:
    """The q-quantile of |zeta| under the Cauchy law, s^-1(q)."""
    return numeric_law("cauchy").abs_quantile(q)
