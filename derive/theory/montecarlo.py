"""Monte Carlo estimates for `derive check`: stationary averages of the discrete optimizers and SDEs.

A stationary run starts every path near the minimum, takes ceil(burn/eta) steps of burn-in (at
least six relaxation times of the linearised SDE, so the start is forgotten; the caller says how
long) and then ceil(window/eta) more, recording the loss at ``records`` evenly spaced steps of
that window. A stationary estimate averages each path's recorded losses over time, then over the
independent paths: SE = sd(path averages) / sqrt(N).
"""

from __future__ import annotations

import math

import numpy as np

from ..combination import Combination
from ..simulate import Landscape, Run, module_dir_for, quadratic, random_start, run
from .rows import Sim


def record_steps(start: int, steps: int, count: int = 12) -> np.ndarray:
    return np.unique(np.linspace(start, steps, count).round().astype(np.int64))


def stationary_run(
    kind: str,
    combo: Combination,
    landscape: Landscape,
    eta: float,
    sigma: float,
    sim: Sim,
    burn: float,
    hyper: dict | None = None,
    records: int = 12,
    x0_scale: float = 0.1,
    keep: bool = False,
) -> Run:
    """``kind`` ('optimizer' or 'sde') of ``combo`` on ``landscape``: sim.paths paths from
    random_start(scale ``x0_scale``, seed sim.seed), a burn-in of ``burn`` and a window of
    sim.window in SDE time, the loss recorded at ``records`` steps of the window."""
    start = int(math.ceil(burn / eta))
    steps = start + int(math.ceil(sim.window / eta))
    return run(
        kind,
        combo,
        random_start(sim.paths, landscape.dim, sim.seed, scale=x0_scale),
        eta=eta,
        sigma=sigma,
        steps=steps,
        seed=sim.seed,
        landscape=landscape,
        hyper=hyper,
        record=record_steps(start, steps, records),
        keep=keep,
        module_dir=module_dir_for(combo),
    )


def mean_and_se(per_path: np.ndarray) -> tuple[float, float]:
    """The mean over independent paths and its standard error sd / sqrt(N)."""
    return float(per_path.mean()), float(per_path.std(ddof=1) / math.sqrt(per_path.size))


def stationary_loss(
    optimizer: str,
    lam: list[float],
    eta: float,
    sigma: float,
    sim: Sim,
    noise: str = "gaussian",
    nu=None,
    hyper: dict | None = None,
    burn: float | None = None,
    window: float | None = None,
) -> tuple[float, float]:
    """Mean stationary loss of the discrete optimizer on sum lam x^2/2, and its standard error
    (burn-in and window default to sim.burn and sim.window)."""
    sized = sim if window is None else Sim(sim.paths, sim.burn, window, sim.seed)
    r = stationary_run(
        "optimizer",
        Combination(optimizer, noise, nu=nu),
        quadratic(lam),
        eta,
        sigma,
        sized,
        burn if burn is not None else sim.burn,
        hyper,
    )
    return mean_and_se(r.loss.mean(axis=0))


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
    """((mean, SE) of the optimizer's stationary loss, (mean, SE) of its SDE's), from the same
    start and seed. ``sde_sigma_scale`` != 1 simulates a deliberately wrong SDE (mutation tests)."""
    out = []
    for kind, scale in (("optimizer", 1.0), ("sde", sde_sigma_scale)):
        r = stationary_run(kind, combo, quadratic(lam), eta, sigma * scale, sim, burn, hyper)
        out.append(mean_and_se(r.loss.mean(axis=0)))
    return out[0], out[1]


def sde_loss(
    combo: Combination, lam: list[float], eta: float, sigma: float, sim: Sim, burn: float, hyper: dict | None
) -> float:
    """Mean stationary loss of the SDE alone, as in :func:`stationary_pair` (a mutant's prediction)."""
    return float(stationary_run("sde", combo, quadratic(lam), eta, sigma, sim, burn, hyper).loss.mean(axis=0).mean())
