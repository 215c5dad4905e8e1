"""`derive check` rows for Lion, Signum, clipped SGD, SGD with momentum and distributed SignSGD:
the derived SDE against the discrete optimizer on the quadratic f = sum_j lambda_j x_j^2 / 2.

An order-1 SDE differs from its optimizer by a true O(eta) bias. The stationary loss is itself of
order eta, so that bias is O(eta) relative to it: the relative gap r(eta) = (L_opt - L_sde)/L_sde
shrinks like eta. Each check measures the stationary mean loss of the optimizer and of its SDE
(generated simulators, independent random streams, so the SEs add in quadrature) at two step sizes
4x apart, the rates rho = (1 - beta)/eta and every other hyperparameter held fixed:

* larger step: the gap with its SE, shown without a verdict;
* smaller step, when the gap is resolved (> 4 SE) at the larger step: the gap shrinks like eta, i.e.
  the measured gap equals r(eta_large) (eta_small/eta_large) L_sde(eta_small) within 4 SE (both
  SEs propagated);
* otherwise: the SDE agrees with the optimizer within 4 SE at the smaller step, and the note prints
  the largest O(eta) bias compatible with the larger step (|gap| + 4 SE there, scaled by the step
  ratio) beside the resolution 4 SE: below it, the bias is below what the row resolves.

Every row with a verdict carries a mutant it must reject (tests/test_checks.py asserts it): the
scaling row, a gap that does not shrink (the same relative gap at both steps); the agreement row,
the SDE simulated with sigma 10% too large (one more SDE run at the smaller step).

:data:`NEW_CHECKS` maps a check name to a function ``fn(sim) -> list[Row]``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..combination import Combination
from ..simulate import module_dir_for, quadratic, random_start, run
from .rows import Row, Sim

LAM = [1.0, 4.0]
#: the larger and the smaller step of every comparison (ratio 4)
ETAS = (0.04, 0.01)
#: the agreement rows' mutant: the SDE simulated with sigma this many times too large
MUTANT_SIGMA = 1.1
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def stationary_pair(
    combo: Combination,
    lam: list[float],
    eta: float,
    sigma: float,
    sim: Sim,
    burn: float,
    hyper: dict | None = None,
    sde_sigma_scale: float = 1.0,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """((mean, SE) of the optimizer's stationary loss, (mean, SE) of its SDE's), each the mean over
    paths of the path's loss averaged over the window after the burn-in (SE over paths).
    ``sde_sigma_scale`` != 1 simulates a deliberately wrong SDE (mutation tests)."""
    start = int(math.ceil(burn / eta))
    steps = start + int(math.ceil(sim.window / eta))
    record = np.unique(np.linspace(start, steps, 12).round().astype(np.int64))
    x0 = random_start(sim.paths, len(lam), sim.seed, scale=0.1)
    out = []
    for kind, scale in (("optimizer", 1.0), ("sde", sde_sigma_scale)):
        r = run(
            kind,
            combo,
            x0,
            eta=eta,
            sigma=sigma * scale,
            steps=steps,
            seed=sim.seed,
            landscape=quadratic(lam),
            hyper=hyper,
            record=record,
            module_dir=module_dir_for(combo),
        )
        per_path = r.loss.mean(axis=0)
        out.append((float(per_path.mean()), float(per_path.std(ddof=1) / math.sqrt(per_path.size))))
    return out[0], out[1]


def compare(
    label: str,
    combo: Combination,
    sigma: float,
    sim: Sim,
    burn: float,
    hyper_at: Callable[[float], dict] = lambda eta: {},
    sde_sigma_scale: float = 1.0,
) -> list[Row]:
    """The two rows of one optimizer (see the module docstring)."""
    measured = []
    for i, eta in enumerate(ETAS):
        t0 = time.perf_counter()
        (opt, opt_se), (sde, sde_se) = stationary_pair(
            combo, LAM, eta, sigma, replace(sim, seed=sim.seed + i), burn, hyper_at(eta), sde_sigma_scale
        )
        measured.append((opt, sde, math.hypot(opt_se, sde_se), time.perf_counter() - t0))
    (opt_l, sde_l, se_l, t_l), (opt_s, sde_s, se_s, t_s) = measured
    (eta_l, eta_s), ratio = ETAS, ETAS[1] / ETAS[0]
    gap_l, gap_s = opt_l - sde_l, opt_s - sde_s
    rows = [
        Row(
            f"{label}: stationary loss, SDE vs optimizer, eta={eta_l}",
            "E f of the SDE (simulated)",
            sde_l,
            opt_l,
            se_l,
            t_l,
            f"O(eta) bias at eta={eta_l}: {gap_l:+.3g} = {abs(gap_l) / se_l:.1f} SE "
            f"({gap_l / sde_l:+.1%} of the loss); shown, no verdict",
            expect_equal=None,
            series=label,
            x=eta_l,
        )
    ]
    if abs(gap_l) > 4 * se_l:  # the bias is resolved at the larger step: test how it scales
        expected = gap_l / sde_l * ratio * sde_s
        spread = se_l / sde_l * ratio * sde_s
        rows.append(
            Row(
                f"{label}: the SDE-optimizer gap shrinks like eta ({eta_l} -> {eta_s})",
                f"gap({eta_s}) = gap({eta_l})/L_sde({eta_l}) x {ratio:g} x L_sde({eta_s})",
                expected,
                gap_s,
                math.hypot(se_s, spread),
                t_s,
                f"relative gap {gap_l / sde_l:+.1%} -> {gap_s / sde_s:+.1%} "
                f"(expected {gap_l / sde_l * ratio:+.1%}); at eta={eta_s} the gap is {abs(gap_s) / se_s:.1f} SE",
                series=label,
                x=eta_s,
                mutants={"a gap that does not shrink (same relative gap at both steps)": gap_l / sde_l * sde_s},
            )
        )
        return rows
    bound = (abs(gap_l) + 4 * se_l) / sde_l * ratio * sde_s
    below = bound < 4 * se_s
    t0 = time.perf_counter()
    wrong = _sde_loss(
        combo, eta_s, sigma * MUTANT_SIGMA * sde_sigma_scale, replace(sim, seed=sim.seed + 1), burn, hyper_at(eta_s)
    )
    rows.append(
        Row(
            f"{label}: stationary loss, SDE vs optimizer, eta={eta_s}",
            "E f of the SDE (simulated)",
            sde_s,
            opt_s,
            se_s,
            t_s + time.perf_counter() - t0,
            f"O(eta) bias here at most {bound:.2g} (eta={eta_l}: |gap| + 4 SE, x {ratio:g} relative) "
            + (
                f"< resolution 4 SE = {4 * se_s:.2g}: below resolution"
                if below
                else f">= resolution 4 SE = {4 * se_s:.2g}: the row cannot exclude it"
            ),
            series=label,
            x=eta_s,
            mutants={f"the SDE with sigma {100 * (MUTANT_SIGMA - 1):.0f}% too large (simulated)": wrong},
        )
    )
    return rows


def _sde_loss(combo: Combination, eta: float, sigma: float, sim: Sim, burn: float, hyper: dict | None) -> float:
    """Mean stationary loss of the SDE alone (the mutant of an agreement row), as in :func:`stationary_pair`."""
    start = int(math.ceil(burn / eta))
    steps = start + int(math.ceil(sim.window / eta))
    record = np.unique(np.linspace(start, steps, 12).round().astype(np.int64))
    x0 = random_start(sim.paths, len(LAM), sim.seed, scale=0.1)
    r = run(
        "sde",
        combo,
        x0,
        eta=eta,
        sigma=sigma,
        steps=steps,
        seed=sim.seed,
        landscape=quadratic(LAM),
        hyper=hyper,
        record=record,
        module_dir=module_dir_for(combo),
    )
    return float(r.loss.mean(axis=0).mean())


def _rate(decay_rate: float, name: str = "beta") -> Callable[[float], dict]:
    """Hyperparameters with the rate rho = (1 - beta)/eta held fixed as eta changes."""
    return lambda eta: {name: 1.0 - eta * decay_rate}


def check_lion(sim: Sim) -> list[Row]:
    """Lion, beta1 = 0.9 fixed, rho2 = 1, theta = 0.01, Gaussian noise sigma = 1."""
    return compare(
        "Lion",
        Combination("lion"),
        1.0,
        sim,
        burn=max(sim.burn, 6.0),
        hyper_at=lambda eta: {"beta1": 0.9, "beta2": 1.0 - eta * 1.0, "theta": 0.01},
    )


def check_signum(sim: Sim) -> list[Row]:
    """Signum, rho = 5: the SDE dx = -sign(m) dt, dm = rho (g - m) dt + sqrt(eta) rho sigma dW."""
    return compare("Signum", Combination("signum"), 1.0, sim, burn=sim.burn, hyper_at=_rate(5.0))


def check_clipsgd(sim: Sim) -> list[Row]:
    """Coordinate-wise clipped SGD, c = 1, under Gaussian and Cauchy noise (sigma = 1)."""
    rows = []
    for noise in ("gaussian", "cauchy"):
        rows += compare(
            f"ClipSGD ({noise})",
            Combination("clipsgd", noise),
            1.0,
            sim,
            burn=sim.burn,
            hyper_at=lambda eta: {"c": 1.0},
        )
    return rows


def check_sgdm(sim: Sim) -> list[Row]:
    """SGD with EMA heavy-ball momentum, rho = 5, Gaussian noise sigma = 1."""
    return compare("SGDM", Combination("sgdm"), 1.0, sim, burn=sim.burn, hyper_at=_rate(5.0))


def check_distributed_signsgd(sim: Sim) -> list[Row]:
    """SignSGD with sign compression over 4 workers (examples/distributed_signsgd.py), Student-t nu = 3."""
    path = EXAMPLES / "distributed_signsgd.py"
    if not path.is_file():
        return [
            Row(
                "Distributed SignSGD (4 workers)",
                "examples/ not installed",
                math.nan,
                math.nan,
                math.inf,
                0.0,
                "skipped: run from a checkout of the repository",
                expect_equal=None,
            )
        ]
    return compare(
        "Distributed SignSGD, 4 workers, Student-t nu=3",
        Combination(f"{path}:signsgd_4workers", "student-t", nu=3),
        1.0,
        sim,
        burn=sim.burn,
    )


NEW_CHECKS: dict[str, Callable[[Sim], list[Row]]] = {
    "lion": check_lion,
    "signum": check_signum,
    "clipsgd": check_clipsgd,
    "sgdm": check_sgdm,
    "signsgd_workers": check_distributed_signsgd,
}
