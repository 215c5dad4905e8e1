"""The PyTorch side of the network validation: a problem (a module and its full-batch loss on a
flattened float64 parameter vector) and the real optimizers (``torch.optim``, with SignSGD and the
decoupled RMSpropW written out as the specs define them)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import ValidationInputError, require_torch
from .sdes import OPTIMIZERS


class Problem:
    """A torch module and a callable returning its full-batch loss (a scalar tensor).

    ``loss`` is called with no arguments and must compute the loss with ``module`` (whose
    parameters the experiment re-points at each trajectory's values). Use :meth:`from_data` for a
    module, input and target tensors and a loss function (cross-entropy by default), or
    :meth:`builtin` for the four built-in models.

    Minibatch work (per-sample gradients, minibatch training; :mod:`derive.validate.minibatch`)
    needs the dataset: ``data = (inputs, targets)`` (first dimension N, the samples) and
    ``batch_loss(outputs, targets)``, the mean loss of a batch, so that the full-batch loss is the
    finite sum f = (1/N) sum_n f_n with f_n = ``batch_loss`` on the batch of sample n alone
    (:meth:`from_data` and :meth:`builtin` give both; ``loss`` may then be None).
    """

    def __init__(
        self,
        module,
        loss: Callable[[], object] | None,
        name: str = "user",
        *,
        data: tuple | None = None,
        batch_loss: Callable[[object, object], object] | None = None,
    ):
        torch = require_torch()
        if not isinstance(module, torch.nn.Module):
            raise ValidationInputError(f"the model must be a torch.nn.Module, got {type(module).__name__}")
        if (data is None) != (batch_loss is None):
            raise ValidationInputError("give both the dataset (inputs, targets) and its batch_loss, or neither")
        if data is not None:
            inputs, targets = data
            if not (torch.is_tensor(inputs) and torch.is_tensor(targets)) or len(inputs) != len(targets):
                raise ValidationInputError(
                    "data must be (inputs, targets), two tensors with the same first dimension (the samples)"
                )
            if loss is None:
                loss = lambda: batch_loss(module(inputs), targets)  # noqa: E731
        if not callable(loss):
            raise ValidationInputError(
                f"the loss must be a callable returning the full-batch loss, got {type(loss).__name__}"
            )
        self.module, self.loss, self.name = module, loss, name
        self.data, self.batch_loss = data, batch_loss
        for pname, p in module.named_parameters():
            if not p.is_floating_point():
                raise ValidationInputError(
                    f"model {name}: parameter {pname} has dtype {p.dtype}; the validation "
                    "needs floating-point parameters (float32 or float64)"
                )
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise ValidationInputError(f"model {name} has no trainable parameters")
        if any(p.dtype != torch.float64 for p in self.params):
            module.to(torch.float64)  # in place: the loss callable keeps using this module
            self.params = [p for p in module.parameters() if p.requires_grad]
        self.names = [n for n, p in module.named_parameters() if p.requires_grad]  #: as functional_call names them
        self.sizes = [p.numel() for p in self.params]
        self.shapes = [p.shape for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.dim = int(self.offsets[-1])

    @classmethod
    def from_data(cls, module, inputs, targets, loss_fn=None, name: str = "user") -> Problem:
        """Full-batch ``loss_fn(module(inputs), targets)`` (default: cross-entropy, a mean over the
        batch); float inputs are cast to float64 like the module. Tensors with one first dimension
        (the samples) are kept as the dataset, so that minibatches can be drawn: ``loss_fn`` must
        then be the mean of per-sample losses."""
        torch = require_torch()
        loss_fn = loss_fn or torch.nn.functional.cross_entropy
        if torch.is_tensor(inputs) and inputs.is_floating_point():
            inputs = inputs.to(torch.float64)
        if torch.is_tensor(targets) and targets.is_floating_point():
            targets = targets.to(torch.float64)
        if torch.is_tensor(inputs) and torch.is_tensor(targets) and inputs.ndim and len(inputs) == len(targets):
            return cls(module, None, name, data=(inputs, targets), batch_loss=loss_fn)
        return cls(module, lambda: loss_fn(module(inputs), targets), name)

    @classmethod
    def builtin(cls, name: str, seed: int = 0, n_data: int | None = None) -> Problem:
        from .models import batch_loss, build, loss_function

        module, data = build(name, seed, n_data)
        return cls(
            module, loss_function(module, data), name, data=(data.inputs, data.targets), batch_loss=batch_loss(data)
        )

    @property
    def n_samples(self) -> int:
        """N, the number of samples of the dataset (an error if the problem has none)."""
        return len(self.require_data()[0])

    def require_data(self) -> tuple:
        """``(inputs, targets)``, or a one-line error saying how to give them."""
        if self.data is None:
            raise ValidationInputError(
                f"model {self.name}: minibatch gradients need the dataset; build the problem with "
                "Problem.from_data(module, inputs, targets) or Problem(module, None, data=(inputs, targets), "
                "batch_loss=...)"
            )
        return self.data

    def minibatch_loss_grad(self, flat, index, gout) -> float:
        """Mean loss of the samples ``index`` (an integer array; repeats count twice) at ``flat``; its
        gradient is written into ``gout``."""
        torch = require_torch()
        inputs, targets = self.require_data()
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        self.bind(flat)
        loss = self.batch_loss(self.module(inputs[idx]), targets[idx])
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, self.params, strict=False)
            ],
            out=gout,
        )
        return float(loss.detach())

    def initial(self) -> np.ndarray:
        """The module's current parameters, flattened (float64)."""
        torch = require_torch()
        with torch.no_grad():
            return torch.cat([p.detach().reshape(-1) for p in self.params]).numpy().astype(np.float64).copy()

    def bind(self, flat) -> None:
        """Point every parameter at its slice of the 1-d float64 tensor ``flat`` (no copy)."""
        for p, o, n, shape in zip(self.params, self.offsets[:-1], self.sizes, self.shapes, strict=False):
            p.data = flat[o : o + n].view(shape)

    def loss_grad(self, flat, gout) -> float:
        """Loss at ``flat`` (1-d float64 tensor); its gradient is written into ``gout`` (same shape)."""
        torch = require_torch()
        self.bind(flat)
        loss = self.loss()
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, self.params, strict=False)
            ],
            out=gout,
        )
        return float(loss.detach())

    def hvp(self, flat, u, out) -> None:
        """H(flat) u, the Hessian of the loss at ``flat`` times ``u`` (1-d float64 tensors), written
        into ``out``: autograd's double backward, d/dx (grad f(x) . u)."""
        torch = require_torch()
        self.bind(flat)
        grads = torch.autograd.grad(self.loss(), self.params, create_graph=True, allow_unused=True)
        dot = sum(
            (
                (g * u[o : o + n].view(g.shape)).sum()
                for g, o, n in zip(grads, self.offsets[:-1], self.sizes, strict=False)
                if g is not None
            ),
            torch.zeros((), dtype=torch.float64),
        )
        if not dot.requires_grad:  # a loss linear in the parameters: H = 0
            out.zero_()
            return
        second = torch.autograd.grad(dot, self.params, allow_unused=True)
        torch.cat(
            [
                (h if h is not None else torch.zeros_like(p)).reshape(-1)
                for h, p in zip(second, self.params, strict=False)
            ],
            out=out,
        )


