"""Weak error of an SDE against its optimizer as eta varies, resolved (reference section 7).

For each eta the optimizer and the SDE run on shared randomness (:func:`derive.simulate.run_coupled`)
from the same start, with the paper regime's O(1) quantities held fixed (rho_i, so beta_i =
1 - eta rho_i; sigma, eps, theta), over a fixed horizon T. Auxiliary states are burned in first
(ceil(3 / (eta rho_min)) optimizer steps with x held at the start, from m = v = 0), so both start
from the same (x, m, v) and the run has no initial layer; that layer (the optimizer's first step from
m = v = 0 against the SDE's) is measured and reported on its own, never fitted.

phi ranges over the loss f and the first two moments of x (x_j and x_j^2 for every coordinate, and under
correlated noise, ``noise_model``, the products x_i x_j, i < j); the
weak error at eta is max over phi and over the recorded times t = T/10, ..., T of
|E phi(X_t) - E phi(x_{t/eta})|, estimated by the mean of the paired per-path differences, with the
standard error of that mean at the maximising (phi, t). The maximum runs over the resolved (phi, t)
(|mean| at least 3 standard errors) where there are any: a small error (order 2 at eta = 0.01) is
otherwise taken at whichever (phi, t) is noisiest, not where it is largest. A point counts only if
its error is at least 3 standard errors ("resolved"); unresolved points are reported and left out
of the fit. The
slope is a weighted least-squares fit of log error on log eta (weights (error/se)^2), its 95%
interval from the fit's covariance, inflated by the Birge ratio sqrt(chi^2/dof) when above 1 and
taken with Student-t quantiles.

The SDE is integrated with the weak2 scheme and substeps of at most ``dt_max`` (default 0.005) so
its own discretisation error is negligible; the study shows it: each point is rerun with half the
step on the same optimizer paths, and the change of the estimate is reported next to the error's
standard error and its own (the change is a paired difference of two SDE runs whose Brownian paths
agree at every optimizer step but not in between, so it carries noise of about one standard error).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

from . import ValidationInputError
from .sdes import order_of, sde_kinds

#: rates held fixed across eta for the built-ins (beta = 1 - eta rho must lie in (0, 1) at the largest eta)
RATES = {
    "rmsprop": {"beta": 1.0},
    "rmspropw": {"beta": 1.0},
    "adam": {"beta1": 2.0, "beta2": 1.0},
    "adamw": {"beta1": 2.0, "beta2": 1.0},
    "sgd": {},
    "signsgd": {},
}
#: radius hyperparameters (role ``radius``, SAM's r) scale like sqrt(eta): a study holds r0 = r/sqrt(eta)
#: fixed (with r fixed the dropped (r^2/2) g'' (g^2 + sigma^2) of USAM's expansion is O(1), reference
#: section 12); r0 = 1 unless given here (usam: 0.5, its default r = 0.05 at eta = 0.01)
RADII = {"usam": {"r": 0.5}}
LANDSCAPES = ("quadratic", "double-well", "rotated")
ETAS = (0.16, 0.08, 0.04, 0.02, 0.01)
#: the default etas of a study with the order-2 SDE: its O(eta^2) error is asymptotic, and at eta = 0.16
#: (Adam's beta1 = 1 - 0.16 rho1 = 0.68) the next order dominates it (docs/order2.md, measured)
ETAS_ORDER2 = (0.08, 0.04, 0.02, 0.01)
#: a fast state (a factor held fixed, role fixed_decay: PyTorch momentum) is burned in for this many
#: of its relaxation times 1/(1 - beta) (beta^(12/(1 - beta)) <= e^-12), x held at the start
FAST_BURN = 12.0
#: the default etas with a fast state at beta = 0.9, scaled by ((1 - beta)/0.1)^2 for another beta: its
#: transients follow the SDE only while eta lambda/(1 - beta)^2 << 1 (reference section 11; measured for
#: sgd_momentum: error ratios 2.5, 2.3, 2.1 per halving over 0.004 ... 0.0005, 1.9 per halving at 0.16 ... 0.01
#: only because eta lambda/(1 - beta) reaches 3 there)
ETAS_FAST = (0.002, 0.001, 0.0005, 0.00025)
DT_MAX = 0.005  #: the SDE's largest substep: its weak2 error is then below the Monte Carlo noise (measured)
RESOLVED_AT = 3.0  #: an error counts when it is at least this many standard errors


@dataclass
class Row:
    """One SDE's weak errors over eta."""

    sde: str
    etas: list[float]
    errors: list[float]
    se: list[float]
    resolved: list[bool]
    slope: float
    slope_ci: tuple[float, float]
    se_ratio: list[float]  #: independent-noise SE / coupled SE at each eta
    where: list[str]  #: the (phi, t) that attains each error
    substeps: list[int]
    refined_change: list[float]  #: |change of the estimate| when dt is halved
    refined_change_se: list[float]  #: the standard error of that change (a paired difference)
    seconds: float = 0.0

    def to_json(self) -> dict:
        def num(v):
            return None if not math.isfinite(v) else float(v)

        return {
            "sde": self.sde,
            "etas": self.etas,
            "errors": [num(e) for e in self.errors],
            "se": [num(s) for s in self.se],
            "resolved": self.resolved,
            "slope": num(self.slope),
            "slope_ci": [num(self.slope_ci[0]), num(self.slope_ci[1])],
            "se_ratio": [num(r) for r in self.se_ratio],
            "at": self.where,
            "substeps": self.substeps,
            "refined_change": [num(c) for c in self.refined_change],
            "refined_change_se": [num(c) for c in self.refined_change_se],
            "seconds": round(self.seconds, 2),
        }


