"""The correlated-noise options of ``derive simulate``, ``stationary`` and ``weak-order`` (reference section 9).

``--correlation R``: every pair of unit-variance noise correlated r, coordinate i scaled by ``--sigma``
(valid for -1/(d - 1) <= r <= 1). ``--noise-cov FILE``: a .npy d x d covariance Sigma, read with
allow_pickle=False; then ``--sigma`` is not given (Sigma holds the scales). Without either the noise is
independent across coordinates, as before. Both build a :class:`derive.correlation.NoiseModel`; every
check of the input (range of r, symmetry, semidefiniteness, size against ``--dim`` or the curvatures) is
the model's, a one-line error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..correlation import NoiseModel, NoiseModelError


def add_noise_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--correlation R`` and ``--noise-cov FILE`` (mutually exclusive) to ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--correlation",
        type=float,
        default=None,
        metavar="R",
        help="noise correlated r across every pair of coordinates (scaled by --sigma); needs -1/(d - 1) <= r <= 1",
    )
    group.add_argument(
        "--noise-cov",
        default=None,
        metavar="FILE",
        help="a .npy d x d noise covariance (symmetric positive semidefinite; replaces --sigma)",
    )


def noise_model(
    args: argparse.Namespace,
    dim: int,
    sigma: float | None,
    curvatures: Sequence | None = None,
) -> NoiseModel | None:
    """The noise model the options ask for, or None for independent noise.

    ``sigma`` is the value the user gave with ``--sigma`` (None when not given; the command's own
    default then applies to ``--correlation``, and ``--noise-cov`` refuses a given one)."""
    correlation = getattr(args, "correlation", None)
    path = getattr(args, "noise_cov", None)
    law, nu = getattr(args, "noise", "gaussian"), getattr(args, "nu", None)
    if path is not None:
        if sigma is not None:
            raise NoiseModelError(
                f"--noise-cov {path} with --sigma {sigma}: the covariance file holds the noise scales; drop --sigma"
            )
        return NoiseModel.load(path, law, nu, dim=dim, curvatures=curvatures)
    if correlation is not None:
        return NoiseModel.correlated(correlation, dim, 1.0 if sigma is None else sigma, law, nu)
    return None