class _SignSGD:
    """x <- x - eta sign(grad) (no torch.optim class exists)."""

    def __init__(self, params, lr: float):
        self.params, self.lr = list(params), lr

    def step(self):
        torch = require_torch()
        with torch.no_grad():
            for p in self.params:
                p.add_(torch.sign(p.grad), alpha=-self.lr)


class _DecoupledRMSprop:
    """RMSpropW as the spec writes it: x <- x (1 - eta theta), then torch's RMSprop step."""

    def __init__(self, params, lr, alpha, eps, theta):
        torch = require_torch()
        self.params, self.lr, self.theta = list(params), lr, theta
        self.inner = torch.optim.RMSprop(
            self.params, lr=lr, alpha=alpha, eps=eps, momentum=0.0, centered=False, weight_decay=0.0
        )

    def step(self):
        torch = require_torch()
        with torch.no_grad():
            for p in self.params:
                p.mul_(1.0 - self.lr * self.theta)
        self.inner.step()


def torch_optimizer(name: str, params, values: dict):
    """The PyTorch optimizer of the built-in ``name`` with the spec's hyperparameters ``values``."""
    torch = require_torch()
    eta = values["eta"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=eta, momentum=0.0)
    if name == "signsgd":
        return _SignSGD(params, eta)
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=eta, alpha=values["beta"], eps=values["eps"], momentum=0.0, centered=False
        )
    if name == "rmspropw":
        return _DecoupledRMSprop(params, eta, values["beta"], values["eps"], values["theta"])
    if name == "adam":
        return torch.optim.Adam(params, lr=eta, betas=(values["beta1"], values["beta2"]), eps=values["eps"])
    if name == "adamw":
        return torch.optim.AdamW(
            params, lr=eta, betas=(values["beta1"], values["beta2"]), eps=values["eps"], weight_decay=values["theta"]
        )
    from ..errors import UnknownNameError

    raise UnknownNameError("optimizer for the network validation", name, OPTIMIZERS)


#: the optimizer states of the specs in torch's state dictionaries (per parameter)
_TORCH_STATES = {
    "rmsprop": {"v": "square_avg"},
    "rmspropw": {"v": "square_avg"},
    "adam": {"m": "exp_avg", "v": "exp_avg_sq"},
    "adamw": {"m": "exp_avg", "v": "exp_avg_sq"},
}


def torch_states(name: str, opt, param) -> dict[str, np.ndarray]:
    """The spec's auxiliary states (m, v) of one parameter, read from a torch optimizer's state."""
    inner = getattr(opt, "inner", opt)  # the decoupled RMSpropW wraps torch's RMSprop
    state = inner.state[param]
    return {ours: state[theirs].detach().numpy().copy() for ours, theirs in _TORCH_STATES.get(name, {}).items()}
