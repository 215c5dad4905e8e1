"""Weak order: the error of the mean loss against eta, and its fitted log-log slope.

On the quadratic f = sum lam x^2/2 the optimizer and each SDE are simulated with the generated path
simulators for several eta at a fixed horizon T, holding the paper regime's O(1) quantities fixed
(rho_i = (1 - beta_i)/eta, sigma, eps, theta), so beta_i = 1 - eta rho_i changes with eta. The weak
error is max_k |E f(x_k) - E f(X_{k eta})| over the recorded times t = j T / 10 (the same for all
eta); its Monte Carlo standard error is reported next to it (the error cannot be resolved below
it). An order-1 SDE gives slope about 1; the noise-dominated SDE, a different limit, need not
converge at all at fixed sigma (its error levels off).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import ValidationInputError

#: rates held fixed across eta (beta = 1 - eta rho must stay in (0, 1) for the largest eta)
RATES = {"rmsprop": {"beta": 1.0}, "rmspropw": {"beta": 1.0}, "adam": {"beta1": 2.0, "beta2": 1.0},
         "adamw": {"beta1": 2.0, "beta2": 1.0}, "sgd": {}, "signsgd": {}}


@dataclass
class Study:
    etas: list[float]
    horizon: float
    sigma: float
    paths: int
    rows: list[dict] = field(default_factory=list)  # optimizer, sde, errors, se, slope

    def to_json(self) -> dict:
        return {"etas": self.etas, "horizon": self.horizon, "sigma": self.sigma, "paths": self.paths, "rows": self.rows}

    def table(self) -> list[str]:
        head = "| optimizer | SDE | " + " | ".join(f"eta={e:g}: error (MC SE)" for e in self.etas) + " | slope |"
        lines = [head, "|" + "---|" * (len(self.etas) + 3)]
        for r in self.rows:
            cells = " | ".join(f"{e:.2e} ({s:.0e})" for e, s in zip(r["errors"], r["se"]))
            lines.append(f"| {r['optimizer']} | {r['sde']} | {cells} | {r['slope']:.2f} |")
        return lines


def slope(etas, errors) -> float:
    """Least-squares slope of log(error) against log(eta)."""
    x, y = np.log(np.asarray(etas, float)), np.log(np.asarray(errors, float))
    ok = np.isfinite(y)
    return float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else math.nan


def quadratic_study(optimizers=("sgd", "signsgd", "rmsprop", "adam"), etas=(0.2, 0.1, 0.05, 0.025),
                    horizon: float = 2.0, sigma: float = 0.5, lam=(1.0, 2.0), paths: int = 20000, seed: int = 3) -> Study:
    from ..codegen.model import Combination
    from ..simulate import module_dir_for, quadratic, random_start, run
    from .experiment import sde_kinds

    etas = sorted((float(e) for e in etas), reverse=True)
    if len(etas) < 2 or any(e <= 0 for e in etas):
        raise ValidationInputError(f"the weak-order study needs at least two etas > 0, got {etas}")
    land = quadratic(list(lam))
    x0 = random_start(paths, len(lam), seed)
    study = Study(etas, horizon, sigma, paths)
    for opt in optimizers:
        kinds = sde_kinds(opt)
        errs = {label: [] for label, _, _ in kinds}
        ses = {label: [] for label, _, _ in kinds}
        for eta in etas:
            steps = int(round(horizon / eta))
            record = np.unique(np.linspace(0, steps, 11).round().astype(np.int64))
            hyper = {b: 1.0 - eta * rho for b, rho in RATES.get(opt, {}).items()}
            if any(not 0 < v < 1 for v in hyper.values()):
                raise ValidationInputError(f"eta {eta} is too large for {opt} with fixed rates {RATES[opt]}")

            def sim(kind, regime, form, s):
                combo = Combination(opt, "gaussian", regime, form)
                directory = module_dir_for(combo)
                r = run(kind, combo, x0, eta=eta, sigma=sigma, steps=steps, seed=s, landscape=land, hyper=hyper,
                        record=record, module_dir=directory)
                return r.loss_mean, r.loss_se

            om, ose = sim("optimizer", "paper", "full", seed)
            for label, regime, form in kinds:
                sm, sse = sim("sde", regime, form, seed + 100)
                gap = np.abs(sm - om)
                k = int(np.argmax(gap))
                errs[label].append(float(gap[k]))
                ses[label].append(float(math.hypot(ose[k], sse[k])))
        for label, _, _ in kinds:
            study.rows.append({"optimizer": opt, "sde": label, "errors": errs[label], "se": ses[label],
                               "slope": slope(etas, errs[label])})
    return study


def figure(study: Study, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in study.rows:
        ax.errorbar(study.etas, r["errors"], yerr=r["se"], marker="o", ms=3, lw=1, capsize=2,
                    ls="--" if r["sde"] == "noise-dominated" else "-",
                    label=f"{r['optimizer']} {r['sde']} (slope {r['slope']:.2f})")
    e = np.array(study.etas)
    ref = max(r["errors"][0] for r in study.rows) if study.rows else 1.0
    ax.plot(e, ref * e / e[0], color="k", lw=0.8, ls=":", label="slope 1")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eta")
    ax.set_ylabel("max_k |E f(x_k) - E f(X_{k eta})|")
    ax.set_title(f"weak error on a quadratic (T = {study.horizon:g}, sigma = {study.sigma:g}, {study.paths} paths)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