@dataclass
class Study:
    """A weak-order study of one optimizer on one landscape."""

    optimizer: str
    noise: str
    landscape: str
    held_fixed: dict
    runs: list[Row] = field(default_factory=list)
    initial_layer: dict | None = None
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "optimizer": self.optimizer,
            "noise": self.noise,
            "landscape": self.landscape,
            "held_fixed": self.held_fixed,
            "runs": [r.to_json() for r in self.runs],
            "phi": "max over phi in {f, x_j, x_j^2"
            + (", x_i x_j (i < j)" if "noise_correlation" in self.held_fixed else "")
            + "} and t in {T/10, ..., T} of |E phi(SDE) - E phi(optimizer)| "
            "(over the resolved (phi, t) where there are any)",
            "initial_layer": self.initial_layer,
            "seconds": round(self.seconds, 2),
        }

    def table(self) -> list[str]:
        """Markdown: one row per SDE; cells 'error (SE) [SE ratio]', unresolved ones marked."""
        etas = self.runs[0].etas if self.runs else []
        lines = [
            "| SDE | " + " | ".join(f"eta={e:g}" for e in etas) + " | slope [95% CI] |",
            "|" + "---|" * (len(etas) + 2),
        ]
        for r in self.runs:
            cells = [
                f"{e:.3e} ({s:.0e}) [{q:.0f}x]" + ("" if ok else " unresolved")
                for e, s, q, ok in zip(r.errors, r.se, r.se_ratio, r.resolved, strict=False)
            ]
            slope = "n/a" if not math.isfinite(r.slope) else f"{r.slope:.2f} [{r.slope_ci[0]:.2f}, {r.slope_ci[1]:.2f}]"
            lines.append(f"| {r.sde} | " + " | ".join(cells) + f" | {slope} |")
        return lines

    def text(self) -> str:
        h = self.held_fixed
        fixed = {"sigma": h["sigma"], **h["hyper"]}
        lines = [
            f"weak error of the SDEs of {self.optimizer} against the optimizer | noise {self.noise} | "
            f"landscape {self.landscape} | T = {h['horizon']:g} | {h['paths']} coupled paths | "
            f"{h['scheme']}, dt <= {h['dt_max']:g} | {self.seconds:.0f} s",
            f"held fixed: {', '.join(f'{k} = {_held(v)}' for k, v in fixed.items())}; start x0 = {h['start']}; "
            f"burn-in: {h['burn_in']}"
            + (f"; noise correlation R = {_held(h['noise_correlation'])}" if "noise_correlation" in h else ""),
            "cells: error (its standard error) [SE with independent noise / SE coupled]; a point counts only "
            f"if error >= {RESOLVED_AT:g} SE",
            "",
        ]
        lines += self.table()
        lines.append("")
        for r in self.runs:
            if all(math.isfinite(c) for c in r.refined_change):
                worst = max(c / s for c, s in zip(r.refined_change, r.se, strict=False))
                own = max(c / s for c, s in zip(r.refined_change, r.refined_change_se, strict=False))
                lines.append(
                    f"{r.sde}: halving dt (substeps {r.substeps} -> twice) changes the estimates by at most "
                    f"{worst:.2f} SE of the error, {own:.2f} SE of the change itself"
                )
            lines.append(f"{r.sde}: errors at {', '.join(r.where)}")
        if self.initial_layer:
            il = self.initial_layer
            lines.append(
                f"initial layer (from m = v = 0, not fitted): first step of the optimizer {il['optimizer']:+.3f} "
                f"(SE {il['optimizer_se']:.3f}) eta, of the SDE {il['sde']:+.3f} (SE {il['sde_se']:.3f}) eta "
                f"(eta = {il['eta']:g}, g = {il['g']:g}, mean over {il['paths']} paths)"
            )
        return "\n".join(lines)


