"""`derive report`: derivations, checks, quadratic and network validations in one Markdown report.

``build(out, quick)`` writes ``out/REPORT.md`` and its figures beside it. The default setting
finishes in a few minutes on 2 cores; ``quick`` is a reduced setting for tests and a first look.
Without PyTorch the network part is skipped, and the report says so and why.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .io import atomic_write_text


@dataclass
class Setting:
    """Sizes of one report run."""

    derivations: tuple = (
        ("sgd", "paper", "full"),
        ("signsgd", "paper", "full"),
        ("rmspropw", "paper", "full"),
        ("adamw", "paper", "full"),
        ("adamw", "paper", "published"),
        ("adam", "noise-dominated", "published"),
    )
    checks: tuple | None = None  #: None: every check
    check_paths: int = 400
    check_window: float = 3.0
    quad_optimizers: tuple = ("sgd", "signsgd", "rmsprop", "adam", "adamw")
    quad_sigmas: tuple = (0.1, 1.0)
    quad_steps: int = 500
    quad_paths: int = 1000
    models: tuple = ("mlp", "cnn", "resnet", "transformer")
    net_optimizers: tuple = ("sgd", "signsgd", "rmsprop", "adam")
    mlp_extra_optimizers: tuple = ("rmspropw", "adamw")
    net_sigmas: dict = field(default_factory=lambda: {"mlp": (0.01, 0.1)})
    net_sigma: float = 0.01
    net_steps: dict = field(default_factory=lambda: {"mlp": 300, "cnn": 200, "resnet": 150, "transformer": 200})
    seeds: tuple = (0, 1, 2)
    eta: float = 0.01
    quad_integrator: tuple = ("weak2", 2)  #: (scheme, substeps) of the SDEs on the quadratic
    net_integrator: tuple = ("weak2", 1)  #: (scheme, substeps) of the SDEs on the networks
    weak_order: bool = True
    #: (optimizer, landscape) of the weak-order section; each runs the study at weak_etas, weak_paths
    weak_studies: tuple = tuple(
        (o, "quadratic") for o in ("sgd", "signsgd", "rmsprop", "rmspropw", "adam", "adamw")
    ) + tuple((o, land) for land in ("double-well", "rotated") for o in ("sgd", "signsgd", "rmsprop", "adam"))
    weak_etas: tuple = (0.16, 0.08, 0.04, 0.02)
    weak_paths: int = 10000
    weak_dt_max: float = 0.01
    #: (model, optimizer) of the network weak-order rows (PyTorch), over weak_net_seeds
    weak_networks: tuple = (("mlp", "sgd"), ("mlp", "adam"))
    weak_net_seeds: tuple = tuple(range(8))
    #: (optimizer, landscape) of the order-2 section (`derive weak-order --order 2`, at order2_etas) and the
    #: (model, optimizer) pairs of its network rows (order 1 against order 2 at order2_net_etas, T = 1)
    order2_studies: tuple = (
        ("sgd", "quadratic"),
        ("adam", "quadratic"),
        ("sgd", "double-well"),
        ("adam", "double-well"),
        ("adamw", "rotated"),
    )
    order2_etas: tuple = (0.08, 0.04, 0.02, 0.01)
    order2_paths: int = 20000
    order2_dt_max: float = 0.005
    order2_networks: tuple = (("mlp", "adam"),)
    order2_net_etas: tuple = (0.01, 0.05)


QUICK = Setting(
    derivations=(("sgd", "paper", "full"), ("adamw", "paper", "published")),
    checks=("sgd",),
    check_paths=200,
    check_window=2.0,
    quad_optimizers=("sgd", "adam"),
    quad_sigmas=(0.1,),
    quad_steps=100,
    quad_paths=200,
    models=("mlp",),
    net_optimizers=("sgd", "adam"),
    mlp_extra_optimizers=(),
    net_sigmas={},
    net_steps={"mlp": 30},
    seeds=(0, 1),
    weak_order=True,
    weak_studies=(("sgd", "quadratic"),),
    weak_etas=(0.16, 0.08),
    weak_paths=2000,
    weak_dt_max=0.04,
    weak_networks=(),
    order2_studies=(("sgd", "quadratic"),),
    order2_etas=(0.16, 0.08),
    order2_paths=1000,
    order2_dt_max=0.04,
    order2_networks=(),
)


def _log(progress, text: str) -> None:
    if progress is not None:
        print(f"[report] {text}", file=progress, flush=True)


def _section_derivations(setting: Setting) -> list[str]:
    from .engine import derive_sde

    lines = [
        "## 1. Derived SDEs (a selection)",
        "",
        "Each is derived from the optimizer's update rule by `derive sde` (reference sections 2-4).",
        "",
        "```text",
    ]
    for opt, regime, form in setting.derivations:
        t0 = time.perf_counter()
        try:
            lines.append(derive_sde(opt, "gaussian", regime, form).to_text())
        except Exception as exc:  # noqa: BLE001 - the report shows what failed and goes on
            lines.append(f"{opt} {regime}/{form}: FAILED: {exc}")
        lines.append(f"  ({time.perf_counter() - t0:.2f} s)")
        lines.append("")
    lines += ["```", ""]
    return lines


def _section_checks(setting: Setting, out: Path, progress) -> list[str]:
    from .theory.checks import CHECKS, Sim, run_checks, summary, table
    from .theory.plots import draw

    sim = Sim(paths=setting.check_paths, burn=setting.check_window, window=setting.check_window)
    lines = [
        "## 2. Closed forms checked by simulation (`derive check`)",
        "",
        f"Reduced Monte Carlo size for the report: {sim.paths} paths, burn-in {sim.burn} and window {sim.window} "
        "in SDE time (`derive check` defaults: 4000 paths, 6 and 6). Agreement: |estimate - prediction| <= 4 SE; "
        "`res. %` is the smallest relative gap a row detects at 4 SE; rows marked `yes*` must not agree (a law the "
        "simulation rejects, e.g. the published Adam SDE's); `n/a` rows are shown without a verdict. The "
        "`signsgd-exact` rows compare the SignSGD laws at eta lambda/sigma = 0.5 (linearised, consistent second "
        "order, exact by quadrature, the SDE simulated with a fine step) and show the discrete optimizer's O(eta) "
        "gap to its order-1 SDE.",
        "",
    ]
    rows, errors = [], []
    for name in tuple(CHECKS) if setting.checks is None else setting.checks:
        try:
            rows += run_checks([name], sim, progress=progress)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"check `{name}` could not run: {type(exc).__name__}: {exc}")
    if rows:
        lines += ["```text", table(rows), "```", ""]
        failed = [r.name for r in rows if not r.ok]
        lines.append(summary(rows) + (f"; disagreeing: {', '.join(failed)}" if failed else "") + ".")
        lines.append("")
        try:
            for path in draw(rows, out / "checks"):
                lines.append(f"![{path.stem}](checks/{path.name})")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"check plots failed: {exc}")
        lines.append("")
    lines += [f"- {e}" for e in errors]
    return lines + [""]


def _num(v: float) -> str:
    return "n/a" if not math.isfinite(v) else (f"{v:.4f}" if abs(v) < 10 else f"{v:.3g}")


def _fid_row(prefix: str, result) -> str:
    def cell(label):
        f = result.fidelity.get(label)
        if f is None:
            return "-"
        if not math.isfinite(f.value):
            return "n/a"
        mark = " (diverged)" if result.trajectories[label].diverged else ""
        se = f" +- {_num(f.se)}" if math.isfinite(f.se) else ""
        return f"{_num(f.value)}{se} [{_num(f.low)}, {_num(f.high)}]{mark}"

    resolved = (
        "; ".join(f"{d.a} {'<' if d.value < 0 else '>'} {d.b}" for d in result.differences if d.resolved) or "none"
    )
    return (
        f"| {prefix} | {cell('full')} | {cell('published')} | {cell('noise-dominated')} | "
        f"{cell('optimizer replicate')} | {resolved} | {result.seconds:.0f} |"
    )


FID_HEAD = [
    "| optimizer | full SDE | published SDE | noise-dominated SDE | optimizer replicate (independent noise) "
    "| resolved differences (paired 95% interval excludes 0) | s |",
    "|---|---|---|---|---|---|---|",
]


def _verdicts(results) -> list[str]:
    """Per run with a noise-dominated SDE: is the better of ours better, resolved by the paired difference?"""
    out = []
    for r in results:
        nd = r.fidelity.get("noise-dominated")
        ours = [
            (kind, r.fidelity[kind])
            for kind in ("full", "published")
            if kind in r.fidelity and math.isfinite(r.fidelity[kind].value)
        ]
        if nd is None or not ours or not math.isfinite(nd.value):
            continue
        label, best = min(ours, key=lambda p: p[1].value)
        diff = next((d for d in r.differences if d.a == label and d.b == "noise-dominated"), None)
        where = f"{r.model}/{r.optimizer}, sigma {r.sigma:g}"
        gap = "" if diff is None else f" (paired difference {_num(diff.value)} +- {_num(diff.se)})"
        if best.value < nd.value and diff is not None and diff.resolved:
            out.append(
                f"- {where}: ours ({label}, {best.value:.4f}) tracks better than noise-dominated ({_num(nd.value)}){gap}; "
                "resolved."
            )
        elif best.value < nd.value:
            out.append(
                f"- {where}: ours ({label}, {best.value:.4f}) is nominally better than noise-dominated "
                f"({nd.value:.4f}){gap}, NOT resolved at this number of {r.unit}."
            )
        else:
            out.append(
                f"- {where}: ours ({label}, {best.value:.4f}) is NOT better than noise-dominated ({nd.value:.4f}){gap}."
            )
    return out


def _integrator(pair: tuple) -> str:
    scheme, substeps = pair
    return f"{scheme} with {substeps} substep{'s' if substeps > 1 else ''} of eta/{substeps} per optimizer step"


def _section_quadratic(setting: Setting, out: Path, progress, raw: dict) -> list[str]:
    from .validate.experiment import validate_quadratic
    from .validate.plots import loss_figure

    lam = (1.0, 4.0, 10.0, 0.5)
    lines = [
        "## 3. Quadratic validations",
        "",
        f"f = sum lam x^2/2, lam = {list(lam)}, eta = {setting.eta}, {setting.quad_steps} steps, "
        f"{setting.quad_paths} paths from N(0, 1) starts (the same for every simulator), generated simulators. "
        f"SDEs integrated by {_integrator(setting.quad_integrator)} and coupled with the optimizer (path i of "
        "each SDE is driven by path i's optimizer noise). Fidelity = mean over recorded steps of |mean SDE loss - "
        "mean optimizer loss| / mean optimizer loss, the mean of paired differences, +- its bootstrap standard "
        "error [95% BCa interval over paths]. The optimizer replicate runs on independent noise: its number is "
        "what an uncoupled comparison could resolve. The last columns list the differences between SDEs that "
        "the paired intervals resolve.",
        "",
    ]
    results = []
    for sigma in setting.quad_sigmas:
        lines += [f"### sigma = {sigma:g}", ""] + FID_HEAD
        for opt in setting.quad_optimizers:
            _log(progress, f"quadratic {opt} sigma {sigma:g}")
            try:
                r = validate_quadratic(
                    opt,
                    eta=setting.eta,
                    sigma=sigma,
                    steps=setting.quad_steps,
                    paths=setting.quad_paths,
                    lam=lam,
                    n_boot=300,
                    scheme=setting.quad_integrator[0],
                    substeps=setting.quad_integrator[1],
                )
            except Exception as exc:  # noqa: BLE001
                lines.append(f"| {opt} | failed: {exc} | | | | | |")
                continue
            results.append(r)
            raw[f"quadratic_{opt}_sigma{sigma:g}"] = r.to_json()
            lines.append(_fid_row(opt, r))
            loss_figure(r, out / "quadratic" / f"{opt}_sigma{sigma:g}.png")
        lines.append("")
        lines += [
            f"![quadratic {opt} sigma {sigma:g}](quadratic/{opt}_sigma{sigma:g}.png)"
            for opt in setting.quad_optimizers
            if (out / "quadratic" / f"{opt}_sigma{sigma:g}.png").is_file()
        ]
        lines.append("")
    verdicts = _verdicts(results)
    if verdicts:
        lines += ["Ours against the noise-dominated SDEs (quadratic):", ""] + verdicts + [""]
    return lines


def _section_networks(setting: Setting, out: Path, progress, raw: dict) -> list[str]:
    lines = ["## 4. Neural networks", ""]
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        return lines + [
            f"**Skipped**: the network validations need the `nn` extra (PyTorch CPU and scikit-learn); "
            f"importing it failed here ({exc}). Install with `pip install torch==2.13.0` (CPU wheel) and "
            '`pip install -e ".[nn]"`, then rerun `derive report`.',
            "",
        ]
    from .validate.experiment import validate
    from .validate.plots import loss_figure
    from .validate.runner import progress_bar

    lines += [
        f"Protocol (reference section 7): the real `torch.optim` optimizer (SignSGD: a one-line update) sees the "
        f"full-batch gradient + sigma zeta (Gaussian); each SDE is integrated by the generated `sde_step` "
        f"({_integrator(setting.net_integrator)}, eta = {setting.eta}) on the flattened float64 parameters, its "
        f"gradient from autograd at its own parameters at every substep, and coupled with the optimizer (driven by "
        f"its noise); same initial parameters (m = v = 0); seeds {list(setting.seeds)} change only the noise. "
        "Fidelity as in section 3, paired over seeds (with fewer than 10 seeds: jackknife standard error and "
        "Student-t interval, which can reach below 0). Models: MLP 64-32-10 (tanh), CNN and a 2-block "
        "ResNet on scikit-learn's bundled digits (256 / 128 / 128 images), a 1-block Transformer on a seeded "
        "next-token task (64 sequences of 12 tokens).",
        "",
    ]
    results = []
    for model in setting.models:
        steps = setting.net_steps.get(model, 200)
        sigmas = setting.net_sigmas.get(model, (setting.net_sigma,))
        opts = setting.net_optimizers + (setting.mlp_extra_optimizers if model == "mlp" else ())
        for sigma in sigmas:
            lines += [f"### {model}, sigma = {sigma:g}, {steps} steps", ""] + FID_HEAD
            figs, notes = [], []
            for opt in opts:
                _log(progress, f"{model} {opt} sigma {sigma:g}")
                bar = progress_bar(f"{model}/{opt}") if progress is not None else None
                try:
                    r = validate(
                        model,
                        opt,
                        eta=setting.eta,
                        sigma=sigma,
                        steps=steps,
                        seeds=setting.seeds,
                        progress=bar,
                        n_boot=500,
                        scheme=setting.net_integrator[0],
                        substeps=setting.net_integrator[1],
                    )
                except Exception as exc:  # noqa: BLE001
                    lines.append(f"| {opt} | failed: {type(exc).__name__}: {exc} | | | | | |")
                    continue
                finally:
                    if bar is not None:
                        bar.close()
                results.append(r)
                raw[f"{model}_{opt}_sigma{sigma:g}"] = r.to_json()
                lines.append(_fid_row(opt, r))
                name = f"{model}_{opt}_sigma{sigma:g}.png"
                loss_figure(r, out / "networks" / name)
                figs.append(f"![{model} {opt}](networks/{name})")
                notes += [f"{opt}: {n}" for n in r.notes]
            lines += (
                [""]
                + [f"Parameters: {results[-1].dim}." if results else ""]
                + [f"- note: {n}" for n in notes]
                + [""]
                + figs
                + [""]
            )
    verdicts = _verdicts(results)
    if verdicts:
        lines += ["### Ours against the noise-dominated SDEs (networks)", ""] + verdicts + [""]
    return lines


def _section_weak_order(setting: Setting, out: Path, progress, raw: dict) -> list[str]:
    from .validate.weak_order import RESOLVED_AT, figure, weak_order

    lines = [
        "## 5. Weak order",
        "",
        "Weak error of each SDE against its optimizer as eta varies (`derive weak-order`): coupled runs (the SDE's "
        "first Brownian motion driven by the optimizer's noise), rho, sigma, eps, theta held fixed (beta = 1 - eta "
        "rho), horizon T = 2, start x0 = 1 (double well: 1.5), auxiliary states burned in with x held at x0. "
        "Error = max over phi in {f, x_j, x_j^2} and t in {T/10, ..., T} of |E phi(SDE) - E phi(optimizer)|, "
        f"cells 'error (SE) [SE independent / SE coupled]'; a point counts only at >= {RESOLVED_AT:g} SE, the slope "
        f"is fitted through resolved points only. SDEs integrated by weak2 with dt <= {setting.weak_dt_max:g}; "
        "halving dt changes the estimates by the amounts listed (in SE). Reduced sizes: "
        f"{setting.weak_paths} paths, etas {list(setting.weak_etas)} (the `derive weak-order` defaults are "
        "larger).",
        "",
    ]
    for opt, land in setting.weak_studies:
        _log(progress, f"weak order {opt} {land}")
        try:
            study = weak_order(
                opt, landscape=land, etas=setting.weak_etas, paths=setting.weak_paths, dt_max=setting.weak_dt_max
            )
        except Exception as exc:  # noqa: BLE001
            lines += [f"### {opt} on {land}", "", f"failed: {type(exc).__name__}: {exc}", ""]
            continue
        raw[f"weak_order_{opt}_{land}"] = study.to_json()
        name = f"weak_order_{opt}_{land}.png"
        figure(study, out / "weak_order" / name)
        lines += [f"### {opt} on {land} ({study.seconds:.0f} s)", ""] + study.table() + [""]
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
    lines += _weak_order_networks(setting, out, progress, raw)
    return lines


def _weak_order_networks(setting: Setting, out: Path, progress, raw: dict) -> list[str]:
    if not setting.weak_networks:
        return []
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return ["Network weak-order rows skipped: they need the `nn` extra (PyTorch, scikit-learn).", ""]
    from .validate.weak_order import network_weak_order

    lines = [
        "### Networks",
        "",
        f"phi = the loss, {len(setting.weak_net_seeds)} seeds, coupled, sigma = 0.05, T = 2, weak2 with dt <= 0.02, "
        "auxiliary states burned in with the parameters held at their start; error (SE) [SE ratio].",
        "",
    ]
    for model, opt in setting.weak_networks:
        _log(progress, f"weak order {model} {opt}")
        try:
            study = network_weak_order(model, opt, etas=setting.weak_etas, seeds=setting.weak_net_seeds)
        except Exception as exc:  # noqa: BLE001
            lines += [f"{model}/{opt} failed: {type(exc).__name__}: {exc}", ""]
            continue
        raw[f"weak_order_{model}_{opt}"] = study.to_json()
        lines += (
            [f"#### {model} / {opt} ({study.held_fixed['dim']} parameters, {study.seconds:.0f} s)", ""]
            + study.table()
            + [""]
        )
    return lines


def _section_order2(setting: Setting, out: Path, progress, raw: dict) -> list[str]:
    """Order-2 SDEs (docs/order2.md): weak order against order 1, and fidelity on networks."""
    from .validate.experiment import validate
    from .validate.weak_order import weak_order

    lines = [
        "## 6. Order-2 SDEs",
        "",
        "The order-2 SDE (`derive sde OPT --order 2`, run `order2`) beside the full order-1 SDE: weak error against "
        f"the optimizer as in section 5, {setting.order2_paths} coupled paths, etas {list(setting.order2_etas)}, "
        f"weak2 with dt <= {setting.order2_dt_max:g} (`derive weak-order OPT --order 2`). Stationary laws are not improved by order 2 "
        "(`derive check`, row set order2-stationary).",
        "",
    ]
    for opt, land in setting.order2_studies:
        _log(progress, f"order 2 {opt} {land}")
        study = weak_order(
            opt,
            landscape=land,
            etas=setting.order2_etas,
            paths=setting.order2_paths,
            order=2,
            dt_max=setting.order2_dt_max,
            refine=False,
        )
        raw[f"order2_{opt}_{land}"] = study.to_json()
        lines += [f"### {opt} on {land} ({study.seconds:.0f} s)", ""] + study.table() + [""]
    for model, opt in setting.order2_networks:
        for eta in setting.order2_net_etas:
            _log(progress, f"order 2 {model} {opt} eta {eta:g}")
            hyper = {"beta1": 1 - 2 * eta, "beta2": 1 - eta} if opt.startswith("adam") else None
            r = validate(
                model,
                opt,
                eta=eta,
                sigma=0.05,
                steps=max(1, round(1 / eta)),
                seeds=setting.seeds + (3,),
                hyper=hyper,
                compare=["full", "order2"],
                replicate=False,
                n_boot=500,
                scheme="weak2",
                burn_in=math.ceil(3 / eta) if hyper else 0,
            )
            raw[f"order2_{model}_{opt}_{eta:g}"] = r.to_json()
            lines += [
                f"### {model} / {opt}, eta {eta:g}, T = 1, sigma 0.05, coupled ({r.seconds:.0f} s)",
                "",
                r.table(),
                "",
            ]
    return lines


def build(out: str | Path = "report", quick: bool = False, progress=sys.stderr, setting: Setting | None = None) -> Path:
    """Write ``out/REPORT.md`` (and its figures and ``report.json``); returns the path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    setting = setting or (QUICK if quick else Setting())
    t0 = time.perf_counter()
    raw: dict = {}
    from . import __version__

    try:
        import torch

        torch_line = f"PyTorch {torch.__version__}"
    except ImportError:
        torch_line = "PyTorch not installed"
    lines = [
        "# derive report",
        "",
        f"derive {__version__}, Python {platform.python_version()}, {torch_line}; setting: "
        f"{'quick (reduced)' if quick else 'default'}.",
        "",
    ]
    sections = [
        ("derivations", lambda: _section_derivations(setting)),
        ("checks", lambda: _section_checks(setting, out, progress)),
        ("quadratic", lambda: _section_quadratic(setting, out, progress, raw)),
        ("networks", lambda: _section_networks(setting, out, progress, raw)),
    ]
    if setting.weak_order:
        sections.append(("weak order", lambda: _section_weak_order(setting, out, progress, raw)))
        sections.append(("order 2", lambda: _section_order2(setting, out, progress, raw)))
    timings = []
    for name, make in sections:
        s0 = time.perf_counter()
        _log(progress, f"section {name}")
        try:
            lines += make()
        except Exception:  # noqa: BLE001 - one failing section must not lose the others
            lines += [f"## {name}: FAILED", "", "```text", traceback.format_exc(), "```", ""]
        timings.append(f"{name} {time.perf_counter() - s0:.0f} s")
    lines += ["---", f"Total time {time.perf_counter() - t0:.0f} s ({', '.join(timings)}).", ""]
    atomic_write_text(out / "report.json", json.dumps(raw, indent=1))
    return atomic_write_text(out / "REPORT.md", "\n".join(lines))
