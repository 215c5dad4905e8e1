"""Figures of simulated runs, drawn with matplotlib's object API (the user's backend is untouched)."""

from __future__ import annotations

from pathlib import Path

from .io import atomic_savefig


def run_trajectories(runs: dict, title: str, path: str | Path) -> Path:
    """Mean loss of each run (``label -> derive.simulate.Run``) against t with +-2 SE bands, log scale."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for label, r in runs.items():
        ax.plot(r.times, r.loss_mean, label=label)
        ax.fill_between(r.times, r.loss_mean - 2 * r.loss_se, r.loss_mean + 2 * r.loss_se, alpha=0.25)
    ax.set_xlabel("t = k * eta")
    ax.set_ylabel("mean loss (band: +-2 SE)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=120)
