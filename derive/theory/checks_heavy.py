"""SGD under Cauchy noise by quantiles: the one-off check ``sgd-cauchy`` (SignSGD against SGD
under Student-t noise is a set of cases of :mod:`derive.theory.check_table`, ``heavy-tails``).

Under infinite variance a sample mean with a standard error tests nothing, so the Cauchy check
compares quantiles. The SE of an empirical q-quantile is taken from the order statistics, free of
any assumption on the law: with n samples the number below the true quantile is Binomial(n, q),
so SE = (Q(q + s) - Q(q - s)) / 2 with s = sqrt(q (1 - q) / n) and Q the empirical quantile function.
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy as sp
from scipy import special

from .. import symbols as S
from ..combination import Combination
from ..simulate import module_dir_for, quadratic, random_start, run
from .heavy_tails import abs_quantile, sgd_cauchy_scale
from .quadratic import curvature
from .rows import Row, Sim


def quantile_with_se(samples: np.ndarray, q: float) -> tuple[float, float]:
    """Empirical q-quantile and its distribution-free standard error (order statistics)."""
    n = samples.size
    s = math.sqrt(q * (1 - q) / n)
    lo, mid, hi = np.quantile(samples, [max(q - s, 0.0), q, min(q + s, 1.0)])
    return float(mid), float(hi - lo) / 2


def check_sgd_cauchy(sim: Sim) -> list[Row]:
    """SGD under Cauchy noise: quantiles of lambda |x| / sigma at stationarity against s^-1(q).

    The derivation (derive.theory.heavy_tails) gives the exact stationary law x = (sigma/lambda) zeta
    of the chain; two coordinates with lambda = 1, five samples per path and coordinate, from 12
    relaxation times on (the start's weight is e^-12) and 5 relaxation times apart (correlation e^-5).
    """
    t0, eta, sigma, lams = time.perf_counter(), 0.01, 1.0, [1.0, 1.0]
    scale = sgd_cauchy_scale()
    relax = 1.0 / (eta * min(lams))  # steps per relaxation time
    record = [int(math.ceil((12.0 + 5.0 * i) * relax)) for i in range(5)]  # correlation e^-5 between samples
    x0 = random_start(sim.paths, len(lams), sim.seed + 80, scale=0.1)
    combo = Combination("sgd", "cauchy")
    r = run(
        "optimizer",
        combo,
        x0,
        eta=eta,
        sigma=sigma,
        steps=record[-1],
        seed=sim.seed + 80,
        landscape=quadratic(lams),
        record=record,
        keep=True,
        module_dir=module_dir_for(combo),
    )
    u = (np.abs(r.path) * np.array(lams) / sigma).ravel()  # lambda |x| / sigma, predicted |zeta| in law
    seconds = time.perf_counter() - t0
    rows = []
    for q in (0.5, 0.9, 0.99):
        predicted = abs_quantile(q) * float(sp.simplify(scale * curvature / S.sigma))
        est, se = quantile_with_se(u, q)
        gaussian = math.sqrt(eta * min(lams) / 2) * math.sqrt(2) * float(special.erfinv(q))
        rows.append(
            Row(
                f"SGD under Cauchy: {q:g}-quantile of lambda|x|/sigma",
                f"x = ({scale}) zeta exactly: s^-1({q:g})",
                predicted,
                est,
                se,
                seconds if q == 0.5 else 0.0,
                "SE from order statistics (valid under infinite variance); E f = oo, so no mean is compared"
                if q == 0.5
                else "",
                series="SGD cauchy",
                x=q,
                mutants={"sigma doubled": 2 * predicted, "order-1 Gaussian SDE with sigma as the noise sd": gaussian},
            )
        )
    return rows
