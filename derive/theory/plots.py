"""Figures of `derive check --plots`, drawn from the check rows (no simulation of their own)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .checks import Row


def _axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_vs_sigma(rows: list[Row], path: Path) -> Path:
    """Stationary loss against sigma on log-log axes: simulated points with 4-SE bars, predictions
    as lines, and the fitted slope of the predictions in the legend (SGD 2, SignSGD 1, RMSpropW
    with theta = 0 about 1, with theta > 0 flattening to 0)."""
    plt = _axes()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for series in ("SGD", "SignSGD gaussian", "RMSpropW theta=0.0", "RMSpropW theta=0.5"):
        mine = sorted((r for r in rows if r.series == series and math.isfinite(r.x)), key=lambda r: r.x)
        if len(mine) < 2:
            continue
        xs = np.array([r.x for r in mine])
        pred = np.array([r.predicted for r in mine])
        slope = np.polyfit(np.log(xs), np.log(pred), 1)[0]
        line, = ax.plot(xs, pred, "-", label=f"{series}: predicted, slope {slope:.2f}")
        ax.errorbar(xs, [r.estimate for r in mine], yerr=[4 * r.se for r in mine], fmt="o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("noise scale sigma")
    ax.set_ylabel("stationary expected loss")
    ax.set_title("Stationary loss against sigma (points: optimizer, 4 SE bars)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def heavy_tails(rows: list[Row], path: Path) -> Path:
    """SignSGD against SGD under Student-t noise (nu = 1, 1.5, 2, 3, 5) and Gaussian (right)."""
    plt = _axes()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for series, marker in (("SignSGD", "o"), ("SGD", "s")):
        mine = [r for r in rows if r.series == f"heavy-tails {series}"]
        if not mine:
            continue
        xs = np.arange(len(mine))
        pts = ax.errorbar(xs, [r.estimate for r in mine], yerr=[4 * r.se for r in mine], fmt=marker, label=f"{series} simulated")
        finite = [(i, r.predicted) for i, r in enumerate(mine) if math.isfinite(r.predicted)]
        if finite:
            ax.plot(*zip(*finite), "x--", color=pts[0].get_color(), label=f"{series} predicted")
        ax.set_xticks(xs, [r.name.split(", ")[1].split(" ")[0] for r in mine])
    ax.set_yscale("log")
    ax.set_ylabel("stationary loss (sample mean over paths)")
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "no heavy-tail rows in this run", ha="center", transform=ax.transAxes)
    ax.set_title("SignSGD vs SGD, Student-t noise (SGD: no finite mean for nu <= 2)", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw(rows: list[Row], directory: "str | Path") -> list[Path]:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return [loss_vs_sigma(rows, folder / "stationary_loss_vs_sigma.png"), heavy_tails(rows, folder / "signsgd_vs_sgd_heavy_tails.png")]
