"""Minibatch training runs: the real optimizer on minibatch gradients, and SVAG (reference section 10).

* :class:`MinibatchOptimizerPath`: the real ``torch.optim`` optimizer (SGD, SignSGD as the
  project's one-line update, RMSprop(W), Adam(W): :func:`derive.validate.torch_adapter.torch_optimizer`)
  on every seed, stepping on the gradient of a minibatch of B samples: ``replacement`` (B indices
  drawn with replacement at every step, the SDE's assumption) or ``epoch`` (shuffled epochs without
  replacement, as people train; :class:`derive.validate.minibatch.BatchSampler`). Run i draws its
  batches from its own generator (seed i, stream ``MINIBATCH_STREAM``): reproducible, and
  independent of the other runs and of how many there are.
* :class:`SVAGPath` (Li, Malladi, Arora 2021): SGD with step eta / l on
  a grad_B1 + b grad_B2 of two independent minibatches, a = (1 + sqrt(2l - 1))/2,
  b = (1 - sqrt(2l - 1))/2 (a + b = 1, a^2 + b^2 = l): the noise per unit time is eta Sigma / B as
  for SGD, and as l grows the chain converges weakly to SGD's SDE with the minibatch Sigma(x)/B.
  Horizons are matched in time t = k eta: one ``advance`` takes l SVAG steps of eta / l, so the
  recorded step k of SVAG is at the time of SGD's step k (k l SVAG steps).

Both are :class:`derive.validate.steppers.TorchOptimizerPath` objects (the same ``evaluate`` /
``advance(k)`` interface); :func:`record_path` runs any such path and records the full-batch loss
and the parameters at chosen steps, :func:`minibatch_training` builds and runs one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import ValidationInputError, require_torch
from .minibatch import BatchSampler, check_batch, check_sampling, torch_threads
from .results import Trajectory
from .steppers import TorchOptimizerPath
from .torch_adapter import Problem

MINIBATCH_STREAM, SVAG_STREAM = 5, 6


class MinibatchOptimizerPath(TorchOptimizerPath):
    """The real optimizer per seed on minibatch gradients (module docstring)."""

    def __init__(
        self,
        problem: Problem,
        optimizer: str,
        values: dict,
        x0: np.ndarray,
        seeds,
        batch: int,
        sampling: str = "replacement",
        stream: int = MINIBATCH_STREAM,
    ):
        super().__init__(problem, optimizer, values, x0, seeds, sample=None, stream=stream)
        n = problem.n_samples
        self.batch, self.sampling = check_batch(batch, n), check_sampling(sampling)
        self.samplers = [BatchSampler(n, self.batch, sampling, rng) for rng in self.rngs]

    def evaluate(self) -> np.ndarray:
        """The full-batch loss of every seed (NaN where it is not finite)."""
        torch = require_torch()
        out = np.empty(len(self.rows))
        with torch.no_grad():
            for s, row in enumerate(self.rows):
                self.problem.bind(row)
                value = float(self.problem.loss())
                out[s] = value if math.isfinite(value) else math.nan
        return out

    def _minibatch_gradient(self, s: int, out) -> None:
        self.problem.minibatch_loss_grad(self.rows[s], self.samplers[s](), out)

    def advance(self, k: int) -> None:
        for s, (param, opt) in enumerate(zip(self.params, self.opts, strict=True)):
            self._minibatch_gradient(s, self.grad[s])
            param.grad = self.grad[s]
            opt.step()


class SVAGPath(MinibatchOptimizerPath):
    """SGD by SVAG with parameter ``l`` (module docstring); ``values["eta"]`` is the SDE's eta."""

    def __init__(
        self,
        problem: Problem,
        values: dict,
        x0: np.ndarray,
        seeds,
        batch: int,
        l: int,  # noqa: E741 - the paper's name
        sampling: str = "replacement",
        stream: int = SVAG_STREAM,
    ):
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or l < 1:
            raise ValidationInputError(f"SVAG's l must be an integer >= 1, got {l!r}")
        self.l = int(l)
        super().__init__(problem, "sgd", dict(values, eta=values["eta"] / self.l), x0, seeds, batch, sampling, stream)
        root = math.sqrt(2 * self.l - 1)
        self.a, self.b = (1 + root) / 2, (1 - root) / 2
        self._second = self.grad.clone()

    def advance(self, k: int) -> None:
        for s, (param, opt) in enumerate(zip(self.params, self.opts, strict=True)):
            for _ in range(self.l):
                self._minibatch_gradient(s, self.grad[s])
                self._minibatch_gradient(s, self._second[s])
                self.grad[s].mul_(self.a).add_(self._second[s], alpha=self.b)
                param.grad = self.grad[s]
                opt.step()


