"""The figure of ``derive noise``: per point, the histogram of the standardised minibatch gradient
coordinates against the two fitted laws, and the eigenvalue spectrum of Sigma(x)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.stats

from ..io import atomic_savefig


def noise_figure(report, path: str | Path) -> Path:
    """One row per point: histogram (log density) with the fitted Gaussian and Student-t (left),
    the eigenvalues of Sigma(x) against their rank (right, log scale)."""
    from matplotlib.figure import Figure

    rows = len(report.points)
    fig = Figure(figsize=(10, 3.2 * rows))
    axes = np.atleast_2d(fig.subplots(rows, 2))
    for (hist, spec), point in zip(axes, report.points, strict=True):
        law = point.law
        lim = float(np.quantile(np.abs(point.z), 0.999)) * 1.2
        edges = np.linspace(-lim, lim, 121)
        hist.hist(point.z, bins=edges, density=True, color="0.75", label=f"z ({law.points} values)")
        grid = np.linspace(-lim, lim, 400)
        hist.plot(grid, scipy.stats.norm.pdf(grid, scale=law.gaussian_scale), color="tab:blue", label="gaussian fit")
        hist.plot(
            grid,
            scipy.stats.t.pdf(grid, law.nu, scale=law.scale),
            color="tab:red",
            label=f"student-t fit, nu = {law.nu:.3g} [{law.nu_ci[0]:.3g}, {law.nu_ci[1]:.3g}]",
        )
        hist.set_yscale("log")
        hist.set_ylim(bottom=0.5 / (law.points * (edges[1] - edges[0])))
        hist.set_xlabel("standardised minibatch gradient coordinate z")
        hist.set_ylabel("density")
        hist.set_title(
            f"{report.model}, step {point.step}, B = {point.batch}: kurtosis {law.kurtosis:.3g}, law {law.law}",
            fontsize=9,
        )
        hist.legend(fontsize=7)
        lam = point.eigenvalues[point.eigenvalues > 0]
        spec.semilogy(np.arange(1, lam.size + 1), lam, ".-", color="tab:green", ms=3, lw=0.8)
        spec.set_xlabel("rank")
        spec.set_ylabel("eigenvalue of Sigma(x)")
        spec.set_title(
            f"trace {point.trace:.3g}, effective rank {point.effective_rank:.2f} (participation ratio)", fontsize=9
        )
    fig.tight_layout()
    return atomic_savefig(fig, Path(path), dpi=110)
