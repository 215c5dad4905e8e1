"""Figures of a validation result: mean loss with bands, and the relative gap to the optimizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_savefig

COLORS = {
    "optimizer": "black",
    "optimizer replicate": "grey",
    "full": "tab:blue",
    "published": "tab:orange",
    "noise-dominated": "tab:red",
}


def loss_figure(result, path: str | Path) -> Path:
    """Mean loss over seeds (or paths) with +-2 standard-error bands (left) and |gap|/loss (right)."""
    from matplotlib.figure import Figure

    steps = result.step_numbers
    fig = Figure(figsize=(10, 3.8))
    a, b = fig.subplots(1, 2)
    ref = result.trajectories["optimizer"].mean
    for label, t in result.trajectories.items():
        c = COLORS.get(label)
        ls = ":" if label == "optimizer replicate" else "-"
        a.plot(steps, t.mean, color=c, ls=ls, lw=1.4 if label == "optimizer" else 1.1, label=label)
        a.fill_between(steps, t.mean - 2 * t.se, t.mean + 2 * t.se, color=c, alpha=0.15, lw=0)
        if label != "optimizer":
            with np.errstate(invalid="ignore", divide="ignore"):
                b.plot(steps, np.abs(t.mean - ref) / np.abs(ref), color=c, ls=ls, lw=1.0, label=label)
    a.set_yscale("log")
    a.set_xlabel("step")
    a.set_ylabel(f"mean loss (band: +-2 SE over {result.unit})")
    a.set_title(
        f"{result.model} / {result.optimizer}: eta={result.eta:g}, sigma={result.sigma:g}; SDEs: {result.integrator}"
        + (", coupled" if result.coupled else ""),
        fontsize=8,
    )
    a.legend(fontsize=7)
    b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("|mean loss - optimizer| / optimizer")
    b.set_title("relative gap (its mean over steps is the fidelity)", fontsize=9)
    fig.tight_layout()
    return atomic_savefig(fig, Path(path), dpi=110)