@dataclass
class MinibatchRun:
    """One simulator's recorded runs: the full-batch loss (``trajectory.loss[run, j]``) and the
    parameters (``params[run, j, d]``) at the recorded steps ``record[j]``."""

    trajectory: Trajectory
    params: np.ndarray
    record: np.ndarray


def record_steps(steps: int, record=None) -> np.ndarray:
    """The recorded steps: ``record`` (sorted, unique, within [0, steps]) or every step."""
    if record is None:
        return np.arange(steps + 1)
    rec = np.unique(np.asarray(record, dtype=np.int64))
    if rec.size == 0 or rec[0] < 0 or rec[-1] > steps:
        raise ValidationInputError(f"recorded steps must lie in [0, {steps}], got {list(np.asarray(record))}")
    return rec


def record_path(
    path: TorchOptimizerPath,
    label: str,
    description: str,
    steps: int,
    seeds,
    record=None,
    progress: Callable[[int], None] | None = None,
) -> MinibatchRun:
    """Run ``path`` for ``steps`` steps, recording the loss and parameters at ``record``; a run
    whose loss turns non-finite stops every run there (step and seed kept, NaN after)."""
    rec = record_steps(steps, record)
    seeds = list(seeds)
    loss = np.full((len(seeds), rec.size), np.nan)
    params = np.full((len(seeds), rec.size, path.xs.shape[1]), np.nan)
    diverged, started, j = None, time.perf_counter(), 0
    for k in range(rec[-1] + 1):
        if k == rec[j]:
            values = path.evaluate()
            if not np.all(np.isfinite(values)):
                diverged = {"step": k, "seed": seeds[int(np.argmin(np.isfinite(values)))]}
                break
            loss[:, j], params[:, j] = values, path.xs
            j += 1
            if j == rec.size:
                break
        path.advance(k + 1)
        if not np.all(np.isfinite(path.xs)):
            diverged = {"step": k + 1, "seed": seeds[int(np.argmin(np.isfinite(path.xs).all(axis=1)))]}
            break
        if progress is not None:
            progress(1)
    trajectory = Trajectory(label, description, loss, diverged, time.perf_counter() - started)
    return MinibatchRun(trajectory, params, rec)


def minibatch_training(
    problem: Problem,
    optimizer: str,
    *,
    batch: int,
    eta: float,
    steps: int,
    seeds=(0,),
    sampling: str = "replacement",
    hyper: dict | None = None,
    record=None,
    svag: int | None = None,
    x0: np.ndarray | None = None,
    threads: int | None = 1,
    progress: Callable[[int], None] | None = None,
) -> MinibatchRun:
    """Train ``problem`` from ``x0`` (default: its current parameters) with the real ``optimizer``
    on minibatches of ``batch`` samples for ``steps`` steps on every seed; ``svag=l`` runs SGD by
    SVAG instead (optimizer must be ``sgd``; ``steps`` counts units of eta, l SVAG steps each).
    ``threads``: torch threads (1: the models are tiny and runs are sequential, as in validate).
    ``progress(1)`` is called after every step."""
    from ..simulate import SimulationInputError, hyperparameters
    from .sdes import OPTIMIZERS

    optimizer = optimizer.lower()
    if optimizer not in OPTIMIZERS:
        from ..errors import UnknownNameError

        raise UnknownNameError("optimizer for minibatch training", optimizer, OPTIMIZERS)
    if svag is not None and optimizer != "sgd":
        raise ValidationInputError(f"SVAG is defined for sgd here, got {optimizer!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValidationInputError(f"steps must be an integer >= 0, got {steps!r}")
    seeds = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(int(s) < 0 for s in seeds):
        raise ValidationInputError(f"seeds must be distinct non-negative integers, got {seeds!r}")
    try:
        values = hyperparameters(optimizer, eta, 1.0, hyper)  # sigma: a placeholder, the noise is the batch's
    except SimulationInputError as exc:
        raise ValidationInputError(str(exc)) from None
    x0 = problem.initial() if x0 is None else np.asarray(x0, dtype=np.float64)
    with torch_threads(threads):
        if svag is None:
            path = MinibatchOptimizerPath(problem, optimizer, values, x0, seeds, batch, sampling)
            label, description = optimizer, f"torch {optimizer}, minibatches of {batch} ({sampling})"
        else:
            path = SVAGPath(problem, values, x0, seeds, batch, svag, sampling)
            label, description = f"svag-{svag}", f"SGD by SVAG, l = {svag}, minibatches of {batch} ({sampling})"
        try:
            return record_path(path, label, description, steps, seeds, record, progress)
        finally:
            problem.bind(require_torch().from_numpy(x0.copy()))  # the module's parameters back at x0
