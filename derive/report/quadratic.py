"""Section 3: the optimizers against their SDEs on a diagonal quadratic (generated path simulators),
one task per optimizer and sigma."""

from __future__ import annotations

from ..combination import Combination
from ..validate.experiment import validate_quadratic
from ..validate.sdes import order_of, sde_kinds
from .common import FIDELITY_HEAD, fidelity_row, integrator, value_or_error, verdicts
from .setting import Setting
from .tasks import Kernel, ReportTask, Results

NAME = "quadratic"
LAM = (1.0, 4.0, 10.0, 0.5)


def sde_kernels(optimizer: str, kind: str = "paths", order: int = 1, labels=None) -> tuple[Kernel, ...]:
    """The kernels of ``optimizer``'s compared SDEs (:func:`derive.validate.sdes.sde_kinds`, or ``labels``)."""
    return tuple(
        Kernel(kind, Combination(optimizer, "gaussian", regime, form, order=order_of(label)))
        for label, regime, form in sde_kinds(optimizer, compare=labels)
    )


def _kind(scheme: str) -> str:
    """The kernel kind of an SDE run alone with ``scheme`` (:data:`derive.report.tasks.KINDS`)."""
    return "paths-weak2" if scheme == "weak2" else "paths"


def _key(optimizer: str, sigma: float) -> str:
    return f"{NAME}/{optimizer}/sigma{sigma:g}"


def tasks(setting: Setting) -> list[ReportTask]:
    scheme, substeps = setting.quad_integrator
    out = []
    for sigma in setting.quad_sigmas:
        for opt in setting.quad_optimizers:
            kernels = (Kernel("chain", Combination(opt)),) + sde_kernels(opt, _kind(scheme))
            kwargs = dict(
                eta=setting.eta,
                sigma=sigma,
                steps=setting.quad_steps,
                paths=setting.quad_paths,
                lam=LAM,
                n_boot=300,
                scheme=scheme,
                substeps=substeps,
            )
            weight = 1e-5 * setting.quad_steps * setting.quad_paths * substeps * len(kernels)
            out.append(ReportTask(_key(opt, sigma), validate_quadratic, (opt,), kwargs, kernels, weight))
    return out


def render(setting: Setting, results: Results, out, raw: dict) -> list[str]:
    from ..validate.plots import loss_figure

    lines = [
        "## 3. Quadratic validations",
        "",
        f"f = sum lam x^2/2, lam = {list(LAM)}, eta = {setting.eta}, {setting.quad_steps} steps, "
        f"{setting.quad_paths} paths from N(0, 1) starts (the same for every simulator), generated simulators. "
        f"SDEs integrated by {integrator(setting.quad_integrator)} and coupled with the optimizer (path i of "
        "each SDE is driven by path i's optimizer noise). Fidelity = mean over recorded steps of |mean SDE loss - "
        "mean optimizer loss| / mean optimizer loss, the mean of paired differences, +- its bootstrap standard "
        "error [95% BCa interval over paths]. The optimizer replicate runs on independent noise: its number is "
        "what an uncoupled comparison could resolve. The last columns list the differences between SDEs that "
        "the paired intervals resolve.",
        "",
    ]
    done = []
    for sigma in setting.quad_sigmas:
        lines += [f"### sigma = {sigma:g}", ""] + FIDELITY_HEAD
        figures = []
        for opt in setting.quad_optimizers:
            key = _key(opt, sigma)
            r, error = value_or_error(results, key)
            if r is None:
                lines.append(f"| {opt} | failed: {error} | | | | | |")
                continue
            done.append(r)
            raw[f"quadratic_{opt}_sigma{sigma:g}"] = r.to_json()
            lines.append(fidelity_row(opt, r, results.seconds(key)))
            name = f"{opt}_sigma{sigma:g}.png"
            loss_figure(r, out / "quadratic" / name)
            figures.append(f"![quadratic {opt} sigma {sigma:g}](quadratic/{name})")
        lines += [""] + figures + [""]
    found = verdicts(done)
    if found:
        lines += ["Ours against the noise-dominated SDEs (quadratic):", ""] + found + [""]
    return lines
