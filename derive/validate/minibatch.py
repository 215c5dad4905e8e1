"""Real minibatch gradient noise, measured at a point (reference section 10).

A problem with a dataset of N samples has the finite-sum loss f = (1/N) sum_n f_n. At parameters x
(flattened, float64) the per-sample gradients G[n] = grad f_n(x) (an N x d matrix; torch.func's
``functional_call`` + ``vmap`` + ``grad``, in chunks of samples so that memory stays bounded) give

* the full-batch gradient g = (1/N) sum_n G[n];
* the centred matrix Gc = G - 1 g^T and the per-sample covariance Sigma(x) = Gc^T Gc / N (d x d,
  rank <= N - 1), which is never formed: its trace, its spectrum and tr(Sigma^2) come from the N x N
  Gram matrix K = Gc Gc^T / N (the same nonzero eigenvalues), Sigma v = Gc^T (Gc v) / N, and its
  diagonal Sigma_ii = (1/N) sum_n Gc[n, i]^2.

A minibatch of B samples gives g~ = g + e with E e = 0 and Cov e = c Sigma(x) / B, c = 1 for B
indices drawn with replacement (``replacement``, the SDE's assumption) and c = (N - B)/(N - 1) for
one batch of a shuffled epoch without replacement (``epoch``, the finite-population factor).
:class:`MeasuredNoise` is that noise as a model object: at x it gives g, the low-rank factor
F = sqrt(c / (N B)) Gc^T (d x N, F F^T = c Sigma(x) / B exactly), the per-coordinate variances
c Sigma_ii / B, and Gaussian draws e = F xi, xi ~ N(0, I_N): O(N d) per draw, no d x d matrix.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import ValidationInputError, require_torch
from .torch_adapter import Problem

SAMPLINGS = ("replacement", "epoch")
#: the Gram matrix is N x N float64: refuse beyond this many samples (2 GiB) and say what to do
MAX_GRAM_SAMPLES = 16_000


def check_batch(batch, n: int) -> int:
    """``batch`` as an int in [1, n], or a one-line error."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= n:
        raise ValidationInputError(
            f"the batch size must be an integer in [1, N = {n}] (the dataset's size), got {batch!r}"
        )
    return int(batch)


def check_sampling(sampling: str) -> str:
    if sampling not in SAMPLINGS:
        raise ValidationInputError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLINGS)}")
    return sampling


def population_factor(n: int, batch: int, sampling: str) -> float:
    """c in Cov e = c Sigma / B: 1 with replacement, (N - B)/(N - 1) for a batch without replacement."""
    check_sampling(sampling)
    if sampling == "replacement" or n == 1:
        return 1.0
    return (n - batch) / (n - 1)


@contextlib.contextmanager
def torch_threads(count: int | None = None) -> Iterator[int]:
    """Run torch on ``count`` threads (default: every core this process may use), restored after."""
    torch = require_torch()
    if not count:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield int(count)
    finally:
        torch.set_num_threads(before)


class BatchSampler:
    """Minibatch indices of one run from its own generator.

    ``replacement``: B indices drawn uniformly with replacement at every call. ``epoch``: shuffled
    epochs without replacement, B consecutive indices of a permutation per call and a fresh
    permutation when fewer than B are left (the last partial batch dropped, as ``drop_last=True``),
    so every batch is a uniform draw of B distinct samples.
    """

    def __init__(self, n: int, batch: int, sampling: str, rng: np.random.Generator):
        self.n, self.batch, self.sampling, self.rng = n, check_batch(batch, n), check_sampling(sampling), rng
        self._perm, self._pos = np.empty(0, dtype=np.int64), 0

    def __call__(self) -> np.ndarray:
        if self.sampling == "replacement":
            return self.rng.integers(0, self.n, size=self.batch)
        if self._pos + self.batch > self._perm.size:
            self._perm, self._pos = self.rng.permutation(self.n), 0
        self._pos += self.batch
        return self._perm[self._pos - self.batch : self._pos]


