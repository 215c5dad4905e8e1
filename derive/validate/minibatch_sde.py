"""SDEs driven by measured minibatch noise (reference section 10), one object per trajectory.

The SDE is the engine's derived SDE object (:func:`derive.engine.derive_sde`), per coordinate
dS = b(S, g, t; sigma) dt + G(S, g, t; sigma) dW. :class:`NumericSDE` evaluates its drift and
diffusion numerically (SymPy's ``lambdify`` of the derived expressions, hyperparameters
substituted) with sigma a per-coordinate array, so that each coordinate i gets its own
sigma_i(x). :class:`MinibatchSDEPath` advances it by split-step Euler (auxiliary states first, x
with their new values unless the SDE lists them in ``same_step``, the time functions at the end of
each substep, positive states reflected: the scheme of the generated modules), with the noise
measured at the SDE's own current point at every substep (:class:`derive.validate.minibatch.MeasuredNoise`:
per-sample gradients, g, the low-rank factor F with F F^T = c Sigma(x) / B). Three variants:

* ``minibatch-full``: sigma_i(x)^2 = c Sigma_ii(x) / B and Brownian increments correlated across
  coordinates as the minibatch noise is, from one Gaussian draw e = F xi, xi ~ N(0, I_N) (O(N d), no
  d x d matrix). With zeta = e / sigma (standard normal per coordinate, correlations r_ij of Sigma):
  where the derived diffusion's first column is linear in sigma (the noise that enters the
  increment linearly: SGD's x, Adam's m) and any further columns are proportional to sigma^2 (the
  zeta^2 - 1 part of a second moment v), dW_1 = sqrt(h) zeta and dW_2 = sqrt(h) (zeta^2 - 1)/sqrt(2):
  per coordinate two uncorrelated unit-variance increments, as the derived G assumes, and across
  coordinates the section-9 covariances (sigma_i sigma_j r_ij for linear noise, 2 sigma_i^2
  sigma_j^2 r_ij^2 for the squares). Where the noise enters through sign (SignSGD), the
  moment-matched increment of section 9: dW_1 = sqrt(h) u, u = (-sign(g + e) - b) / sqrt(1 - b^2)
  with b the derived drift (= -E sign(g + e) under the Gaussian closure; Var sign = 1 - b^2 since
  sign^2 = 1), so G_1 u has per coordinate the derived variance and across coordinates the
  covariance of the signs, 4 [Phi2 - Phi Phi]. These are weak (moment-matched) increments: the
  first two moments are exact, the law is not Gaussian, which keeps weak order 1.
* ``minibatch-diag``: the same sigma_i(x), independent N(0, h) increments per coordinate (the
  diagonal of Sigma).
* ``isotropic``: one constant sigma^2 = tr(c Sigma(x0) / B) / d for every coordinate and step,
  independent increments (today's injected-noise model); only the full-batch gradient is needed.

The per-coordinate sigma_i(x)^2 = c Sigma_ii(x)/B is the Gaussian closure (a CLT for the batch
mean) for every SDE that needs more than the covariance (Adam's V, SignSGD's drift). A coordinate
no sample moves (Sigma_ii = 0) where the derived coefficients are 0/0 (SignSGD at g_i = 0) is held,
as the optimizer holds it (sign(0) = 0).
"""

from __future__ import annotations

import math

import numpy as np

from . import ValidationInputError, require_torch
from .minibatch import MeasuredNoise
from .torch_adapter import Problem

