"""Section 5: weak order, the weak error of each SDE against its optimizer as eta varies
(`derive weak-order`), one task per study; and the network rows (`network_weak_order`)."""

from __future__ import annotations

import math

from ..combination import Combination
from ..validate.weak_order import RATES, RESOLVED_AT, network_weak_order, weak_order
from .common import value_or_error
from .networks import has_torch
from .quadratic import sde_kernels
from .setting import Setting
from .tasks import Kernel, ReportTask, Results

NAME = "weak order"


def study_kernels(optimizer: str, labels=None, order: int = 1) -> tuple[Kernel, ...]:
    """The kernels of a weak-order study: its SDEs' path kernels, the optimizer's chain for the
    burn-in of the auxiliary states and the initial layer (optimizers with a rate: the full SDE alone, weak2)."""
    kernels = sde_kernels(optimizer, "coupled", labels=labels)
    if RATES.get(optimizer):
        kernels += (Kernel("chain", Combination(optimizer)), Kernel("paths-weak2", Combination(optimizer)))
    return tuple(dict.fromkeys(kernels))


def _key(optimizer: str, landscape: str) -> str:
    return f"{NAME}/{optimizer}/{landscape}"


def _net_key(model: str, optimizer: str) -> str:
    return f"{NAME}/network/{model}/{optimizer}"


def tasks(setting: Setting) -> list[ReportTask]:
    if not setting.weak_order:
        return []
    steps = sum(max(1, round(2.0 / e)) * max(1, math.ceil(e / setting.weak_dt_max)) for e in setting.weak_etas)
    out = [
        ReportTask(
            _key(opt, land),
            weak_order,
            (opt,),
            dict(
                landscape=land,
                etas=setting.weak_etas,
                paths=setting.weak_paths_of(opt, land),
                dt_max=setting.weak_dt_max,
            ),
            study_kernels(opt),
            2e-6 * steps * setting.weak_paths_of(opt, land) * 3 * len(study_kernels(opt)),
        )
        for opt, land in setting.weak_studies
    ]
    if setting.weak_networks and has_torch() is None:
        net_steps = sum(max(1, round(2.0 / e)) * max(1, math.ceil(e / 0.02)) for e in setting.weak_etas)
        out += [
            ReportTask(
                _net_key(model, opt),
                network_weak_order,
                (model, opt),
                dict(etas=setting.weak_etas, seeds=setting.weak_net_seeds),
                sde_kernels(opt, "step", labels=["full"]),
                0.1 * net_steps * len(setting.weak_net_seeds),
            )
            for model, opt in setting.weak_networks
        ]
    return out


def render(setting: Setting, results: Results, out, raw: dict) -> list[str]:
    from ..validate.weak_order import figure

    if not setting.weak_order:
        return []

    lines = [
        "## 5. Weak order",
        "",
        "Weak error of each SDE against its optimizer as eta varies (`derive weak-order`): coupled runs (the SDE's "
        "first Brownian motion driven by the optimizer's noise), rho, sigma, eps, theta held fixed (beta = 1 - eta "
        "rho), horizon T = 2, start x0 = 1 (double well: 1.5), auxiliary states burned in with x held at x0. "
        "Error = max over phi in {f, x_j, x_j^2} and t in {T/10, ..., T} of |E phi(SDE) - E phi(optimizer)|, "
        f"cells 'error (SE) [SE independent / SE coupled]'; a point counts only at >= {RESOLVED_AT:g} SE, the slope "
        f"is fitted through resolved points only. SDEs integrated by weak2 with dt <= {setting.weak_dt_max:g}; "
        "halving dt changes the estimates by the amounts listed (in SE). Sizes: "
        f"{paths_text(setting.weak_paths, setting.weak_paths_by_study)}, etas {list(setting.weak_etas)} (the "
        "`derive weak-order` defaults are larger).",
        "",
    ]
    for opt, land in setting.weak_studies:
        study, error = value_or_error(results, _key(opt, land))
        if study is None:
            lines += [f"### {opt} on {land}", "", f"failed: {error}", ""]
            continue
        raw[f"weak_order_{opt}_{land}"] = study.to_json()
        name = f"weak_order_{opt}_{land}.png"
        figure(study, out / "weak_order" / name)
        paths = study.held_fixed["paths"]
        lines += [f"### {opt} on {land} ({paths} paths, {study.seconds:.0f} s)", ""] + study.table() + [""]
        for r in study.runs:
            if all(math.isfinite(c) for c in r.refined_change):
                worst = max(c / s for c, s in zip(r.refined_change, r.se, strict=False))
                lines.append(f"- {r.sde}: halving dt changes the estimates by at most {worst:.2f} SE")
        if study.initial_layer:
            il = study.initial_layer
            lines.append(
                f"- initial layer (not fitted): first step from m = v = 0 at g = {il['g']:g}, eta = {il['eta']:g}: "
                f"optimizer {il['optimizer']:+.3f} (SE {il['optimizer_se']:.3f}) eta, SDE {il['sde']:+.3f} "
                f"(SE {il['sde_se']:.3f}) eta"
            )
        lines += ["", f"![weak order {opt} {land}](weak_order/{name})", ""]
    return lines + _render_networks(setting, results, raw)


def paths_text(paths: int, by_study: dict) -> str:
    """'N paths' and the studies that run another number: 'N paths (M: opt on land, ...)'."""
    other: dict[int, list[str]] = {}
    for (opt, land), n in by_study.items():
        other.setdefault(n, []).append(f"{opt} on {land}")
    more = "; ".join(f"{n}: {', '.join(names)}" for n, names in other.items() if n != paths)
    return f"{paths} coupled paths" + (f" ({more})" if more else "")


def _render_networks(setting: Setting, results: Results, raw: dict) -> list[str]:
    if not setting.weak_networks:
        return []
    if has_torch() is not None:
        return ["Network weak-order rows skipped: they need the `nn` extra (PyTorch, scikit-learn).", ""]
    lines = [
        "### Networks",
        "",
        f"phi = the loss, {len(setting.weak_net_seeds)} seeds, coupled, sigma = 0.05, T = 2, weak2 with dt <= 0.02, "
        "auxiliary states burned in with the parameters held at their start; error (SE) [SE ratio].",
        "",
    ]
    for model, opt in setting.weak_networks:
        study, error = value_or_error(results, _net_key(model, opt))
        if study is None:
            lines += [f"{model}/{opt} failed: {error}", ""]
            continue
        raw[f"weak_order_{model}_{opt}"] = study.to_json()
        lines += (
            [f"#### {model} / {opt} ({study.held_fixed['dim']} parameters, {study.seconds:.0f} s)", ""]
            + study.table()
            + [""]
        )
    return lines