def per_sample_gradients(problem: Problem, x, chunk: int = 256):
    """G[n] = grad f_n(x), an N x d float64 tensor (``x`` the flattened parameters), computed
    ``chunk`` samples at a time by ``vmap(grad(f_n))`` of ``functional_call`` (f_n: the problem's
    ``batch_loss`` on sample n alone)."""
    torch = require_torch()
    from torch.func import functional_call, grad, vmap

    inputs, targets = problem.require_data()
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValidationInputError(f"chunk must be a positive integer, got {chunk!r}")
    flat = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if flat.shape != (problem.dim,):
        raise ValidationInputError(f"x must have the problem's {problem.dim} parameters, got shape {tuple(flat.shape)}")
    params = {
        name: flat[o : o + n].view(shape)
        for name, o, n, shape in zip(problem.names, problem.offsets[:-1], problem.sizes, problem.shapes, strict=True)
    }

    def sample_loss(p, xi, yi):
        return problem.batch_loss(functional_call(problem.module, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    n = len(inputs)
    out = torch.empty(n, problem.dim, dtype=torch.float64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        grads = per_sample(params, inputs[start:stop], targets[start:stop])
        torch.cat([grads[name].reshape(stop - start, -1) for name in problem.names], dim=1, out=out[start:stop])
    return out


@dataclass
class GradientSample:
    """Per-sample gradients at one point and what they say about Sigma(x) (module docstring)."""

    x: np.ndarray
    grads: object  #: G, torch.Tensor [N, d]

    def __post_init__(self):
        self.g = self.grads.mean(dim=0)  # torch [d]
        self.centred = self.grads - self.g  # Gc, torch [N, d]
        self._eig = None

    @classmethod
    def at(cls, problem: Problem, x, chunk: int = 256) -> GradientSample:
        return cls(np.asarray(x, dtype=np.float64).copy(), per_sample_gradients(problem, x, chunk))

    @property
    def n(self) -> int:
        return int(self.grads.shape[0])

    @property
    def dim(self) -> int:
        return int(self.grads.shape[1])

    @property
    def gradient(self) -> np.ndarray:
        """g, the full-batch gradient (the mean of the per-sample gradients)."""
        return self.g.numpy().copy()

    @property
    def variances(self) -> np.ndarray:
        """Sigma_ii = (1/N) sum_n Gc[n, i]^2, per coordinate."""
        return (self.centred.square().sum(dim=0) / self.n).numpy()

    @property
    def trace(self) -> float:
        """tr Sigma = (1/N) sum_{n, i} Gc[n, i]^2."""
        return float(self.centred.square().sum()) / self.n

    def apply(self, v) -> np.ndarray:
        """Sigma v = Gc^T (Gc v) / N for a vector (or the columns of a d x k array) ``v``."""
        torch = require_torch()
        v = torch.as_tensor(np.asarray(v, dtype=np.float64))
        return (self.centred.T @ (self.centred @ v) / self.n).numpy()

    def gram(self) -> np.ndarray:
        """K = Gc Gc^T / N (N x N): its eigenvalues are the nonzero eigenvalues of Sigma(x)."""
        if self.n > MAX_GRAM_SAMPLES:
            raise ValidationInputError(
                f"the Gram matrix of N = {self.n} samples is too large (at most {MAX_GRAM_SAMPLES}); "
                "measure on a random subset of the samples (an unbiased, noisier Sigma)"
            )
        return (self.centred @ self.centred.T / self.n).numpy()

    def _eigen(self) -> tuple[np.ndarray, np.ndarray]:
        """(lambda, W): the eigenpairs of K above the numerical-rank tolerance N eps lambda_max,
        largest first (at most N - 1: the rows of Gc sum to 0)."""
        if self._eig is None:
            lam, w = np.linalg.eigh(self.gram())
            lam, w = lam[::-1], w[:, ::-1]
            keep = lam > self.n * np.finfo(float).eps * max(lam[0], 0.0) if lam.size else np.zeros(0, dtype=bool)
            self._eig = (lam[keep].copy(), w[:, keep].copy())
        return self._eig

    def eigenvalues(self) -> np.ndarray:
        """The nonzero eigenvalues of Sigma(x), largest first: those of K (:meth:`_eigen`)."""
        return self._eigen()[0]

    def top_directions(self, k: int) -> np.ndarray:
        """U (d x k'), the unit eigenvectors of Sigma(x) of its k' = min(k, rank) largest eigenvalues:
        K w = lambda w gives Sigma (Gc^T w) = lambda Gc^T w and |Gc^T w|^2 = N lambda, so
        u = Gc^T w / sqrt(N lambda) (O(N d k), no d x d matrix)."""
        torch = require_torch()
        lam, w = self._eigen()
        lam, w = lam[:k], w[:, :k]
        u = self.centred.T @ torch.from_numpy(w / np.sqrt(self.n * lam))
        return u.numpy()

    def effective_rank(self) -> float:
        """The participation ratio (tr Sigma)^2 / tr(Sigma^2) = (sum lambda)^2 / sum lambda^2.

        It is k for k equal eigenvalues and 1 for one direction, needs no threshold (eigenvalues at
        rounding level add nothing), and is the quantity that governs a Gaussian noise vector's
        energy: Var|e|^2 / (E|e|^2)^2 = 2 tr(Sigma^2) / (tr Sigma)^2 = 2 / rank, i.e. the noise
        behaves like that many equal independent directions. :meth:`entropy_rank` is the other
        common definition (Roy-Vetterli), more sensitive to the tail of small eigenvalues.
        """
        lam = self.eigenvalues()
        return float(lam.sum() ** 2 / np.square(lam).sum()) if lam.sum() > 0 else 0.0

    def entropy_rank(self) -> float:
        """exp(-sum p log p) with p = lambda / sum lambda (Roy and Vetterli's effective rank)."""
        lam = self.eigenvalues()
        if lam.sum() <= 0:
            return 0.0
        p = lam[lam > 0] / lam.sum()
        return float(math.exp(-np.sum(p * np.log(p))))

    def variance_spread(self) -> dict[str, float]:
        """The spread of the per-coordinate variances Sigma_ii: quantiles, the coefficient of
        variation, the share of coordinates with zero variance (a gradient that no sample moves)."""
        v = self.variances
        q = np.quantile(v, [0.0, 0.1, 0.5, 0.9, 1.0])
        return {
            "min": float(q[0]),
            "q10": float(q[1]),
            "median": float(q[2]),
            "q90": float(q[3]),
            "max": float(q[4]),
            "cv": float(v.std() / v.mean()) if v.mean() > 0 else 0.0,
            "zero_share": float(np.mean(v <= 1e-30 * max(v.max(), 1e-300))),
        }


@dataclass
class MinibatchNoise:
    """The minibatch noise at one point: g~ = g + e, Cov e = c Sigma(x) / B (module docstring)."""

    sample: GradientSample
    batch: int
    sampling: str

    def __post_init__(self):
        self.factor_scale = math.sqrt(
            population_factor(self.sample.n, self.batch, self.sampling) / (self.sample.n * self.batch)
        )

    @property
    def gradient(self) -> np.ndarray:
        return self.sample.gradient

    @property
    def factor(self):
        """F = sqrt(c / (N B)) Gc^T, a d x N torch tensor with F F^T = c Sigma(x) / B."""
        return self.factor_scale * self.sample.centred.T

    @property
    def variances(self) -> np.ndarray:
        """c Sigma_ii / B, the variance of each coordinate of e."""
        return self.factor_scale**2 * self.sample.n * self.sample.variances

    def draw(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """e = F xi with xi ~ N(0, I_N) from ``rng``: shape [d], or [size, d] for ``size`` draws."""
        torch = require_torch()
        xi = rng.standard_normal((1 if size is None else size, self.sample.n))
        e = self.factor_scale * (torch.from_numpy(xi) @ self.sample.centred)
        return e.numpy()[0] if size is None else e.numpy()


class MeasuredNoise:
    """Minibatch noise as a model object: ``noise.at(x)`` measures it at x (per-sample gradients).

    ``batch`` B and ``sampling`` (``replacement`` or ``epoch``) fix the covariance c Sigma(x) / B;
    ``chunk`` bounds the per-sample gradient work's memory (samples per vmap call).
    """

    def __init__(self, problem: Problem, batch: int, sampling: str = "replacement", chunk: int = 256):
        self.problem = problem
        self.batch = check_batch(batch, problem.n_samples)
        self.sampling = check_sampling(sampling)
        self.chunk = chunk

    def at(self, x) -> MinibatchNoise:
        return MinibatchNoise(GradientSample.at(self.problem, x, self.chunk), self.batch, self.sampling)
