"""The simulators of the network validation, one object per trajectory, all with one interface.

``evaluate()`` computes the loss of every seed at the current parameters (and keeps the gradients
it needs) and returns it; ``advance(k)`` takes optimizer step k (1 on the first step). The
experiment loop (:mod:`derive.validate.experiment`) only calls these two.

* :class:`TorchOptimizerPath`: the real ``torch.optim`` optimizer per seed, fed the full-batch
  gradient + sigma zeta, zeta from the stream (seed, ``stream``).
* :class:`SDEPath`: an SDE advanced by the generated ``sde_step`` on ``state[states, seeds, d]``;
  ``substeps`` SDE steps of dt = eta / substeps per optimizer step (the gradient recomputed by
  autograd at every substep, gamma_j at every substep's end), scheme ``euler`` or ``weak2`` (a fine
  run of 2 substeps and a coarse run of substeps on the pairwise sums of the fine run's normals;
  its loss is 2 L_fine - L_coarse). ``coupled``: the SDE re-draws the optimizer's zetas (the same
  stream) and its first Brownian motion takes COUPLING_SIGN sqrt(eta) n(zeta) over each optimizer
  step (n = Phi^{-1}(F(zeta))), filled in by a Brownian bridge over the substeps; its other Brownian
  motions are independent. An order-2 SDE (module ``HVP``) takes one Hessian-vector product per
  substep: u from the module's ``hvp_vector``, H u by autograd's double backward
  (:meth:`Problem.hvp`), then ``sde_step(..., hv)`` (docs/codegen.md, "Order-2 SDEs").

The model's parameters are re-pointed at the row being evaluated (``Problem.bind``), and gradients
are written by ``torch.cat(out=)`` straight into the arrays the kernel reads: no parameter copy per
step.
"""

from __future__ import annotations

import math

import numpy as np

from ..runtime.schemes import SCHEMES
from . import require_torch
from .samplers import Sampler, coupled_normal
from .torch_adapter import Problem, torch_optimizer, torch_states

OPTIMIZER_STREAM, REPLICATE_STREAM, SDE_STREAM, BURN_STREAM = 2, 3, 1, 4


def _rngs(seeds, stream: int, salt: int) -> list[np.random.Generator]:
    return [np.random.default_rng([s, stream, salt]) for s in seeds]


class TorchOptimizerPath:
    """The real optimizer on every seed (see the module docstring)."""

    def __init__(
        self,
        problem: Problem,
        optimizer: str,
        values: dict,
        x0: np.ndarray,
        seeds,
        sample: Sampler,
        stream: int = OPTIMIZER_STREAM,
        burn_in: int = 0,
    ):
        torch = require_torch()
        self.problem, self.values, self.sample, self.name = problem, values, sample, optimizer
        self.xs = np.repeat(x0[None, :], len(seeds), axis=0)
        self.params = [torch.nn.Parameter(torch.from_numpy(row)) for row in self.xs]
        self.opts = [torch_optimizer(optimizer, [p], values) for p in self.params]
        self.rows = [torch.from_numpy(row) for row in self.xs]
        self.rngs = _rngs(seeds, stream, 17)
        self.grad = torch.zeros(len(seeds), problem.dim, dtype=torch.float64)
        if burn_in:
            self._burn(burn_in, x0, seeds)

    def _burn(self, steps: int, x0: np.ndarray, seeds) -> None:
        """``steps`` optimizer steps with x held at x0 (noise from the stream (seed, BURN_STREAM)):
        the auxiliary states burned in, the step count at ``steps``."""
        torch = require_torch()
        rngs = _rngs(seeds, BURN_STREAM, 17)
        self.evaluate()  # the gradient at x0, the same at every burn-in step
        for s, (param, opt) in enumerate(zip(self.params, self.opts, strict=False)):
            for _ in range(steps):
                param.grad = self.grad[s] + self.values["sigma"] * torch.from_numpy(
                    self.sample(rngs[s], self.problem.dim)
                )
                opt.step()
                with torch.no_grad():
                    param.copy_(torch.from_numpy(x0))

    def states(self, names) -> np.ndarray:
        """The states ``names`` (x first) of every seed, [states, seeds, d], from the optimizers."""
        per_seed = [torch_states(self.name, opt, param) for opt, param in zip(self.opts, self.params, strict=False)]
        return np.stack([self.xs] + [np.stack([st[n] for st in per_seed]) for n in names[1:]])

    def evaluate(self) -> np.ndarray:
        return _losses(self.problem, self.rows, self.grad)

    def advance(self, k: int) -> None:
        torch = require_torch()
        for s, (param, opt) in enumerate(zip(self.params, self.opts, strict=False)):
            zeta = torch.from_numpy(self.sample(self.rngs[s], self.problem.dim))
            param.grad = self.grad[s] + self.values["sigma"] * zeta
            opt.step()