def fit_slope(etas, errors, se, resolved) -> tuple[float, tuple[float, float]]:
    """Weighted least squares of log error on log eta over the resolved points, and its 95% interval
    (covariance from the standard errors, inflated by sqrt(chi^2/dof) when that exceeds 1)."""
    ok = np.asarray(resolved, bool) & np.isfinite(errors) & (np.asarray(errors) > 0)
    if ok.sum() < 2:
        return math.nan, (math.nan, math.nan)
    x, y = np.log(np.asarray(etas, float)[ok]), np.log(np.asarray(errors, float)[ok])
    w = (np.asarray(errors, float)[ok] / np.asarray(se, float)[ok]) ** 2  # 1 / var(log error)
    X = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = cov @ X.T @ (w * y)
    dof = int(ok.sum()) - 2
    if dof > 0:
        chi2 = float(np.sum(w * (y - X @ beta) ** 2))
        cov = cov * max(1.0, chi2 / dof)
        q = scipy.stats.t.ppf(0.975, dof)
    else:
        q = scipy.stats.norm.ppf(0.975)
    half = q * math.sqrt(cov[1, 1])
    return float(beta[1]), (float(beta[1] - half), float(beta[1] + half))


def _hyper(optimizer: str, eta: float, rates: dict) -> dict:
    out = {b: 1.0 - eta * rho for b, rho in rates.items()}
    bad = {b: v for b, v in out.items() if not 0 < v < 1}
    if bad:
        raise ValidationInputError(
            f"eta {eta:g} is too large for {optimizer} with rates held at {rates}: "
            f"beta = 1 - eta rho = {bad} must lie in (0, 1)"
        )
    return out


def _fast_decays(optimizer: str, fixed: dict) -> dict[str, float]:
    """The factors held fixed (role fixed_decay) in the update of an auxiliary state of ``optimizer``
    -> their values (``fixed`` or the defaults): those states relax in O(1/(1 - beta)) steps
    (reference section 11; Lion's beta1 only interpolates, no state of its own)."""
    from ..optimizers import get_optimizer

    spec = get_optimizer(optimizer)
    symbols = spec.hyper_symbols()
    updates = [e for target, e in spec.parsed() if target in spec.state_names[1:]]
    return {
        b: float(fixed.get(b, spec.defaults[b]))
        for b in spec.hypers_with_role("fixed_decay")
        if any(symbols[b] in e.free_symbols for e in updates)
    }


def _held(value) -> str:
    """A held value in the text report: a number, or a list of them (a noise model's scales, R's rows)."""
    if isinstance(value, list):
        return "[" + ", ".join(_held(v) for v in value) + "]"
    return f"{value:g}"


def _landscape(name, dim: int):
    from ..simulate import Landscape, double_well, quadratic, rotated_quadratic

    if isinstance(name, Landscape):  # a user landscape (e.g. with a deliberately wrong hvp_fn)
        return name, 1.0
    lam = np.linspace(1.0, 2.0, dim) if dim > 1 else np.ones(1)
    if name == "quadratic":
        return quadratic(lam), 1.0
    if name == "rotated":
        return rotated_quadratic(np.linspace(1.0, 4.0, dim) if dim > 1 else np.ones(1)), 1.0
    if name == "double-well":
        return double_well(dim), 1.5
    from ..errors import UnknownNameError

    raise UnknownNameError("landscape", name, LANDSCAPES)


def _products(path: np.ndarray) -> np.ndarray:
    """x_i x_j for i < j (in the order (1, 2), (1, 3), ..., (2, 3), ...) -> [..., d (d - 1) / 2]."""
    i, j = np.triu_indices(path.shape[-1], k=1)
    return path[..., i] * path[..., j]


