"""Four small PyTorch models for the validations (tiny, so full-batch CPU runs take seconds).

* ``mlp``: 64 -> 32 -> 10, tanh (digits as vectors).
* ``cnn``: conv 3x3 (8) - ReLU - maxpool - conv 3x3 (8) - ReLU - linear (digits as 8x8 images).
* ``resnet``: a stride-2 conv stem (4x4 maps) and two residual blocks (conv-ReLU-conv + identity, no normalisation, so
  the full-batch loss is a plain function of the parameters), global average pooling, linear.
* ``transformer``: token + position embeddings (d = 16), one pre-norm block of causal single-head
  self-attention and an MLP, a linear readout to the vocabulary (next-token task).

``build(name, seed)`` returns ``(module, dataset)`` with the module's initial parameters drawn from
``torch.manual_seed(seed)``, in float64.
"""

from __future__ import annotations

import math

from . import require_torch
from .data import Dataset, digits, next_token

MODELS = ("mlp", "cnn", "resnet", "transformer")


def _nn():
    torch = require_torch()
    return torch, torch.nn


def mlp(width: int = 32):
    torch, nn = _nn()
    return nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))


def cnn(channels: int = 8):
    torch, nn = _nn()
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * 16, 10),
    )


def resnet(channels: int = 8, blocks: int = 2):
    torch, nn = _nn()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(channels, channels, 3, padding=1)
            self.c2 = nn.Conv2d(channels, channels, 3, padding=1)

        def forward(self, x):
            return torch.relu(x + self.c2(torch.relu(self.c1(x))))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, channels, 3, padding=1, stride=2)  # 8x8 -> 4x4 maps
            self.blocks = nn.Sequential(*[Block() for _ in range(blocks)])
            self.head = nn.Linear(channels, 10)

        def forward(self, x):
            h = self.blocks(torch.relu(self.stem(x)))
            return self.head(h.mean(dim=(2, 3)))

    return ResNet()


def transformer(vocab: int = 11, length: int = 12, dim: int = 16, hidden: int = 32):
    torch, nn = _nn()

    class TinyTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, dim)
            self.pos = nn.Parameter(0.1 * torch.randn(length, dim))
            self.ln1 = nn.LayerNorm(dim)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.ln2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
            self.out = nn.Linear(dim, vocab)
            self.register_buffer("mask", torch.triu(torch.ones(length, length, dtype=torch.bool), 1), persistent=False)

        def forward(self, tokens):
            n, L = tokens.shape
            h = self.tok(tokens) + self.pos[:L]
            q, k, v = self.qkv(self.ln1(h)).chunk(3, dim=-1)
            att = (q @ k.transpose(1, 2)) / math.sqrt(dim)
            att = att.masked_fill(self.mask[:L, :L], float("-inf")).softmax(dim=-1)
            h = h + self.proj(att @ v)
            h = h + self.mlp(self.ln2(h))
            return self.out(h)

    return TinyTransformer()


def build(name: str, seed: int = 0, n_data: int | None = None) -> tuple[object, Dataset]:
    """The model ``name`` (float64, initial parameters from ``seed``) and its full-batch dataset."""
    torch = require_torch()
    if name not in MODELS:
        from ..errors import UnknownNameError

        raise UnknownNameError("model", name, MODELS + ("quadratic",))
    torch.manual_seed(seed)
    if name == "transformer":
        data = next_token(n=n_data or 64, seed=seed)
        module = transformer(vocab=data.n_classes, length=data.inputs.shape[1])
    else:
        data = digits(n=n_data or (256 if name == "mlp" else 128), seed=seed, image=name != "mlp")
        module = {"mlp": mlp, "cnn": cnn, "resnet": resnet}[name]()
    return module.to(torch.float64), data


def batch_loss(data: Dataset):
    """The mean cross-entropy of a batch, ``(outputs, targets) -> loss``, for ``data``'s task.

    A next-token batch is a mean over its sequences and their (equally many) tokens, so the
    full-batch loss is the mean of the per-sequence losses: f = (1/N) sum_n f_n either way.
    """
    torch = require_torch()
    F = torch.nn.functional
    if data.task == "next_token":
        return lambda logits, targets: F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return F.cross_entropy


def loss_function(module, data: Dataset):
    """The full-batch mean cross-entropy of ``module`` on ``data`` (a callable of no arguments)."""
    mean_loss = batch_loss(data)
    return lambda: mean_loss(module(data.inputs), data.targets)
