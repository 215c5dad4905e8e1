"""Section 6: order-2 SDEs (docs/order2.md): weak order against order 1 (`derive weak-order
--order 2`), one task per study, and order 1 against order 2 on a network, one task per eta."""

from __future__ import annotations

import math

from ..validate.weak_order import weak_order
from .networks import has_torch, validation
from .quadratic import sde_kernels
from .setting import Setting
from .tasks import ReportTask, Results
from .weak_order import paths_text, study_kernels

NAME = "order 2"
LABELS = ["full", "order2"]


def _key(optimizer: str, landscape: str) -> str:
    return f"{NAME}/{optimizer}/{landscape}"


def _net_key(model: str, optimizer: str, eta: float) -> str:
    return f"{NAME}/network/{model}/{optimizer}/eta{eta:g}"


def network_kwargs(setting: Setting, optimizer: str, eta: float) -> dict:
    """The arguments of one network row: T = 1, sigma 0.05, beta1 = 1 - 2 eta, beta2 = 1 - eta for Adam(W)."""
    hyper = {"beta1": 1 - 2 * eta, "beta2": 1 - eta} if optimizer.startswith("adam") else None
    return dict(
        eta=eta,
        sigma=0.05,
        steps=max(1, round(1 / eta)),
        seeds=setting.seeds + (3,),
        hyper=hyper,
        compare=LABELS,
        replicate=False,
        n_boot=500,
        scheme="weak2",
        burn_in=math.ceil(3 / eta) if hyper else 0,
    )


def tasks(setting: Setting) -> list[ReportTask]:
    if not setting.weak_order:
        return []
    steps = sum(max(1, round(2.0 / e)) * max(1, math.ceil(e / setting.order2_dt_max)) for e in setting.order2_etas)
    out = [
        ReportTask(
            _key(opt, land),
            weak_order,
            (opt,),
            dict(
                landscape=land,
                etas=setting.order2_etas,
                paths=setting.order2_paths_of(opt, land),
                order=2,
                dt_max=setting.order2_dt_max,
                refine=False,
            ),
            study_kernels(opt, LABELS),
            2e-6 * steps * setting.order2_paths_of(opt, land) * 2,
        )
        for opt, land in setting.order2_studies
    ]
    if setting.order2_networks and has_torch() is None:
        out += [
            ReportTask(
                _net_key(model, opt, eta),
                validation,
                (model, opt),
                network_kwargs(setting, opt, eta),
                sde_kernels(opt, "step", labels=LABELS),
                0.1 * (round(1 / eta) + math.ceil(3 / eta)) * (len(setting.seeds) + 1),
            )
            for model, opt in setting.order2_networks
            for eta in setting.order2_net_etas
        ]
    return out


def render(setting: Setting, results: Results, out, raw: dict) -> list[str]:
    from .common import value_or_error

    if not setting.weak_order:
        return []

    lines = [
        "## 6. Order-2 SDEs",
        "",
        "The order-2 SDE (`derive sde OPT --order 2`, run `order2`) beside the full order-1 SDE: weak error against "
        f"the optimizer as in section 5, {paths_text(setting.order2_paths, setting.order2_paths_by_study)}, etas {list(setting.order2_etas)}, "
        f"weak2 with dt <= {setting.order2_dt_max:g} (`derive weak-order OPT --order 2`). Stationary laws are not "
        "improved by order 2 (`derive check`, row set order2-stationary).",
        "",
    ]
    for opt, land in setting.order2_studies:
        study, error = value_or_error(results, _key(opt, land))
        if study is None:
            lines += [f"### {opt} on {land}", "", f"failed: {error}", ""]
            continue
        raw[f"order2_{opt}_{land}"] = study.to_json()
        paths = study.held_fixed["paths"]
        lines += [f"### {opt} on {land} ({paths} paths, {study.seconds:.0f} s)", ""] + study.table() + [""]
    if setting.order2_networks and has_torch() is not None:
        return lines + ["Network rows skipped: they need the `nn` extra (PyTorch, scikit-learn).", ""]
    for model, opt in setting.order2_networks:
        for eta in setting.order2_net_etas:
            r, error = value_or_error(results, _net_key(model, opt, eta))
            head = f"### {model} / {opt}, eta {eta:g}, T = 1, sigma 0.05, coupled"
            if r is None:
                lines += [head, "", f"failed: {error}", ""]
                continue
            raw[f"order2_{model}_{opt}_{eta:g}"] = r.to_json()
            lines += [f"{head} ({r.seconds:.0f} s)", "", r.table(), ""]
    return lines
