"""`derive check`: every closed-form result, derived symbolically and confirmed by simulating the
discrete optimizers with the generated simulators.

Each check compares a symbolic prediction (derived by derive.theory from the SDE) with a Monte
Carlo estimate and its standard error. Stationary estimates average each path's loss over the
recorded steps after a burn-in, then over independent paths: SE = sd(path averages)/sqrt(N).
A check agrees when |estimate - prediction| <= 4 SE. The step-size bias of the discrete optimizer
against the continuous-time formulas is of order eta * lambda (reference: 2-3 per cent at
eta = 0.01, curvatures up to 10); every check here uses steps small enough that this bias is below
its 4-SE tolerance, and the table prints eta*lambda_max next to each row so the reader can see it.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import sympy as sp

from ..codegen.model import Combination
from ..symbols import eta as ETA
from ..simulate import module_dir_for, quadratic, random_start, run
from .quadratic import NoStationaryLawError, curvature
from .scaling import scaling_rule
from .stationary import SecondOrder, stationary



@dataclass
class Row:
    name: str
    symbolic: str
    predicted: float
    estimate: float
    se: float
    seconds: float
    note: str = ""
    expect_equal: bool | None = True  # False: passes when NOT within 4 SE; None: shown, no verdict
    series: str = ""  # for plots: which curve the row belongs to
    x: float = math.nan  # for plots: the abscissa (sigma, nu, ...)

    @property
    def gap_in_se(self) -> float:
        return abs(self.estimate - self.predicted) / self.se if self.se > 0 else math.inf

    @property
    def ok(self) -> bool:
        return self.expect_equal is None or (self.gap_in_se <= 4) == self.expect_equal


def _values(expr: sp.Expr, **numbers: float) -> float:
    return float(expr.xreplace({s: numbers[s.name] for s in expr.free_symbols if s.name in numbers}))


@dataclass
class Sim:
    """Monte Carlo sizes: paths and the burn-in / averaging windows in SDE time."""

    paths: int = 4000
    burn: float = 6.0
    window: float = 6.0
    seed: int = 11


def stationary_loss(optimizer: str, lam: list[float], eta: float, sigma: float, sim: Sim, noise: str = "gaussian",
                    nu=None, hyper: dict | None = None, burn: float | None = None) -> tuple[float, float]:
    """Mean stationary loss of the discrete optimizer on sum lam x^2/2, and its standard error."""
    combo = Combination(optimizer, noise, nu=nu)
    start = int(math.ceil((burn if burn is not None else sim.burn) / eta))
    steps = start + int(math.ceil(sim.window / eta))
    record = np.unique(np.linspace(start, steps, 12).round().astype(np.int64))
    x0 = random_start(sim.paths, len(lam), sim.seed, scale=0.1)
    r = run("optimizer", combo, x0, eta=eta, sigma=sigma, steps=steps, seed=sim.seed, landscape=quadratic(lam),
            hyper=hyper, record=record, module_dir=module_dir_for(combo))
    per_path = r.loss.mean(axis=0)
    return float(per_path.mean()), float(per_path.std(ddof=1) / math.sqrt(per_path.size))


def relaxation_time(result, lam: list[float], **numbers: float) -> float:
    """1 / the slowest decay rate of the linearised drift A over the coordinates (SDE time)."""
    slowest = math.inf
    for lam_j in lam:
        value = {s: numbers[s.name] for s in result.model.A.free_symbols if s.name in numbers}
        value[curvature] = lam_j
        A = np.array(result.model.A.xreplace(value).evalf(), dtype=float)
        slowest = min(slowest, float(np.min(-np.linalg.eigvals(A).real)))
    return 1.0 / slowest


def _burn(result, lam, sim: "Sim", **numbers: float) -> float:
    """Burn-in long enough to forget the start: at least sim.burn and 6 relaxation times."""
    return max(sim.burn, 6.0 * relaxation_time(result, lam, **numbers))


def _loss_prediction(result, lam: list[float], **numbers: float) -> float:
    """Sum over coordinates of E f_j; with the second-order correction where the SDE has one."""
    total = 0.0
    for lam_j in lam:
        value = {s: numbers[s.name] for s in _symbols(result) if s.name in numbers}
        value[curvature] = lam_j
        if isinstance(result.second_order, SecondOrder):
            total += lam_j / 2 * result.second_order.value(value)
        elif result.second_order is not None:
            total += lam_j / 2 * float(result.second_order.xreplace(value))
        else:
            total += float(result.expected_loss.xreplace(value))
    return total


def _symbols(result) -> set:
    return result.expected_loss.free_symbols | (result.second_order.free_symbols if isinstance(result.second_order, sp.Expr) else set()) \
        | {s for e in (result.model.A, result.model.B) for s in e.free_symbols}


# ---- the checks ------------------------------------------------------------------------------
LAM = [1.0, 4.0]


def check_sgd(sim: Sim) -> list[Row]:
    rows, result = [], stationary("sgd")
    for i, sigma in enumerate((0.5, 1.0, 2.0)):  # independent noise per sigma (same draws would scale exactly)
        t0, eta = time.perf_counter(), 0.002
        est, se = stationary_loss("sgd", LAM, eta, sigma, replace(sim, seed=sim.seed + i),
                                  burn=_burn(result, LAM, sim, eta=eta, sigma=sigma))
        rows.append(Row(f"SGD stationary loss, sigma={sigma}", f"{sum(1 for _ in LAM)} x {result.expected_loss}",
                        _loss_prediction(result, LAM, eta=eta, sigma=sigma), est, se, time.perf_counter() - t0,
                        f"eta*lambda_max={eta * max(LAM):.3g}", series="SGD", x=sigma))
    return rows


def _full_quadratic():
    """f = x^T H x / 2 for a full symmetric H (row-major in params), as user Numba functions."""
    from numba import njit

    @njit(cache=True)
    def grad(x, h, out):
        d = x.shape[0]
        for i in range(d):
            acc = 0.0
            for j in range(d):
                acc += h[i * d + j] * x[j]
            out[i] = acc

    @njit(cache=True)
    def loss(x, h):
        d = x.shape[0]
        acc = 0.0
        for i in range(d):
            for j in range(d):
                acc += 0.5 * x[i] * h[i * d + j] * x[j]
        return acc

    return grad, loss


def check_sgd_full_matrix(sim: Sim) -> list[Row]:
    """SGD on a full H with Sigma = sigma^2 I: C solves H C + C H = eta Sigma, E f = eta tr(Sigma)/4;
    here C = eta sigma^2 H^-1 / 2, and the off-diagonal covariance is checked too."""
    from ..simulate import user_landscape
    from .stationary import sgd_full_matrix

    t0, eta, sigma = time.perf_counter(), 0.002, 1.0
    H = np.array([[2.0, 0.8], [0.8, 1.0]])
    result = sgd_full_matrix(2)
    numbers = {**{result.H[i, j]: H[i, j] for i in range(2) for j in range(2)},
               **{result.Sigma[i, j]: (sigma**2 if i == j else 0.0) for i in range(2) for j in range(2)},
               ETA: eta}
    cov = np.array(result.covariance.xreplace(numbers).evalf(), dtype=float)
    loss_pred = float(result.expected_loss.xreplace(numbers))
    grad, loss = _full_quadratic()
    land = user_landscape(grad, loss, H.ravel(), name="full H", dim=2)
    burn = max(sim.burn, 6.0 / float(np.linalg.eigvalsh(H).min()))
    start = int(math.ceil(burn / eta))
    steps = start + int(math.ceil(sim.window / eta))
    record = np.unique(np.linspace(start, steps, 12).round().astype(np.int64))
    x0 = random_start(sim.paths, 2, sim.seed, scale=0.1)
    r = run("optimizer", Combination("sgd"), x0, eta=eta, sigma=sigma, steps=steps, seed=sim.seed, landscape=land,
            record=record, keep=True)
    per_path = r.loss.mean(axis=0)
    xs = r.path  # [R, N, 2]
    cross = (xs[..., 0] * xs[..., 1]).mean(axis=0)  # per path, time-averaged x1 x2 (mean is 0)
    n = per_path.size
    return [Row("SGD full H [[2,.8],[.8,1]], Sigma = I: stationary loss", str(result.expected_loss), loss_pred,
                float(per_path.mean()), float(per_path.std(ddof=1) / math.sqrt(n)), time.perf_counter() - t0,
                "E f independent of H", series="SGD full H"),
            Row("SGD full H: stationary Cov(x1, x2)", "C[0,1] of H C + C H = eta Sigma", float(cov[0, 1]),
                float(cross.mean()), float(cross.std(ddof=1) / math.sqrt(n)), 0.0, series="SGD full H")]


def check_signsgd(sim: Sim) -> list[Row]:
    rows = []
    for noise, nu in (("gaussian", None), ("student-t", 3), ("laplace", None), ("cauchy", None)):
        result = stationary("signsgd", noise, nu=nu)
        for i, sigma in enumerate((0.5, 1.0, 2.0) if noise == "gaussian" else (1.0,)):
            t0, eta = time.perf_counter(), 0.002
            est, se = stationary_loss("signsgd", LAM, eta, sigma, replace(sim, seed=sim.seed + i), noise=noise, nu=nu,
                                      burn=_burn(result, LAM, sim, eta=eta, sigma=sigma))
            rows.append(Row(f"SignSGD stationary loss, {result.sde.noise}, sigma={sigma}",
                            "sum lambda/2 * " + str(result.second_order),
                            _loss_prediction(result, LAM, eta=eta, sigma=sigma), est, se, time.perf_counter() - t0,
                            f"eta*lambda_max={eta * max(LAM):.3g}; second-order terms kept",
                            series=f"SignSGD {result.sde.noise}", x=sigma))
    return rows


def check_sgd_cauchy_unbounded(sim: Sim) -> list[Row]:
    """SGD under Cauchy noise: the sample mean loss grows with the number of paths (no finite mean)."""
    t0, eta = time.perf_counter(), 0.002
    small = stationary_loss("sgd", LAM, eta, 1.0, Sim(sim.paths // 8, sim.burn, sim.window, sim.seed + 1), noise="cauchy")
    large = stationary_loss("sgd", LAM, eta, 1.0, Sim(sim.paths * 2, sim.burn, sim.window, sim.seed + 2), noise="cauchy")
    return [Row("SGD under Cauchy: sample mean loss, N/8 paths vs 2N paths", "E f = oo (E[zeta^2] = oo)",
                small[0], large[0], small[1], time.perf_counter() - t0,
                f"mean grows {large[0] / small[0]:.1f}x with 16x the paths", expect_equal=False)]


def check_signsgd_speed(sim: Sim) -> list[Row]:
    """Linear phase: E x(t) = x0 exp(-2 p(0) lambda t / sigma); the rate scales like 1/sigma."""
    rows, result = [], stationary("signsgd")
    rate_expr = -result.model.A[0, 0]
    for sigma in (1.0, 2.0, 4.0):
        t0, eta, lam, t_end = time.perf_counter(), 0.002, 1.0, 0.5 * sigma
        steps = int(round(t_end / eta))
        x0 = 0.2 * sigma + 0.02 * random_start(sim.paths, 1, sim.seed)
        r = run("optimizer", Combination("signsgd"), x0, eta=eta, sigma=sigma, steps=steps, seed=sim.seed,
                landscape=quadratic([lam]), record=[0, steps])
        m0, m1 = r.mean[0, 0], r.mean[1, 0]
        se1 = math.sqrt(r.var[1, 0] / sim.paths)
        rate = -math.log(m1 / m0) / t_end
        rate_se = se1 / m1 / t_end
        rows.append(Row(f"SignSGD linear-phase decay rate, sigma={sigma}", str(rate_expr),
                        _values(rate_expr.xreplace({curvature: lam}), sigma=sigma), rate, rate_se,
                        time.perf_counter() - t0, "rate * sigma constant: speed ~ 1/sigma"))
    return rows


def check_rmspropw(sim: Sim) -> list[Row]:
    rows, result = [], stationary("rmspropw")
    cases = [(1.0, 0.5, 0.0)] + [(sigma, 0.0, theta) for theta in (0.0, 0.5) for sigma in (1.0, 4.0, 16.0)]
    for i, (sigma, eps, theta) in enumerate(cases):
        t0, eta, beta = time.perf_counter(), 0.002, 0.998
        hyper = dict(beta=beta, eps=eps, theta=theta)
        rho = (1 - beta) / eta
        burn = _burn(result, LAM, sim, eta=eta, sigma=sigma, eps=eps, theta=theta, rho=rho)
        est, se = stationary_loss("rmspropw", LAM, eta, sigma, replace(sim, seed=sim.seed + i), hyper=hyper, burn=burn)
        rows.append(Row(f"RMSpropW stationary loss, sigma={sigma}, eps={eps}, theta={theta}", str(result.expected_loss),
                        _loss_prediction(result, LAM, eta=eta, sigma=sigma, eps=eps, theta=theta, rho=rho), est, se,
                        time.perf_counter() - t0, "bounded in sigma when theta > 0" if theta else "",
                        series=f"RMSpropW theta={theta}" if eps == 0 else "", x=sigma))
    return rows


def check_adamw(sim: Sim) -> list[Row]:
    rows, result = [], stationary("adamw")
    (rate, published, factor), = result.momentum
    t0, eta, beta1, theta = time.perf_counter(), 0.002, 0.998, 1.0  # rho1 = 1: factor rho1/(rho1 + theta) = 1/2
    hyper = dict(beta1=beta1, beta2=0.998, eps=0.0, theta=theta)
    numbers = dict(eta=eta, sigma=1.0, eps=0.0, theta=theta, rho1=(1 - beta1) / eta, rho2=(1 - 0.998) / eta)
    est, se = stationary_loss("adamw", LAM, eta, 1.0, sim, hyper=hyper, burn=_burn(result, LAM, sim, **numbers))
    kept = _loss_prediction(result, LAM, **numbers)
    rows.append(Row("AdamW stationary loss, momentum kept (rho1=1, theta=1)", str(result.expected_loss), kept, est, se,
                    time.perf_counter() - t0, f"factor {factor} = {_values(factor, **numbers):.3g}"))
    eliminated = sum(lam_j / 2 * _values(published.xreplace({curvature: sp.nsimplify(lam_j)}), **numbers) for lam_j in LAM)
    rows.append(Row("AdamW stationary loss vs the published form (momentum eliminated)", str(published),
                    eliminated, est, se, 0.0, "the simulation must reject it", expect_equal=False))
    adam = stationary("adam")
    t0 = time.perf_counter()
    hyper = dict(beta1=0.98, beta2=0.998, eps=0.0)
    numbers = dict(eta=eta, sigma=1.0, eps=0.0, rho1=(1 - 0.98) / eta, rho2=(1 - 0.998) / eta)
    est, se = stationary_loss("adam", LAM, eta, 1.0, sim, hyper=hyper, burn=_burn(adam, LAM, sim, **numbers))
    rows.append(Row("Adam stationary loss (eps=0)", str(adam.expected_loss), _loss_prediction(adam, LAM, **numbers),
                    est, se, time.perf_counter() - t0))
    return rows


def _scaled(optimizer: str, regime: str, criterion: str, kappa: float, eta: float, sigma: float, hyper: dict):
    rule = scaling_rule(optimizer, regime, criterion)
    e = {k: float(v) for k, v in rule.exponents.items() if k not in rule.free}
    new = dict(hyper)
    new_eta = eta * kappa ** e["eta"]
    for name, value in hyper.items():
        if name.startswith("beta"):
            new[name] = 1 - (1 - value) * kappa ** (e[name.replace("beta", "rho")] + e["eta"])
        elif name in ("eps", "theta"):
            new[name] = value * kappa ** e[name]
    return new_eta, sigma / math.sqrt(kappa), new, e["eta"]


def check_scaling(sim: Sim) -> list[Row]:
    """Simulate at kappa = 1, 4, 16 with the derived rule; compare the loss at equal epochs."""
    rows = []
    # (optimizer, regime, criterion, eta, sigma, hyper, scale of x0). The starts put SignSGD in its
    # linear phase, Adam in its noise-dominated regime (g << sigma) and AdamW near the minimum,
    # where the rules derived under the stationary criterion are meant to hold.
    cases = [("sgd", "paper", "sde", 0.001, 2.0, {}, 1.0),
             ("signsgd", "paper", "stationary", 0.001, 2.0, {}, 0.05),
             ("adam", "noise-dominated", "sde", 0.001, 4.0, dict(beta1=0.99, beta2=0.999, eps=1e-8), 0.1),
             ("adamw", "paper", "stationary", 0.001, 2.0, dict(beta1=0.999, beta2=0.999, eps=0.0, theta=0.5), 0.02)]
    for optimizer, regime, criterion, eta, sigma, hyper, scale in cases:
        t0 = time.perf_counter()
        base = None
        for kappa in (1.0, 4.0, 16.0):
            k_eta, k_sigma, k_hyper, a = _scaled(optimizer, regime, criterion, kappa, eta, sigma, hyper)
            epochs_time = 8.0  # SDE time of the whole run at kappa = 1
            steps = int(round(epochs_time / eta / kappa))
            record = np.array([steps // 4, steps])
            x0 = random_start(sim.paths, len(LAM), sim.seed, scale=scale)
            r = run("optimizer", Combination(optimizer), x0, eta=k_eta, sigma=k_sigma, steps=steps, seed=sim.seed + int(kappa),
                    landscape=quadratic(LAM), hyper=k_hyper or None, record=record)
            means, ses = r.loss_mean, r.loss_se
            if base is None:
                base = (means, ses)
                continue
            for i, label in enumerate(("a quarter of the epochs", "the end")):
                se = math.sqrt(ses[i] ** 2 + base[1][i] ** 2)
                rows.append(Row(f"{optimizer} {regime} scaling (eta ~ kappa^{a}): kappa={kappa:g} vs 1, loss at {label}",
                                criterion, float(base[0][i]), float(means[i]), se, time.perf_counter() - t0,
                                f"eta*lambda_max at kappa: {k_eta * max(LAM):.3g}"))
    return rows


def check_heavy_tails(sim: Sim) -> list[Row]:
    """SignSGD against SGD under Student-t noise, nu in 1, 1.5, 2, 3, 5, and Gaussian.

    SignSGD's prediction is its linear-phase stationary loss (from the noise-dominated SDE, whose
    drift is -2 p(0) g/sigma for every law); SGD's is eta sigma^2 E[zeta^2]/4 per coordinate,
    infinite for nu <= 2 (the sample mean is shown without a verdict: check sgd-cauchy tests the
    divergence), and for nu <= 4 the loss has infinite variance, so its SE means nothing either.
    """
    rows, eta, sigma = [], 0.002, 1.0
    for noise, nu in [("student-t", 1), ("student-t", 1.5), ("student-t", 2), ("student-t", 3), ("student-t", 5), ("gaussian", None)]:
        x = float(nu) if nu is not None else math.inf
        label = f"nu={nu}" if nu is not None else "gaussian"
        t0 = time.perf_counter()
        sign = stationary("signsgd", noise, nu=nu, regime="noise-dominated")
        est, se = stationary_loss("signsgd", LAM, eta, sigma, sim, noise=noise, nu=nu,
                                  burn=_burn(sign, LAM, sim, eta=eta, sigma=sigma))
        rows.append(Row(f"SignSGD stationary loss, {label} (linear phase)", str(sign.expected_loss),
                        _loss_prediction(sign, LAM, eta=eta, sigma=sigma), est, se, time.perf_counter() - t0,
                        series="heavy-tails SignSGD", x=x))
        t0 = time.perf_counter()
        try:
            predicted = _loss_prediction(stationary("sgd", noise, nu=nu), LAM, eta=eta, sigma=sigma)
        except NoStationaryLawError:
            predicted = math.inf
        est, se = stationary_loss("sgd", LAM, eta, sigma, sim, noise=noise, nu=nu)
        verdict = True if nu is None or nu > 4 else None  # nu <= 4: the loss has no finite variance, so no SE
        rows.append(Row(f"SGD stationary loss, {label}", "eta*sigma**2*E[zeta^2]/4 per coordinate",
                        predicted, est, se, time.perf_counter() - t0,
                        "no finite mean (shown, no verdict)" if not math.isfinite(predicted)
                        else ("infinite loss variance: no verdict" if verdict is None else ""),
                        expect_equal=verdict, series="heavy-tails SGD", x=x))
    return rows


CHECKS: dict[str, Callable[[Sim], list[Row]]] = {
    "sgd": check_sgd, "sgd-full-h": check_sgd_full_matrix, "signsgd": check_signsgd, "sgd-cauchy": check_sgd_cauchy_unbounded,
    "signsgd-speed": check_signsgd_speed, "rmspropw": check_rmspropw, "adamw": check_adamw, "scaling": check_scaling,
    "heavy-tails": check_heavy_tails,
}


def run_checks(names: list[str] | None = None, sim: Sim | None = None, progress=sys.stderr) -> list[Row]:
    sim = sim or Sim()
    rows: list[Row] = []
    for name in names or list(CHECKS):
        t0 = time.perf_counter()
        new = CHECKS[name](sim)
        rows += new
        if progress is not None:
            bad = sum(not r.ok for r in new)
            print(f"[check] {name}: {len(new)} rows, {bad} failed, {time.perf_counter() - t0:.1f} s", file=progress, flush=True)
    return rows


def table(rows: list[Row]) -> str:
    head = f"{'check':72s} {'symbolic':>11s} {'simulated':>11s} {'SE':>9s} {'gap/SE':>7s} {'agree':>6s} {'time s':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        agree = "yes" if r.ok else "NO"
        if r.expect_equal is False:
            agree = "yes*" if r.ok else "NO*"
        elif r.expect_equal is None:
            agree = "n/a"
        lines.append(f"{r.name[:72]:72s} {r.predicted:11.5g} {r.estimate:11.5g} {r.se:9.2g} {r.gap_in_se:7.1f} {agree:>6s} {r.seconds:7.1f}")
    lines.append("agree*: a row that must NOT agree (the simulation rejects the compared value)")
    return "\n".join(lines)
