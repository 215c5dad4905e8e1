"""Section 4: the real `torch.optim` optimizers against their SDEs on four small networks (one task
per model, sigma and optimizer), and the real minibatch noise of one of them (:mod:`.real_noise`)."""

from __future__ import annotations

from .common import FIDELITY_HEAD, fidelity_row, integrator, value_or_error, verdicts
from .quadratic import sde_kernels
from .real_noise import render as render_real_noise
from .real_noise import tasks as real_noise_tasks
from .setting import Setting
from .tasks import ReportTask, Results

NAME = "networks"
#: rough cost of a model's step relative to the MLP's (for the order in which tasks are submitted)
MODEL_COST = {"mlp": 1.0, "cnn": 4.0, "resnet": 8.0, "transformer": 4.0}


def validation(model: str, optimizer: str, **kwargs):
    """:func:`derive.validate.experiment.validate` (a report task; imported where it runs)."""
    from ..validate.experiment import validate

    return validate(model, optimizer, **kwargs)


def has_torch() -> str | None:
    """None if the `nn` extra imports, else the reason it does not."""
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def runs(setting: Setting) -> list[tuple[str, float, int, tuple[str, ...]]]:
    """(model, sigma, steps, optimizers) of each table, in the report's order."""
    return [
        (
            model,
            sigma,
            setting.net_steps.get(model, 200),
            setting.net_optimizers + (setting.mlp_extra_optimizers if model == "mlp" else ()),
        )
        for model in setting.models
        for sigma in setting.net_sigmas.get(model, (setting.net_sigma,))
    ]


def _key(model: str, optimizer: str, sigma: float) -> str:
    return f"{NAME}/{model}/{optimizer}/sigma{sigma:g}"


def tasks(setting: Setting) -> list[ReportTask]:
    if has_torch() is not None:
        return []
    scheme, substeps = setting.net_integrator
    out = []
    for model, sigma, steps, optimizers in runs(setting):
        for opt in optimizers:
            kernels = sde_kernels(opt, "step")
            kwargs = dict(
                eta=setting.eta,
                sigma=sigma,
                steps=steps,
                seeds=setting.seeds,
                n_boot=500,
                scheme=scheme,
                substeps=substeps,
            )
            weight = 0.02 * MODEL_COST.get(model, 4.0) * steps * len(setting.seeds) * substeps * (len(kernels) + 2)
            out.append(ReportTask(_key(model, opt, sigma), validation, (model, opt), kwargs, kernels, weight))
    return out + real_noise_tasks(setting)


def render(setting: Setting, results: Results, out, raw: dict) -> list[str]:
    lines = ["## 4. Neural networks", ""]
    missing = has_torch()
    if missing is not None:
        return lines + [
            f"**Skipped**: the network validations need the `nn` extra (PyTorch CPU and scikit-learn); "
            f"importing it failed here ({missing}). Install with `pip install torch==2.13.0` (CPU wheel) and "
            '`pip install -e ".[nn]"`, then rerun `derive report`.',
            "",
        ]
    from ..validate.plots import loss_figure

    lines += [
        f"Protocol (reference section 7): the real `torch.optim` optimizer (SignSGD: a one-line update) sees the "
        f"full-batch gradient + sigma zeta (Gaussian); each SDE is integrated by the generated `sde_step` "
        f"({integrator(setting.net_integrator)}, eta = {setting.eta}) on the flattened float64 parameters, its "
        f"gradient from autograd at its own parameters at every substep, and coupled with the optimizer (driven by "
        f"its noise); same initial parameters (m = v = 0); seeds {list(setting.seeds)} change only the noise. "
        "Fidelity as in section 3, paired over seeds (with fewer than 10 seeds: jackknife standard error and "
        "Student-t interval, which can reach below 0). Models: MLP 64-32-10 (tanh), CNN and a 2-block "
        "ResNet on scikit-learn's bundled digits (256 / 128 / 128 images), a 1-block Transformer on a seeded "
        "next-token task (64 sequences of 12 tokens).",
        "",
    ]
    done = []
    for model, sigma, steps, optimizers in runs(setting):
        lines += [f"### {model}, sigma = {sigma:g}, {steps} steps", ""] + FIDELITY_HEAD
        figures, notes, dim = [], [], None
        for opt in optimizers:
            key = _key(model, opt, sigma)
            r, error = value_or_error(results, key)
            if r is None:
                lines.append(f"| {opt} | failed: {error} | | | | | |")
                continue
            done.append(r)
            dim = r.dim
            raw[f"{model}_{opt}_sigma{sigma:g}"] = r.to_json()
            lines.append(fidelity_row(opt, r, results.seconds(key)))
            name = f"{model}_{opt}_sigma{sigma:g}.png"
            loss_figure(r, out / "networks" / name)
            figures.append(f"![{model} {opt}](networks/{name})")
            notes += [f"{opt}: {n}" for n in r.notes]
        lines += [""] + ([f"Parameters: {dim}."] if dim else []) + [f"- note: {n}" for n in notes] + [""]
        lines += figures + [""]
    found = verdicts(done)
    if found:
        lines += ["### Ours against the noise-dominated SDEs (networks)", ""] + found + [""]
    return lines + render_real_noise(setting, results, out, raw)