VARIANTS = ("minibatch-full", "minibatch-diag", "isotropic")
SDE_MINIBATCH_STREAM = 7


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValidationInputError(f"unknown SDE variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    return variant


class NumericSDE:
    """The drift and diffusion of a derived SDE as numpy functions of (states, g, t, sigma).

    ``sde``: a :class:`derive.sde.SDE`; ``values``: its hyperparameters (``sigma`` excluded: it is
    an argument). ``full_noise`` says how the ``minibatch-full`` variant correlates its Brownian
    increments across coordinates (module docstring): ``linear``, ``sign``, or None with the reason
    in ``refusal``.
    """

    def __init__(self, sde, values: dict):
        import sympy as sp

        from .. import symbols as S
        from ..points import gradf

        if sde.hessian_noise is not None or any(sp.sympify(e).has(gradf) for e in sde.drift):
            raise ValidationInputError(f"{sde.optimizer}: its SDE needs Hessian noise or another gradient point")
        self.sde = sde
        subs = {p: float(values[p.name]) for p in sde.parameters if p != S.sigma}
        missing = [p.name for p in sde.parameters if p != S.sigma and p.name not in values]
        if missing:
            raise ValidationInputError(f"{sde.optimizer}: no value for {', '.join(missing)}")
        args = (*sde.state, S.g, S.t, S.sigma)
        drift = [sde.explicit(e).subs(subs) for e in sde.drift]
        diff = [
            [sde.explicit(sde.diffusion[i, j]).subs(subs) for j in range(sde.noise_sources)]
            for i in range(len(sde.state))
        ]
        modules = ["scipy", "numpy"]
        self.drift_fns = [sp.lambdify(args, e, modules) for e in drift]
        self.diffusion_fns = [[sp.lambdify(args, e, modules) for e in row] for row in diff]
        self.names = sde.state_names
        self.positive = [bool(s.is_positive) for s in sde.state]
        self.same_step = set(sde.same_step)
        self.initial = [float(sde.initial.get(n, 0.0)) for n in self.names[1:]]
        self.sources = sde.noise_sources
        self.full_noise, self.refusal = self._full_noise_kind(diff, S.sigma, sp)

    def _full_noise_kind(self, diff, sigma, sp) -> tuple[str | None, str]:
        """``linear`` when column 1 is linear in sigma and columns 2.. are proportional to sigma^2
        (checked on the derived expressions); ``sign`` for a sign update whose only column is
        sqrt(1 - b^2) times a constant; else None and why."""
        linear = all(sp.simplify(sp.diff(row[0], sigma, 2)) == 0 for row in diff) and all(
            sp.simplify(sp.diff(e / sigma**2, sigma)) == 0 for row in diff for e in row[1:]
        )
        if linear and self.sources <= 2:
            return "linear", ""
        if self.sde.optimizer == "signsgd" and self.sources == 1 and len(self.names) == 1:
            return "sign", ""
        return None, (
            f"{self.sde.optimizer}: its diffusion is neither linear in the noise nor a sign, so no "
            "moment-matched correlated increment is implemented for minibatch-full"
        )

    def coefficients(self, state: np.ndarray, g: np.ndarray, t: float, sigma) -> tuple[list, list]:
        """([b_j], [[G_jk]]) at ``state[states, ...]``, each broadcast to g's shape."""
        args = (*state, g, t, sigma)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            b = [np.broadcast_to(f(*args), g.shape) for f in self.drift_fns]
            G = [[np.broadcast_to(f(*args), g.shape) for f in row] for row in self.diffusion_fns]
        return b, G

    def step(self, state: np.ndarray, g: np.ndarray, t: float, h: float, sigma, dW: np.ndarray, held=None) -> None:
        """One split-step Euler step of length h in place on ``state[states, ...]``; ``dW[sources, ...]``
        the Brownian increments (variance h each); ``held``: a mask of coordinates to hold where a
        coefficient is not finite (no sample moves them)."""
        old = state.copy()
        b, G = self.coefficients(old, g, t, sigma)
        for j in range(1, len(self.names)):
            state[j] = old[j] + b[j] * h + sum(G[j][k] * dW[k] for k in range(self.sources))
            if self.positive[j]:
                np.abs(state[j], out=state[j])
        if len(self.names) > 1:
            mixed = np.stack([old[j] if self.names[j] in self.same_step else state[j] for j in range(len(self.names))])
            b, G = self.coefficients(mixed, g, t, sigma)
        dx = b[0] * h + sum(G[0][k] * dW[k] for k in range(self.sources))
        if held is not None:
            dx = np.where(held & ~np.isfinite(dx), 0.0, dx)
            for j in range(1, len(self.names)):
                bad = held & ~np.isfinite(state[j])
                state[j][bad] = old[j][bad]
        state[0] = old[0] + dx


def derived_sde(optimizer: str, form: str = "full"):
    """The engine's SDE of ``optimizer`` under Gaussian noise (the closure), paper regime."""
    from ..engine import derive_sde

    return derive_sde(optimizer, "gaussian", "paper", form)


def correlated_normals(kind: str, e: np.ndarray, g: np.ndarray, sigma: np.ndarray, sources: int, drift=None):
    """The ``minibatch-full`` variant's increments per unit sqrt(h), [sources, ..., d], from Gaussian
    draws ``e[..., d]`` of the noise (module docstring): ``linear``: zeta = e / sigma, then zeta and
    (zeta^2 - 1)/sqrt(2); ``sign``: u = (-sign(g + e) - b) / sqrt(1 - b^2), b = ``drift`` (the
    derived drift of x). Coordinates with sigma = 0 (or 1 - b^2 = 0) get 0."""
    held = sigma <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "linear":
            zeta = np.where(held, 0.0, e / np.where(held, 1.0, sigma))
            out = [zeta, (zeta**2 - 1.0) / math.sqrt(2.0)][:sources]
        elif kind == "sign":
            spread = np.sqrt(np.clip(1.0 - drift**2, 0.0, None))
            ok = spread > 0
            out = [np.where(ok, (-np.sign(g + e) - drift) / np.where(ok, spread, 1.0), 0.0)]
        else:
            raise ValidationInputError(f"no correlated increment of kind {kind!r}")
    return np.stack(out)


class MinibatchSDEPath:
    """One SDE variant on every seed, noise measured at its own current point (module docstring).

    Same interface as the optimizer paths: ``evaluate()`` (full-batch loss per seed), ``advance(k)``
    (optimizer step k: ``substeps`` SDE steps of eta/substeps), ``xs`` ([seeds, d], live).
    """

    def __init__(
        self,
        problem: Problem,
        numeric: NumericSDE,
        variant: str,
        values: dict,
        x0: np.ndarray,
        seeds,
        batch: int,
        sampling: str = "replacement",
        *,
        substeps: int = 1,
        stream: int = SDE_MINIBATCH_STREAM,
    ):
        torch = require_torch()
        self.problem, self.sde, self.variant = problem, numeric, _check_variant(variant)
        if variant == "minibatch-full" and numeric.full_noise is None:
            raise ValidationInputError(numeric.refusal)
        self.eta, self.sub = float(values["eta"]), int(substeps)
        self.noise = MeasuredNoise(problem, batch, sampling)
        S, d = len(list(seeds)), problem.dim
        self.state = np.zeros((len(numeric.names), S, d))
        self.state[0] = x0[None, :]
        for j, init in enumerate(numeric.initial):
            self.state[j + 1] = init
        self.xs = self.state[0]
        self.rows = [torch.from_numpy(self.state[0, s]) for s in range(S)]
        self.rngs = [np.random.default_rng([int(s), stream, 31]) for s in seeds]
        self._grad = torch.zeros(d, dtype=torch.float64)
        self.sigma_iso = None
        if variant == "isotropic":
            at0 = self.noise.at(x0)
            self.sigma_iso = math.sqrt(float(at0.variances.sum()) / d)
        self.seconds_measuring = 0.0

    def evaluate(self) -> np.ndarray:
        torch = require_torch()
        out = np.empty(len(self.rows))
        with torch.no_grad():
            for s, row in enumerate(self.rows):
                self.problem.bind(row)
                value = float(self.problem.loss())
                out[s] = value if math.isfinite(value) else math.nan
        return out

    def _increments(self, s: int, h: float, t: float) -> tuple:
        """(g, sigma, dW[sources, d]) of seed s at its current point, and the held mask."""
        d, rng, K = self.problem.dim, self.rngs[s], self.sde.sources
        if self.variant == "isotropic":
            self.problem.loss_grad(self.rows[s], self._grad)
            return self._grad.numpy().copy(), self.sigma_iso, math.sqrt(h) * rng.standard_normal((K, d)), None
        noise = self.noise.at(self.state[0, s])
        g = noise.gradient
        var = noise.variances
        sigma = np.sqrt(var)
        held = var <= 0
        if self.variant == "minibatch-diag":
            return g, sigma, math.sqrt(h) * rng.standard_normal((K, d)), held
        e = noise.draw(rng)
        drift = None
        if self.sde.full_noise == "sign":
            drift = self.sde.coefficients(self.state[:, s], g, t, sigma)[0][0]
        dW = correlated_normals(self.sde.full_noise, e, g, sigma, K, drift)
        return g, sigma, math.sqrt(h) * dW, held

    def advance(self, k: int) -> None:
        h = self.eta / self.sub
        for i in range(self.sub):
            t = (k - 1) * self.eta + (i + 1) * h
            for s in range(self.state.shape[1]):
                g, sigma, dW, held = self._increments(s, h, t)
                view = self.state[:, s]
                self.sde.step(view, g, t, h, sigma, dW, held)