def _phis(run, pairs: bool = False) -> np.ndarray:
    """Per-path phi at every recorded step: f, x_1..x_d, x_1^2..x_d^2 (and with ``pairs`` the products
    x_i x_j, i < j) -> [R, N, 1 + 2d (+ d (d - 1) / 2)] (weak2: extrapolated per path)."""
    parts = [run.loss[..., None], run.values(lambda p: p), run.values(lambda p: p * p)]
    return np.concatenate(parts + ([run.values(_products)] if pairs else []), axis=-1)


def phi_names(d: int, pairs: bool = False) -> list[str]:
    """The names of the phis of :func:`_phis`, in order."""
    names = ["f"] + [f"x_{k + 1}" for k in range(d)] + [f"x_{k + 1}^2" for k in range(d)]
    return names + ([f"x_{i + 1} x_{j + 1}" for i, j in zip(*np.triu_indices(d, k=1), strict=True)] if pairs else [])


def _point(chain, sde, sde_refined, d: int, times, pairs: bool = False) -> dict:
    """Error, SE, independent SE and the dt-halving change at the worst (phi, t) (t > 0)."""
    po, ps = _phis(chain, pairs), _phis(sde, pairs)
    diff = (ps - po)[1:]  # t = 0 is the common start
    n = diff.shape[1]
    mean = diff.mean(axis=1)
    se = diff.std(axis=1, ddof=1) / math.sqrt(n)
    resolved = np.abs(mean) >= RESOLVED_AT * se
    i, j = np.unravel_index(
        np.argmax(np.where(resolved, np.abs(mean), -1.0) if resolved.any() else np.abs(mean)), mean.shape
    )
    independent = math.sqrt(po[1 + i, :, j].var(ddof=1) / n + ps[1 + i, :, j].var(ddof=1) / n)
    names = phi_names(d, pairs)
    out = dict(
        error=float(abs(mean[i, j])),
        se=float(se[i, j]),
        ratio=independent / float(se[i, j]) if se[i, j] > 0 else math.inf,
        where=f"{names[j]} at t={times[1 + i]:.3g}",
    )
    if sde_refined is not None:
        delta = _phis(sde_refined, pairs)[1 + i, :, j] - ps[1 + i, :, j]
        out["change"] = float(abs(delta.mean()))
        out["change_se"] = float(delta.std(ddof=1) / math.sqrt(n))
    return out


