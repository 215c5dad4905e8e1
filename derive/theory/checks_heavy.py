"""Checks under heavy-tailed noise: SGD under Cauchy by quantiles, SignSGD against SGD under Student-t.

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
from .montecarlo import burn_in, linearised_loss, stationary_loss
from .quadratic import NoStationaryLawError, curvature
from .rows import Row, Sim
from .stationary import stationary

LAM = [1.0, 4.0]


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


def check_heavy_tails(sim: Sim) -> list[Row]:
    """SignSGD against SGD under Student-t noise, nu in 1, 1.5, 2, 3, 5, and Gaussian.

    SignSGD's prediction is its linear-phase stationary loss (from the noise-dominated SDE, whose
    drift is -2 p(0) g/sigma for every law); SGD's is eta sigma^2 E[zeta^2]/4 per coordinate,
    infinite for nu <= 2 (the sample mean is shown without a verdict: check sgd-cauchy tests the
    Cauchy case by quantiles), and for nu <= 4 the loss has infinite variance, so its SE means
    nothing either (shown, no verdict).
    """
    rows, eta, sigma = [], 0.002, 1.0
    gaussian_sign = stationary("signsgd", "gaussian", regime="noise-dominated")
    gaussian_sgd = stationary("sgd")
    for noise, nu in [
        ("student-t", 1),
        ("student-t", 1.5),
        ("student-t", 2),
        ("student-t", 3),
        ("student-t", 5),
        ("gaussian", None),
    ]:
        x = float(nu) if nu is not None else math.inf
        label = f"nu={nu}" if nu is not None else "gaussian"
        t0 = time.perf_counter()
        sign = stationary("signsgd", noise, nu=nu, regime="noise-dominated")
        est, se = stationary_loss(
            "signsgd", LAM, eta, sigma, sim, noise=noise, nu=nu, burn=burn_in(sign, LAM, sim, eta=eta, sigma=sigma)
        )
        predicted_sign = linearised_loss(sign, LAM, eta=eta, sigma=sigma)
        mutants = (
            {"sigma doubled": linearised_loss(sign, LAM, eta=eta, sigma=2 * sigma)}
            if nu is None
            else {"sigma 20% too large": linearised_loss(sign, LAM, eta=eta, sigma=1.2 * sigma)}
        )
        gaussian_p0 = linearised_loss(gaussian_sign, LAM, eta=eta, sigma=sigma)
        if nu is not None and abs(gaussian_p0 / predicted_sign - 1) > 0.05:  # nu = 5: 3.3%, below the resolution
            mutants["the Gaussian law's p(0)"] = gaussian_p0
        rows.append(
            Row(
                f"SignSGD stationary loss, {label} (linear phase)",
                str(sign.expected_loss),
                predicted_sign,
                est,
                se,
                time.perf_counter() - t0,
                series="heavy-tails SignSGD",
                x=x,
                mutants=mutants,
            )
        )
        t0 = time.perf_counter()
        try:
            predicted = linearised_loss(stationary("sgd", noise, nu=nu), LAM, eta=eta, sigma=sigma)
        except NoStationaryLawError:
            predicted = math.inf
        est, se = stationary_loss("sgd", LAM, eta, sigma, sim, noise=noise, nu=nu)
        verdict = True if nu is None or nu > 4 else None  # nu <= 4: the loss has no finite variance, so no SE
        mutants = {}
        if verdict:
            mutants = (
                {"sigma doubled": linearised_loss(gaussian_sgd, LAM, eta=eta, sigma=2 * sigma)}
                if nu is None
                else {"E[zeta^2] = 1 (the Gaussian variance)": linearised_loss(gaussian_sgd, LAM, eta=eta, sigma=sigma)}
            )
        rows.append(
            Row(
                f"SGD stationary loss, {label}",
                "eta*sigma**2*E[zeta^2]/4 per coordinate",
                predicted,
                est,
                se,
                time.perf_counter() - t0,
                ""
                if verdict
                else (
                    f"SGD, {label}: "
                    + (
                        "no finite mean (shown, no verdict)"
                        if not math.isfinite(predicted)
                        else "infinite loss variance: no verdict"
                    )
                ),
                expect_equal=verdict,
                series="heavy-tails SGD",
                x=x,
                mutants=mutants,
            )
        )
    return rows
