"""The built-in landscapes of the generated path simulators, by code (``land``):

* 0, ``quadratic``: f = sum_j lp_j x_j^2 / 2 (diagonal; lp the curvatures), gradient lp * x;
* 1, ``double-well``: f = sum_j (x_j^2 - 1)^2 / 4, gradient x^3 - x (lp unused);
* 2, ``full quadratic``: f = x^T H x / 2 with H = lp reshaped to d x d (symmetric), gradient H x
  (the rotated quadratic of the weak-order study, whose H is not diagonal).

User landscapes are Numba functions passed to the ``_user`` kernels instead.
"""

from __future__ import annotations

from numba import njit

QUADRATIC, DOUBLE_WELL, FULL_QUADRATIC = 0, 1, 2


@njit(cache=True, inline="always")
def grad(x, lp, land, out):
    """Write the gradient of landscape ``land`` at x into ``out`` (x's float type)."""
    d = x.shape[0]
    if land == FULL_QUADRATIC:
        for j in range(d):
            acc = 0.0
            for i in range(d):
                acc += lp[j * d + i] * x[i]
            out[j] = acc
    elif land == DOUBLE_WELL:
        for j in range(d):
            out[j] = x[j] * x[j] * x[j] - x[j]
    else:
        for j in range(d):
            out[j] = lp[j] * x[j]


@njit(cache=True, inline="always")
def loss(x, lp, land):
    """f(x) of landscape ``land``, accumulated in float64."""
    d = x.shape[0]
    acc = 0.0
    if land == FULL_QUADRATIC:
        for j in range(d):
            row = 0.0
            for i in range(d):
                row += lp[j * d + i] * float(x[i])
            acc += 0.5 * float(x[j]) * row
    elif land == DOUBLE_WELL:
        for j in range(d):
            w = float(x[j]) * float(x[j]) - 1.0
            acc += 0.25 * w * w
    else:
        for j in range(d):
            acc += 0.5 * lp[j] * float(x[j]) * float(x[j])
    return acc