def weak_order(
    optimizer: str,
    *,
    noise: str = "gaussian",
    nu=None,
    sdes=None,
    landscape: str = "quadratic",
    etas=None,
    paths: int = 20_000,
    horizon: float = 2.0,
    sigma: float = 1.0,
    dim: int = 2,
    scheme: str = "weak2",
    substeps: int | None = None,
    dt_max: float = DT_MAX,
    refine: bool = True,
    seed: int = 0,
    hyper: dict | None = None,
    sde_values: dict | None = None,
    boundary: str = "reflect",
    burn: bool = True,
    order: int = 1,
    start: float | None = None,
    progress=None,
    noise_model=None,
    sde_noise_model=None,
) -> Study:
    """The weak-error study of ``optimizer``'s SDEs (labels ``sdes``: full, published, noise-dominated,
    order2; default those that exist and differ, and with ``order`` 2: full and order2, the order-2
    SDE of the full form) on ``landscape`` (quadratic, double-well, rotated).

    ``etas`` None: :data:`ETAS`, or :data:`ETAS_ORDER2` with ``order`` 2, or :data:`ETAS_FAST` (scaled
    by ((1 - beta)/0.1)^2) with a fast state (a factor held fixed, burned in, the SDE started at x - c*m). ``substeps`` None: the fewest substeps with dt = eta/substeps <= ``dt_max``. ``refine`` reruns
    every point with twice the substeps and reports the change. ``hyper``: other hyperparameters
    held fixed (eps, theta); the decays follow from :data:`RATES`, the radii (role ``radius``)
    from :data:`RADII`, r = r0 sqrt(eta) with r0 held (printed as r0). ``sde_values`` replaces SDE
    parameters only (a deliberately wrong SDE, for mutation tests). ``boundary``: the rule for
    positive states (reflect, floor); ``burn`` False starts from the initial states (m = v = 0, the
    initial layer included). ``progress(done, total)`` after each point. ``noise_model``: a
    :class:`derive.correlation.NoiseModel` of noise correlated across coordinates (its scale replaces
    ``sigma``; the phi set then adds the products x_i x_j, i < j); ``sde_noise_model`` gives the SDE
    another one (a deliberately wrong SDE, e.g. r dropped, for mutation tests)."""
    from ..combination import Combination
    from ..simulate import burn_in, run_coupled

    started = time.perf_counter()
    optimizer = optimizer.lower()
    fast = _fast_decays(optimizer, dict(hyper or {}))
    if not etas and fast:
        etas = [float(f"{e * ((1.0 - max(fast.values())) / 0.1) ** 2:.6g}") for e in ETAS_FAST]
    etas = sorted({float(e) for e in (etas or (ETAS_ORDER2 if order == 2 else ETAS))}, reverse=True)
    if len(etas) < 2 or any(not math.isfinite(e) or e <= 0 for e in etas):
        raise ValidationInputError(f"the weak-order study needs at least two etas > 0, got {etas}")
    for name, value in (("paths", paths), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2 - (name == "dim"):
            raise ValidationInputError(f"{name} must be an integer >= {2 - (name == 'dim')}, got {value!r}")
    if not (math.isfinite(horizon) and horizon > 0 and math.isfinite(sigma) and sigma > 0 and dt_max > 0):
        raise ValidationInputError(f"horizon, sigma and dt_max must be > 0, got {horizon}, {sigma}, {dt_max}")
    if order not in (1, 2):
        raise ValidationInputError(f"order must be 1 or 2, got {order!r}")
    kinds = sde_kinds(optimizer, noise, nu, sdes if sdes is not None or order == 1 else ["full", "order2"])
    land, default_start = _landscape(landscape, dim)
    start = default_start if start is None else float(start)
    from ..optimizers import get_optimizer

    rates = RATES.get(optimizer)
    if rates is None:
        rates = {b: 1.0 for b in get_optimizer(optimizer).hypers_with_role("decay")}
    radii = RADII.get(optimizer, {b: 1.0 for b in get_optimizer(optimizer).hypers_with_role("radius")})
    x0 = np.full((paths, dim), start)
    fixed = dict(hyper or {})
    pairs = noise_model is not None
    run_sigma = None if pairs else sigma  # a noise model holds the scales
    held = {
        "horizon": horizon,
        "sigma": sigma if noise_model is None else noise_model.scales.tolist(),
        **({"noise_correlation": noise_model.correlation.tolist()} if pairs else {}),
        "hyper": {**{f"rho_{b}": r for b, r in rates.items()}, **{f"{b}0": r for b, r in radii.items()}, **fixed},
        "start": start,
        "dim": dim,
        "paths": paths,
        "seed": seed,
        "scheme": scheme,
        "dt_max": dt_max,
        "burn_in": (
            " and ".join(
                (["ceil(3 / (eta rho_min))"] if rates else []) + [f"ceil({FAST_BURN:g} / (1 - {b}))" for b in fast]
            )
            + " optimizer steps with x held at x0, from the initial states"
            + (" (the SDE starts at the map of the burned-in state, x - c*m)" if fast else "")
            if (rates or fast) and burn
            else "none" + ("" if rates or fast else " (no auxiliary states)")
        ),
        "boundary": boundary,
        "landscape_parameters": land.params.tolist(),
    }
    study = Study(optimizer, noise if nu is None else f"{noise}(nu={nu})", getattr(landscape, "name", landscape), held)
    total, done = len(kinds) * len(etas), 0
    for label, regime, form in kinds:
        combo = Combination(optimizer, noise, regime, form, nu=nu, order=order_of(label))
        t0 = time.perf_counter()
        points, used = [], []
        for eta in etas:
            values = {**_hyper(optimizer, eta, rates), **{b: r0 * math.sqrt(eta) for b, r0 in radii.items()}, **fixed}
            steps = max(1, int(round(horizon / eta)))
            record = np.unique(np.linspace(0, steps, 11).round().astype(np.int64))
            k0, state = 0, None
            if (rates or fast) and burn:
                k0 = max(
                    ([math.ceil(3.0 / (eta * min(rates.values())))] if rates else [])
                    + [math.ceil(FAST_BURN / (1.0 - b)) for b in fast.values()]
                )
                state = burn_in(
                    Combination(optimizer, noise, nu=nu),
                    x0,
                    eta=eta,
                    sigma=run_sigma,
                    steps=k0,
                    seed=seed + 1,
                    landscape=land,
                    hyper=values,
                    noise=noise_model,
                )
            r = substeps or max(1, math.ceil(eta / dt_max - 1e-9))
            common = dict(
                eta=eta,
                sigma=run_sigma,
                steps=steps,
                seed=seed,
                landscape=land,
                hyper=values,
                record=record,
                keep=True,
                start=state,
                k0=k0,
                sde_values=sde_values,
                boundary=boundary,
                noise=noise_model,
                sde_noise=sde_noise_model,
            )
            chain, sde = run_coupled(combo, x0, scheme=scheme, substeps=r, **common)
            # half the step, on the same chain and the same Brownian path over each optimizer step
            refined = run_coupled(combo, x0, scheme=scheme, substeps=2 * r, **common)[1] if refine else None
            points.append(_point(chain, sde, refined, dim, chain.times, pairs))
            used.append(r)
            done += 1
            if progress is not None:
                progress(done, total)
        errors = [p["error"] for p in points]
        se = [p["se"] for p in points]
        resolved = [e >= RESOLVED_AT * s for e, s in zip(errors, se, strict=False)]
        slope, ci = fit_slope(etas, errors, se, resolved)
        study.runs.append(
            Row(
                label,
                etas,
                errors,
                se,
                resolved,
                slope,
                ci,
                [p["ratio"] for p in points],
                [p["where"] for p in points],
                used,
                [p.get("change", math.nan) for p in points],
                [p.get("change_se", math.nan) for p in points],
                time.perf_counter() - t0,
            )
        )
    if rates:
        study.initial_layer = initial_layer(
            optimizer,
            noise=noise,
            nu=nu,
            eta=min(etas),
            sigma=float(noise_model.scales[0]) if pairs else sigma,  # the layer itself: independent noise
            rates=rates,
            fixed=fixed,
            paths=min(paths, 20_000),
            seed=seed,
        )
    study.seconds = time.perf_counter() - started
    return study


def network_weak_order(
    model: str,
    optimizer: str,
    *,
    etas=(0.16, 0.08, 0.04, 0.02),
    seeds=(0, 1, 2, 3),
    horizon: float = 2.0,
    sigma: float = 0.05,
    dt_max: float = 0.02,
    sdes=("full",),
    progress=None,
) -> Study:
    """The weak error of ``optimizer``'s SDEs on a network (:func:`derive.validate.experiment.validate`,
    coupled, weak2 with dt <= ``dt_max``), phi = the loss only, over the seeds; as :func:`weak_order`
    otherwise (auxiliary states burned in with the parameters held at their initial values)."""
    from .experiment import validate

    started = time.perf_counter()
    etas = sorted({float(e) for e in etas}, reverse=True)
    rates = RATES.get(optimizer.lower(), {})
    held = {
        "horizon": horizon,
        "sigma": sigma,
        "hyper": {f"rho_{b}": r for b, r in rates.items()},
        "start": "model init",
        "dim": None,
        "paths": len(seeds),
        "seed": list(seeds),
        "scheme": "weak2",
        "dt_max": dt_max,
        "burn_in": (
            "ceil(3 / (eta rho_min)) optimizer steps with the parameters held at their start"
            if rates
            else "none (no auxiliary states)"
        ),
        "boundary": "reflect",
    }
    study = Study(optimizer, "gaussian", model, held)
    points = {label: [] for label in sdes}
    used = []
    for i, eta in enumerate(etas):
        steps = max(1, int(round(horizon / eta)))
        sub = max(1, math.ceil(eta / dt_max - 1e-9))
        burn = math.ceil(3.0 / (eta * min(rates.values()))) if rates else 0
        r = validate(
            model,
            optimizer,
            eta=eta,
            sigma=sigma,
            steps=steps,
            seeds=seeds,
            hyper=_hyper(optimizer, eta, rates),
            compare=list(sdes),
            replicate=False,
            n_boot=0,
            scheme="weak2",
            substeps=sub,
            burn_in=burn,
        )
        held["dim"] = r.dim
        record = np.unique(np.linspace(0, steps, 11).round().astype(np.int64))[1:]
        opt = r.trajectories["optimizer"].loss[:, record]
        for label in sdes:
            diff = r.trajectories[label].loss[:, record] - opt
            mean, se = diff.mean(axis=0), diff.std(axis=0, ddof=1) / math.sqrt(diff.shape[0])
            j = int(np.nanargmax(np.abs(mean)))
            indep = math.sqrt(
                np.var(opt[:, j], ddof=1) / opt.shape[0]
                + np.var(r.trajectories[label].loss[:, record[j]], ddof=1) / opt.shape[0]
            )
            points[label].append(
                dict(
                    error=float(abs(mean[j])),
                    se=float(se[j]),
                    ratio=indep / float(se[j]),
                    where=f"f at t={record[j] * eta:.3g}",
                )
            )
        used.append(sub)
        if progress is not None:
            progress(i + 1, len(etas))
    for label in sdes:
        errors, se = [p["error"] for p in points[label]], [p["se"] for p in points[label]]
        resolved = [e >= RESOLVED_AT * s for e, s in zip(errors, se, strict=False)]
        slope, ci = fit_slope(etas, errors, se, resolved)
        study.runs.append(
            Row(
                label,
                etas,
                errors,
                se,
                resolved,
                slope,
                ci,
                [p["ratio"] for p in points[label]],
                [p["where"] for p in points[label]],
                used,
                [math.nan] * len(etas),
                [math.nan] * len(etas),
            )
        )
    study.seconds = time.perf_counter() - started
    return study


def initial_layer(
    optimizer: str,
    *,
    noise: str = "gaussian",
    nu=None,
    eta: float,
    sigma: float,
    rates: dict,
    fixed: dict,
    paths: int,
    seed: int = 0,
    g: float = 1.0,
    substeps: int = 64,
) -> dict:
    """The first step from m = v = 0 at gradient g (x0 = g on f = x^2/2): the optimizer's mean move
    and the SDE's (full form, weak2 with ``substeps`` substeps), in units of eta."""
    from ..combination import Combination
    from ..simulate import quadratic, run

    land = quadratic([1.0])
    x0 = np.full((paths, 1), g)
    values = {**_hyper(optimizer, eta, rates), **fixed}
    common = dict(eta=eta, sigma=sigma, steps=1, seed=seed, landscape=land, hyper=values, record=np.array([0, 1]))
    common["keep"] = True
    chain = run("optimizer", Combination(optimizer, noise, nu=nu), x0, **common)
    sde = run(
        "sde", Combination(optimizer, noise, "paper", "full", nu=nu), x0, scheme="weak2", substeps=substeps, **common
    )
    moves = [(r.values(lambda p: p)[1, :, 0] - g) / eta for r in (chain, sde)]
    return {
        "eta": eta,
        "g": g,
        "sigma": sigma,
        "paths": paths,
        "substeps": substeps,
        "optimizer": float(moves[0].mean()),
        "optimizer_se": float(moves[0].std(ddof=1) / math.sqrt(paths)),
        "sde": float(moves[1].mean()),
        "sde_se": float(moves[1].std(ddof=1) / math.sqrt(paths)),
    }


def figure(study: Study, path):
    """Weak error against eta (log-log) with +-2 SE bars; unresolved points hollow."""
    from matplotlib.figure import Figure

    from ..io import atomic_savefig

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for r in study.runs:
        e, err, se = np.array(r.etas), np.array(r.errors), np.array(r.se)
        ok = np.array(r.resolved)
        line = ax.errorbar(
            e,
            err,
            yerr=2 * se,
            marker="o",
            ms=4,
            lw=1,
            capsize=2,
            ls="--" if r.sde == "noise-dominated" else "-",
            label=f"{r.sde} (slope {r.slope:.2f})" if math.isfinite(r.slope) else f"{r.sde} (no fit)",
        )
        ax.plot(e[~ok], err[~ok], "o", mfc="white", color=line[0].get_color())
    if study.runs:
        e = np.array(study.runs[0].etas)
        ref = max(r.errors[0] for r in study.runs)
        ax.plot(e, ref * e / e[0], color="k", lw=0.8, ls=":", label="slope 1")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eta")
    ax.set_ylabel("max |E phi(SDE) - E phi(optimizer)|")
    ax.set_title(
        f"{study.optimizer} on {study.landscape}: weak error, coupled ({study.held_fixed['paths']} paths)", fontsize=9
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=110)
