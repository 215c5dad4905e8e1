"""The order-1 split step evaluates x's diffusion at the auxiliary states' noise-free predictor
(issue 16): where x and v share a Brownian motion (RMSprop: W1 drives both), reading G_x at the
new, noisy v' adds the drift E[G_x(v') sqrt(h) xi_1] / h -> (d G_x / d v) G_v1, of order eta, that
does not shrink with the step h: the simulated SDE would not be the stated one.

Exact one-step means, no Monte Carlo: the step is a smooth function of the normals xi, so its mean is
computed by Gauss-Hermite quadrature (the quadrature nodes are fed to the generated ``sde_step`` as
its normals), for h and h/2. The rule "G_x at v'" is computed beside the kernel from the module's own
``drift`` and ``diffusion``; its drift error survives halving h and equals the predicted
(d G_x / d v) G_v1, while the kernel's error is O(h) (halves with h)."""

from __future__ import annotations

import math

import numpy as np

from derive.combination import Combination
from derive.simulate import load_module

#: SDE_PARAMS of the RMSprop module: eps, eta, rho, sigma, _boundary (reflect)
P = np.array([0.1, 0.1, 1.0, 1.0, -1.0])
X, V, G = 0.3, 1.0, 0.5


def _nodes(n: int = 24):
    """Gauss-Hermite nodes and weights for E over two independent standard normals (xi1, xi2)."""
    z, w = np.polynomial.hermite.hermgauss(n)
    z, w = z * math.sqrt(2.0), w / math.sqrt(math.pi)
    xi1, xi2 = (a.ravel() for a in np.meshgrid(z, z, indexing="ij"))
    return xi1, xi2, np.outer(w, w).ravel()


def _drift_errors(module, h: float) -> tuple[float, float]:
    """(kernel, "G_x at v'") one-step mean of (x' - x)/h minus b_x(x, v), exact to quadrature."""
    xi1, xi2, w = _nodes()
    n = xi1.size
    state = np.empty((2, n, 1))
    state[0], state[1] = X, V
    g = np.full((n, 1), G)
    module.sde_step(state, g, np.stack([xi1, xi2])[:, :, None].copy(), 0.0, h, P)
    b_x = module.drift(X, V, G, 0.0, P)[0]
    kernel = float(w @ (state[0, :, 0] - X)) / h - b_x
    v_new = state[1, :, 0]
    at_new = np.array(
        [module.drift(X, v, G, 0.0, P)[0] * h + module.diffusion(X, v, G, 0.0, P)[0] * math.sqrt(h) * z
         for v, z in zip(v_new, xi1, strict=True)]
    )  # fmt: skip
    return kernel, float(w @ at_new) / h - b_x


def test_x_diffusion_at_the_predictor_removes_the_spurious_drift():
    module = load_module(Combination("rmsprop"))
    assert module.STATE == ("x", "v") and module.NOISE_SOURCES == 2
    # the predicted spurious drift (d G_x / d v) G_v1, from the module's own diffusion
    dv = 1e-6
    dGx = (module.diffusion(X, V + dv, G, 0.0, P)[0] - module.diffusion(X, V - dv, G, 0.0, P)[0]) / (2 * dv)
    spurious = dGx * module.diffusion(X, V, G, 0.0, P)[2]
    assert abs(spurious) > 0.01  # eta rho sigma^2 g / (sqrt(v) (eps + sqrt(v))^2) = 0.041 here
    h = 0.02
    (k1, new1), (k2, new2) = _drift_errors(module, h), _drift_errors(module, h / 2)
    # G_x at v': the error does not shrink with h, and is the predicted drift
    assert abs(new2 - spurious) < 0.1 * abs(spurious) and abs(new1 - spurious) < 0.2 * abs(spurious)
    assert abs(new2) > 0.8 * abs(new1)
    # the kernel (G_x at the predictor): O(h), halving with h, and far below the spurious drift
    assert abs(k1) < 0.1 * abs(spurious)
    assert 0.4 < k2 / k1 < 0.6
