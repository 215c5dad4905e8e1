"""Check of the batch-size scaling rules: simulate at kappa = 1, 4, 16 with the derived rule and
compare the loss at equal epochs (a quarter of the run and its end).

The mutation test of this check (tests/test_checks.py) runs it with a wrong exponent of eta (the
square-root rule for SGD, the linear rule for the others) through ``eta_exponents`` and asserts
that rows fail.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..combination import Combination
from ..simulate import quadratic, random_start, run
from .rows import Row, Sim
from .scaling import scaling_rule

LAM = [1.0, 4.0]
# (optimizer, regime, criterion, eta, sigma, hyper, scale of x0). The starts put SignSGD in its
# linear phase, Adam in its noise-dominated regime (g << sigma) and AdamW near the minimum,
# where the rules derived under the stationary criterion are meant to hold.
CASES = [
    ("sgd", "paper", "sde", 0.001, 2.0, {}, 1.0),
    ("signsgd", "paper", "stationary", 0.001, 2.0, {}, 0.05),
    ("adam", "noise-dominated", "sde", 0.001, 4.0, dict(beta1=0.99, beta2=0.999, eps=1e-8), 0.1),
    ("adamw", "paper", "stationary", 0.001, 2.0, dict(beta1=0.999, beta2=0.999, eps=0.0, theta=0.5), 0.02),
]


def scaled(
    optimizer: str,
    regime: str,
    criterion: str,
    kappa: float,
    eta: float,
    sigma: float,
    hyper: dict,
    eta_exponent: float | None = None,
):
    """eta, sigma and hyperparameters at batch kappa B under the derived rule (eta's exponent overridable)."""
    rule = scaling_rule(optimizer, regime, criterion)
    e = {k: float(v) for k, v in rule.exponents.items() if k not in rule.free}
    if eta_exponent is not None:
        e["eta"] = float(eta_exponent)
    new = dict(hyper)
    new_eta = eta * kappa ** e["eta"]
    for name, value in hyper.items():
        if name.startswith("beta"):
            new[name] = 1 - (1 - value) * kappa ** (e[name.replace("beta", "rho")] + e["eta"])
        elif name in ("eps", "theta"):
            new[name] = value * kappa ** e[name]
    return new_eta, sigma / math.sqrt(kappa), new, e["eta"]


def check_scaling(sim: Sim, eta_exponents: dict[str, float] | None = None) -> list[Row]:
    """Loss at kappa = 4, 16 against kappa = 1 at equal epochs, under each derived rule."""
    rows = []
    for optimizer, regime, criterion, eta, sigma, hyper, scale in CASES:
        if eta_exponents is not None and optimizer not in eta_exponents:
            continue
        t0 = time.perf_counter()
        base = None
        for kappa in (1.0, 4.0, 16.0):
            k_eta, k_sigma, k_hyper, a = scaled(
                optimizer, regime, criterion, kappa, eta, sigma, hyper, (eta_exponents or {}).get(optimizer)
            )
            epochs_time = 8.0  # SDE time of the whole run at kappa = 1
            steps = int(round(epochs_time / eta / kappa))
            record = np.array([steps // 4, steps])
            x0 = random_start(sim.paths, len(LAM), sim.seed, scale=scale)
            r = run(
                "optimizer",
                Combination(optimizer),
                x0,
                eta=k_eta,
                sigma=k_sigma,
                steps=steps,
                seed=sim.seed + int(kappa),
                landscape=quadratic(LAM),
                hyper=k_hyper or None,
                record=record,
            )
            means, ses = r.loss_mean, r.loss_se
            if base is None:
                base = (means, ses)
                continue
            for i, label in enumerate(("a quarter of the epochs", "the end")):
                se = math.sqrt(ses[i] ** 2 + base[1][i] ** 2)
                rows.append(
                    Row(
                        f"{optimizer} {regime} scaling (eta ~ kappa^{a}): kappa={kappa:g} vs 1, loss at {label}",
                        criterion,
                        float(base[0][i]),
                        float(means[i]),
                        se,
                        time.perf_counter() - t0,
                        f"{optimizer} scaling: eta*lambda_max at kappa=16: {k_eta * max(LAM):.3g}; mutation "
                        "test: the wrong exponent of eta fails these rows"
                        if kappa == 16 and i == 1
                        else "",
                    )
                )
    return rows