class SDEPath:
    """An SDE by the generated ``sde_step`` (see the module docstring)."""

    def __init__(
        self,
        problem: Problem,
        module,
        values: dict,
        x0: np.ndarray,
        seeds,
        *,
        scheme: str = "euler",
        substeps: int = 1,
        coupled: bool = True,
        sample: Sampler | None = None,
        noise: str = "gaussian",
        nu=None,
        start: np.ndarray | None = None,
        k0: int = 0,
    ):
        torch = require_torch()
        self.problem, self.module, self.seeds = problem, module, list(seeds)
        self.eta, self.sub, self.k0 = float(values["eta"]), int(substeps), int(k0)
        self.scheme = SCHEMES[scheme]
        self.weak2 = self.scheme.coarse
        self.p = np.array([values[n] for n in module.SDE_PARAMS], dtype=np.float64)
        S, d = len(self.seeds), problem.dim
        runs = self.scheme.runs
        self.state = np.zeros((runs, len(module.STATE), S, d))
        self.state[:, 0] = x0[None, :]
        for j, init in enumerate(module.SDE_INITIAL):
            self.state[:, j + 1] = init
        if start is not None:  # burned-in states [states, seeds, d]
            self.state[:] = start[None]
        self.grad = np.zeros((runs, S, d))
        self._grad_t = torch.from_numpy(self.grad)
        self.hvp = bool(getattr(module, "HVP", False))
        if self.hvp:  # u and H u of the order-2 drift, per seed
            self.u, self.hv = np.zeros((S, d)), np.zeros((S, d))
            self._u_t, self._hv_t = torch.from_numpy(self.u), torch.from_numpy(self.hv)
        self.rows = [[torch.from_numpy(self.state[r, 0, s]) for s in range(S)] for r in range(runs)]
        self.rngs = _rngs(self.seeds, SDE_STREAM, 29)
        self.coupled = coupled
        if coupled:
            self.zetas, self.sample = _rngs(self.seeds, OPTIMIZER_STREAM, 17), sample  # the optimizer's draws, again
            self.normal_of = coupled_normal(noise, nu)
            self.sign = float(module.COUPLING_SIGN)

    def evaluate(self) -> np.ndarray:
        losses = [_losses(self.problem, rows, self._grad_t[r]) for r, rows in enumerate(self.rows)]
        return self.scheme.combine(*losses)

    def _normals(self) -> np.ndarray:
        """xi[K, M, S, d] for the M substeps of the fine (or only) run; source 1 bridged if coupled."""
        K, M, d = self.module.NOISE_SOURCES, self.scheme.substeps(self.sub)[0], self.problem.dim
        xi = np.stack([rng.standard_normal((K, M, d)) for rng in self.rngs], axis=2)
        if self.coupled:
            n = np.stack([self.normal_of(self.sample(rng, d)) for rng in self.zetas])  # [S, d]
            xi[0] += self.sign * n[None] / math.sqrt(M) - xi[0].mean(axis=0, keepdims=True)
        return xi

    def advance(self, k: int) -> None:
        xi = self._normals()
        M = xi.shape[1]
        t0 = (self.k0 + k - 1) * self.eta
        self._run(0, M, t0, lambda i: xi[:, i])
        if self.weak2:
            self._run(1, self.sub, t0, lambda i: (xi[:, 2 * i] + xi[:, 2 * i + 1]) / math.sqrt(2.0))

    def _run(self, r: int, count: int, t0: float, normals) -> None:
        h = self.eta / count
        for i in range(count):
            if i > 0:  # the gradient at the substep's start (evaluate() gave the first)
                _losses(self.problem, self.rows[r], self._grad_t[r])
            xi, t = np.ascontiguousarray(normals(i)), t0 + (i + 1) * h
            if self.hvp:
                self.module.hvp_vector(self.state[r], self.grad[r], t, h, self.p, self.u)
                for s, row in enumerate(self.rows[r]):
                    self.problem.hvp(row, self._u_t[s], self._hv_t[s])
                self.module.sde_step(self.state[r], self.grad[r], xi, t, h, self.p, self.hv)
            else:
                self.module.sde_step(self.state[r], self.grad[r], xi, t, h, self.p)


def _losses(problem: Problem, rows, grad_out) -> np.ndarray:
    """Loss at every row, gradients into grad_out[row]; NaN where the loss or gradient is not finite."""
    torch = require_torch()
    out = np.empty(len(rows))
    for s, row in enumerate(rows):
        value = problem.loss_grad(row, grad_out[s])
        out[s] = value if math.isfinite(value) and bool(torch.isfinite(grad_out[s]).all()) else math.nan
    return out
