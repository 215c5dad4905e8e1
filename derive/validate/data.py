"""Offline data for the network validations: nothing is ever downloaded.

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), scaled to
  [0, 1]; a fixed, seeded subset keeps full-batch gradients cheap on a CPU.
* ``next_token``: a next-token task the project generates itself (seeded): sequences of a noisy
  cyclic walk over a small vocabulary, token t+1 = token t + step (mod V) where each sequence has
  its own step in {1, 2, 3} and a fraction of tokens is replaced by uniform noise. The model must
  infer the step from context, which a tiny Transformer learns in a few hundred full-batch steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ValidationInputError, require_torch


@dataclass
class Dataset:
    """Full-batch tensors: inputs, integer targets, and the task (``classify`` or ``next_token``)."""

    name: str
    inputs: object  # torch.Tensor
    targets: object  # torch.Tensor (long)
    task: str
    n_classes: int


def digits(n: int = 256, seed: int = 0, image: bool = True) -> Dataset:
    """``n`` digits images (seeded subset), float64 in [0, 1]; [n, 1, 8, 8] if ``image`` else [n, 64]."""
    torch = require_torch()
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        from . import MissingExtraError

        raise MissingExtraError(
            "the digits data needs scikit-learn: pip install scikit-learn (or the nn extra)"
        ) from exc
    bunch = load_digits()
    total = bunch.images.shape[0]
    if not 1 <= n <= total:
        raise ValidationInputError(f"digits: n must be in [1, {total}], got {n}")
    idx = np.random.default_rng(seed).permutation(total)[:n]
    x = bunch.images[idx].astype(np.float64) / 16.0
    x = x[:, None, :, :] if image else x.reshape(n, 64)
    y = bunch.target[idx].astype(np.int64)
    return Dataset("digits", torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), "classify", 10)


def next_token(n: int = 64, length: int = 12, vocab: int = 11, noise: float = 0.1, seed: int = 0) -> Dataset:
    """``n`` sequences of ``length + 1`` tokens; inputs are the first ``length``, targets the next ones."""
    torch = require_torch()
    if n < 1 or length < 2 or vocab < 4 or not 0 <= noise < 1:
        raise ValidationInputError(
            f"next_token: need n >= 1, length >= 2, vocab >= 4, 0 <= noise < 1; got "
            f"n={n}, length={length}, vocab={vocab}, noise={noise}"
        )
    rng = np.random.default_rng([seed, 5])
    start = rng.integers(0, vocab, size=(n, 1))
    step = rng.integers(1, 4, size=(n, 1))
    seq = (start + step * np.arange(length + 1)[None, :]) % vocab
    flip = rng.random(seq.shape) < noise
    seq = np.where(flip, rng.integers(0, vocab, size=seq.shape), seq).astype(np.int64)
    return Dataset(
        "next_token", torch.from_numpy(seq[:, :-1].copy()), torch.from_numpy(seq[:, 1:].copy()), "next_token", vocab
    )
