"""One-off checks of SignSGD: the laws beyond the linear phase, and the linear-phase speed (the
stationary loss per law is a set of cases of :mod:`derive.theory.check_table`).

``signsgd-exact`` compares, at eta lambda/sigma = 0.5 where the expansions differ by several per
cent, the linearised law, the consistent second-order expansion (reference 5b), the exact law of
the SDE (quadrature of its zero-flux density), the SDE simulated with a fine step (dt = eta/200,
NumPy, independent of the generated simulators) and the discrete optimizer. The optimizer sits
above the exact SDE law by the order-1 SDE's own O(eta) error (reference 8): shown, with how the
gap scales with eta, not tuned away.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from ..combination import Combination
from ..simulate import quadratic, random_start, run
from .cases import exact_loss
from .evaluate import substitute
from .fine_step import euler_bias, simulate_second_moment
from .montecarlo import mean_and_se, stationary_run
from .quadratic import curvature
from .rows import Row, Sim
from .stationary import stationary


def _optimizer_second_moment(
    lam: float, eta: float, sigma: float, noise: str, nu, sim: Sim, burn: float, window: float, seed: int
) -> tuple[float, float]:
    """E x^2 of the discrete SignSGD chain on lam x^2/2 (one coordinate), averaged over time and paths."""
    combo = Combination("signsgd", noise, nu=nu)
    r = stationary_run(
        "optimizer",
        combo,
        quadratic([lam]),
        eta,
        sigma,
        replace(sim, seed=seed, window=window),
        burn,
        records=200,
        x0_scale=0.05,
    )
    return mean_and_se((2.0 / lam) * r.loss.mean(axis=0))


def check_signsgd_exact(sim: Sim) -> list[Row]:
    """Linearised, consistent second order, exact (quadrature), fine-step SDE and optimizer at
    eta lambda/sigma = 0.5 (lambda = 10, sigma = 1, eta = 0.05); the optimizer also at 0.1 and 0.02."""
    rows = []
    lam, sigma, eta, substeps, window = 10.0, 1.0, 0.05, 200, 10.0
    numbers = dict(eta=eta, sigma=sigma)
    for k, (noise, nu) in enumerate((("gaussian", None), ("laplace", None))):
        result = stationary("signsgd", noise, nu=nu)
        label = f"SignSGD eta*lambda/sigma=0.5, {result.sde.noise}"
        exact = exact_loss(result, [lam], **numbers) * 2 / lam  # E X^2
        linear = float(substitute(result.var_x.xreplace({curvature: lam}), numbers))
        second = float(substitute(result.expansion.second_moment.xreplace({curvature: lam}), numbers))
        t0 = time.perf_counter()
        rate = -float(substitute(result.model.A[0, 0].xreplace({curvature: lam}), numbers))
        fine = simulate_second_moment(
            result.sde,
            lam,
            numbers,
            dt=eta / substeps,
            burn=6.0 / rate,
            window=window,
            paths=sim.paths,
            seed=sim.seed + 60 + k,
            x0_scale=math.sqrt(linear),
        )
        seconds = time.perf_counter() - t0
        e = result.expansion
        mutants = {"linearised law": linear}
        if e.smooth:  # the earlier, inconsistent expansion: the diffusion's x^2 term without the drift's x^3 term
            mutants["second order with the cubic drift term dropped"] = float(
                substitute((e.b0 / (2 * e.a - e.d2)).xreplace({curvature: lam}), numbers)
            )
        bias = euler_bias(rate, eta / substeps)
        rows.append(
            Row(
                f"{label}: exact SDE law vs SDE simulated (dt=eta/{substeps})",
                "E x^2, zero-flux density by quadrature",
                exact,
                fine.second_moment,
                fine.se,
                seconds,
                f"{label}: the fine-step Euler scheme's own bias is about {100 * bias:+.2f}% (a dt/2), below "
                "the resolution",
                series="exact",
                mutants=mutants,
            )
        )
        rows.append(
            Row(
                f"{label}: linearised law vs SDE simulated",
                str(result.var_x),
                linear,
                fine.second_moment,
                fine.se,
                0.0,
                f"{label}: linearised {100 * (linear / exact - 1):+.2f}% from the exact law: rejected",
                expect_equal=False,
                series="linearised",
            )
        )
        rows.append(
            Row(
                f"{label}: second order (5b) vs SDE simulated",
                str(e.second_moment),
                second,
                fine.second_moment,
                fine.se,
                0.0,
                f"{label}: {e.description}; {100 * (second / exact - 1):+.2f}% from the exact law "
                "(deterministic); shown",
                expect_equal=None,
                series="second order",
            )
        )
        if noise != "gaussian":
            continue
        gaps = []
        for j, etak in enumerate((0.5, 0.1, 0.02)):
            t0 = time.perf_counter()
            step = etak * sigma / lam
            exact_here = exact_loss(result, [lam], eta=step, sigma=sigma) * 2 / lam
            est, se = _optimizer_second_moment(
                lam, step, sigma, noise, nu, sim, burn=6.0 / rate, window=window, seed=sim.seed + 70 + j
            )
            gaps.append(est / exact_here - 1)
            resolved = abs(est - exact_here) > 4 * se
            note = (
                f"optimizer above the exact SDE law by {100 * gaps[-1]:+.2f}%: the order-1 SDE's own O(eta) error "
                "(reference 8), not a failure"
                if resolved
                else f"optimizer - exact SDE law = {100 * gaps[-1]:+.2f}%: not resolved at 4 SE (shown, no data point)"
            )
            if j and resolved:
                note += f"; gap ratio to eta*lambda/sigma=0.5: {gaps[0] / gaps[-1]:.2f} (eta ratio {0.5 / etak:g})"
            rows.append(
                Row(
                    f"SignSGD eta*lambda/sigma={etak}, {result.sde.noise}: optimizer vs exact SDE law",
                    "E x^2, zero-flux density by quadrature",
                    exact_here,
                    est,
                    se,
                    time.perf_counter() - t0,
                    note,
                    expect_equal=False if j == 0 else None,
                    series="optimizer",
                    x=etak,
                )
            )
    return rows


def check_signsgd_speed(sim: Sim) -> list[Row]:
    """Linear phase: E x(t) = x0 exp(-2 p(0) lambda t / sigma); the rate scales like 1/sigma."""
    rows, result = [], stationary("signsgd")
    rate_expr = -result.model.A[0, 0]
    for sigma in (1.0, 2.0, 4.0):
        t0, eta, lam, t_end = time.perf_counter(), 0.002, 1.0, 0.5 * sigma
        steps = int(round(t_end / eta))
        x0 = 0.2 * sigma + 0.02 * random_start(sim.paths, 1, sim.seed)
        r = run(
            "optimizer",
            Combination("signsgd"),
            x0,
            eta=eta,
            sigma=sigma,
            steps=steps,
            seed=sim.seed,
            landscape=quadratic([lam]),
            record=[0, steps],
        )
        m0, m1 = r.mean[0, 0], r.mean[1, 0]
        se1 = math.sqrt(r.var[1, 0] / sim.paths)
        rate = -math.log(m1 / m0) / t_end

        def predicted(s: float, lam: float = lam) -> float:
            return float(substitute(rate_expr.xreplace({curvature: lam}), {"sigma": s}))

        rows.append(
            Row(
                f"SignSGD linear-phase decay rate, sigma={sigma}",
                str(rate_expr),
                predicted(sigma),
                rate,
                se1 / m1 / t_end,
                time.perf_counter() - t0,
                "rate * sigma constant: speed ~ 1/sigma",
                mutants={"SGD's rate lambda (independent of sigma)": lam, "sigma doubled": predicted(2 * sigma)},
            )
        )
    return rows
