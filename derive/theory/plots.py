"""Figures of `derive check --plots`, drawn from the check rows (no simulation of their own) and,
for the exact-vs-expansion figure, from the derived laws evaluated on a grid of eta lambda/sigma.

Library code: figures are matplotlib.figure.Figure objects saved to files (no pyplot, no backend
switch).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .evaluate import substitute
from .exact import exact_stationary
from .quadratic import curvature
from .rows import Row
from .stationary import stationary


def _save(fig: Figure, path: Path) -> Path:
    """Write the figure atomically (a temporary file in the same folder, then os.replace)."""
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def loss_vs_sigma(rows: list[Row], path: Path) -> Path:
    """Stationary loss against sigma on log-log axes: simulated points with 4-SE bars, predictions
    as lines, and the fitted slope of the predictions in the legend (SGD 2, SignSGD 1, RMSpropW
    with theta = 0 about 1, with theta > 0 flattening to 0)."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    for series in ("SGD", "SignSGD gaussian", "RMSpropW theta=0.0", "RMSpropW theta=0.5"):
        mine = sorted((r for r in rows if r.series == series and math.isfinite(r.x)), key=lambda r: r.x)
        if len(mine) < 2:
            continue
        xs = np.array([r.x for r in mine])
        pred = np.array([r.predicted for r in mine])
        slope = np.polyfit(np.log(xs), np.log(pred), 1)[0]
        (line,) = ax.plot(xs, pred, "-", label=f"{series}: predicted, slope {slope:.2f}")
        ax.errorbar(xs, [r.estimate for r in mine], yerr=[4 * r.se for r in mine], fmt="o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("noise scale sigma")
    ax.set_ylabel("stationary expected loss")
    ax.set_title("Stationary loss against sigma (points: optimizer, 4 SE bars)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def heavy_tails(rows: list[Row], path: Path) -> Path:
    """SignSGD against SGD under Student-t noise (nu = 1, 1.5, 2, 3, 5) and Gaussian (right)."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    for series, marker in (("SignSGD", "o"), ("SGD", "s")):
        mine = [r for r in rows if r.series == f"heavy-tails {series}"]
        if not mine:
            continue
        xs = np.arange(len(mine))
        pts = ax.errorbar(
            xs, [r.estimate for r in mine], yerr=[4 * r.se for r in mine], fmt=marker, label=f"{series} simulated"
        )
        finite = [(i, r.predicted) for i, r in enumerate(mine) if math.isfinite(r.predicted)]
        if finite:
            ax.plot(*zip(*finite, strict=False), "x--", color=pts[0].get_color(), label=f"{series} predicted")
        ax.set_xticks(xs, [r.name.split(", ")[1].split(" ")[0] for r in mine])
    ax.set_yscale("log")
    ax.set_ylabel("stationary loss (sample mean over paths)")
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "no heavy-tail rows in this run", ha="center", transform=ax.transAxes)
    ax.set_title("SignSGD vs SGD, Student-t noise (SGD: no finite mean for nu <= 2)", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def expansion_errors(noise: str = "gaussian", grid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Relative error against the exact stationary E X^2 of the SignSGD SDE, over eta lambda/sigma:
    the linearised law, the consistent second order and, for a smooth law, the earlier expansion
    with the cubic drift term dropped (lambda = sigma = 1, so eta lambda/sigma = eta)."""
    grid = np.geomspace(0.01, 1.0, 13) if grid is None else grid
    result = stationary("signsgd", noise)
    e = result.expansion
    forms = {
        "linearised": result.var_x,
        ("second order (5b)" if e.smooth else "first correction, O(sqrt(eta))"): e.second_moment,
    }
    if e.smooth:
        forms["cubic drift term dropped (inconsistent)"] = e.b0 / (2 * e.a - e.d2)
    out = {"eta*lambda/sigma": grid, **{k: np.zeros(grid.size) for k in forms}}
    for i, value in enumerate(grid):
        numbers = {"eta": float(value), "sigma": 1.0}
        exact = exact_stationary(result.sde, 1.0, numbers).second_moment
        for key, expr in forms.items():
            out[key][i] = float(substitute(expr.xreplace({curvature: 1}), numbers)) / exact - 1
    return out


def exact_vs_expansions(rows: list[Row], path: Path) -> Path:
    """Relative error of the expansions against the exact SDE law (curves, Gaussian and Laplace),
    with the fine-step SDE and the discrete optimizer from the signsgd-exact rows (points, 4 SE bars)."""
    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.add_subplot()
    colors = {
        "linearised": "C0",
        "second order (5b)": "C1",
        "first correction, O(sqrt(eta))": "C1",
        "cubic drift term dropped (inconsistent)": "C2",
    }
    for noise, style in (("gaussian", "-"), ("laplace", ":")):
        curves = expansion_errors(noise)
        xs = curves.pop("eta*lambda/sigma")
        for key, values in curves.items():
            ax.plot(xs, 100 * values, style, color=colors[key], label=f"{noise}: {key}")
    optimizer = sorted((r for r in rows if r.series == "optimizer" and math.isfinite(r.x)), key=lambda r: r.x)
    if optimizer:
        ax.errorbar(
            [r.x for r in optimizer],
            [100 * r.relative_gap for r in optimizer],
            yerr=[100 * 4 * r.se / r.predicted for r in optimizer],
            fmt="ks",
            label="gaussian: discrete optimizer",
        )
    fine = [r for r in rows if r.series == "exact"]
    for r in fine:
        ax.errorbar(
            [0.5],
            [100 * r.relative_gap],
            yerr=[100 * 4 * r.se / r.predicted],
            fmt="o",
            mfc="none",
            label=f"{r.name.split(', ')[1].split(':')[0]}: SDE simulated, dt = eta/200",
        )
    ax.axhline(0.0, color="grey", lw=0.8, label="exact SDE law (quadrature)")
    ax.set_ylim(-30, 45)
    ax.set_xscale("log")
    ax.set_xlabel("eta * lambda / sigma")
    ax.set_ylabel("E x^2 relative to the exact SDE law (%)")
    ax.set_title("SignSGD stationary law: expansions and optimizer vs the exact SDE law", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def draw(rows: list[Row], directory: str | Path) -> list[Path]:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        loss_vs_sigma(rows, folder / "stationary_loss_vs_sigma.png"),
        heavy_tails(rows, folder / "signsgd_vs_sgd_heavy_tails.png"),
        exact_vs_expansions(rows, folder / "signsgd_exact_vs_expansions.png"),
    ]
