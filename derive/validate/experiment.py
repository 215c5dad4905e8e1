"""The validation experiment of reference section 7 on a PyTorch model.

Protocol, per seed:

* the **optimizer** is the real ``torch.optim`` optimizer (SignSGD: a one-line custom update) on
  the flattened float64 parameter vector; at each step it sees the full-batch gradient plus
  ``sigma * zeta`` with zeta drawn from the noise law (independent per coordinate and step);
* each **SDE** (paper/full, paper/published and, for RMSprop(W) and Adam(W), the noise-dominated
  SDE of Malladi et al.) is integrated by Euler-Maruyama with dt = eta, one SDE step per optimizer
  step, by the generated ``sde_step`` kernel on the same flattened parameter vector; its drift sees
  the full-batch gradient that torch autograd computes at the SDE's own current parameters;
* everything starts from the same initial parameters; seeds differ only in the noise.

Memory: every trajectory keeps one float64 array ``state[n_states, seeds, d]``; the model's
parameters are re-pointed (``param.data = view``) at the row being evaluated, so no parameter copy is
made per step; the gradient is written by one ``torch.cat(..., out=)`` straight into the array the
kernel reads. The only per-step allocation is the noise draw.

A trajectory whose loss or parameters become non-finite stops there: the step and seed are
recorded, its losses after that step are NaN, and every other trajectory runs on (partial results
are kept and the fidelity uses the steps before the divergence).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import ValidationInputError, require_torch
from .fidelity import Fidelity, fidelity

#: which SDEs are compared by default: (label, regime, form)
SDE_KINDS = (("full", "paper", "full"), ("published", "paper", "published"),
             ("noise-dominated", "noise-dominated", "published"))
#: optimizers with a noise-dominated SDE in the comparison (reference: RMSprop and Adam)
NOISE_DOMINATED = ("rmsprop", "rmspropw", "adam", "adamw")
OPTIMIZERS = ("sgd", "signsgd", "rmsprop", "rmspropw", "adam", "adamw")


# ---- noise draws of the optimizer --------------------------------------------------------------
def zeta_sampler(noise: str, nu=None) -> Callable[[np.random.Generator, int], np.ndarray]:
    """A sampler of the standardized law ``noise`` (the reference's table: t with nu dof, Laplace
    exp(-|z|)/2, uniform on [-1, 1], ...)."""
    name = noise.lower()
    if name == "gaussian":
        return lambda rng, d: rng.standard_normal(d)
    if name == "cauchy":
        return lambda rng, d: rng.standard_cauchy(d)
    if name == "laplace":
        return lambda rng, d: rng.laplace(0.0, 1.0, d)
    if name == "uniform":
        return lambda rng, d: rng.uniform(-1.0, 1.0, d)
    if name in ("student-t", "studentt", "t"):
        try:
            dof = float(nu)
        except (TypeError, ValueError):
            raise ValidationInputError(f"student-t noise needs a numeric --nu, got {nu!r}") from None
        if not dof > 0:
            raise ValidationInputError(f"student-t nu must be > 0, got {nu}")
        return lambda rng, d: rng.standard_t(dof, d)
    raise ValidationInputError(f"the network validation samples gaussian, student-t, cauchy, laplace or uniform "
                               f"noise; got {noise!r}")


# ---- the problem: a module and its full-batch loss ---------------------------------------------
class Problem:
    """A torch module and a callable returning its full-batch loss (a scalar tensor).

    ``loss`` is called with no arguments and must compute the loss with ``module`` (whose
    parameters the experiment re-points at each trajectory's values). Use :meth:`from_data` for a
    module, input and target tensors and a loss function (cross-entropy by default), or
    :meth:`builtin` for the four built-in models.
    """

    def __init__(self, module, loss: Callable[[], object], name: str = "user"):
        torch = require_torch()
        if not isinstance(module, torch.nn.Module):
            raise ValidationInputError(f"the model must be a torch.nn.Module, got {type(module).__name__}")
        if not callable(loss):
            raise ValidationInputError(f"the loss must be a callable returning the full-batch loss, got {type(loss).__name__}")
        self.module, self.loss, self.name = module, loss, name
        for pname, p in module.named_parameters():
            if not p.is_floating_point():
                raise ValidationInputError(f"model {name}: parameter {pname} has dtype {p.dtype}; the validation "
                                           "needs floating-point parameters (float32 or float64)")
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise ValidationInputError(f"model {name} has no trainable parameters")
        if any(p.dtype != torch.float64 for p in self.params):
            module.to(torch.float64)  # in place: the loss callable keeps using this module
            self.params = [p for p in module.parameters() if p.requires_grad]
        self.sizes = [p.numel() for p in self.params]
        self.shapes = [p.shape for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.dim = int(self.offsets[-1])

    @classmethod
    def from_data(cls, module, inputs, targets, loss_fn=None, name: str = "user") -> "Problem":
        """Full-batch ``loss_fn(module(inputs), targets)`` (default: cross-entropy); float inputs
        are cast to float64 like the module."""
        torch = require_torch()
        loss_fn = loss_fn or torch.nn.functional.cross_entropy
        if torch.is_tensor(inputs) and inputs.is_floating_point():
            inputs = inputs.to(torch.float64)
        if torch.is_tensor(targets) and targets.is_floating_point():
            targets = targets.to(torch.float64)
        return cls(module, lambda: loss_fn(module(inputs), targets), name)

    @classmethod
    def builtin(cls, name: str, seed: int = 0, n_data: int | None = None) -> "Problem":
        from .models import build, loss_function

        module, data = build(name, seed, n_data)
        return cls(module, loss_function(module, data), name)

    def initial(self) -> np.ndarray:
        """The module's current parameters, flattened (float64)."""
        torch = require_torch()
        with torch.no_grad():
            return torch.cat([p.detach().reshape(-1) for p in self.params]).numpy().astype(np.float64).copy()

    def bind(self, flat) -> None:
        """Point every parameter at its slice of the 1-d float64 tensor ``flat`` (no copy)."""
        for p, o, n, shape in zip(self.params, self.offsets[:-1], self.sizes, self.shapes):
            p.data = flat[o:o + n].view(shape)

    def loss_grad(self, flat, gout) -> float:
        """Loss at ``flat`` (1-d float64 tensor); its gradient is written into ``gout`` (same shape)."""
        torch = require_torch()
        self.bind(flat)
        loss = self.loss()
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, self.params)],
                  out=gout)
        return float(loss.detach())


# ---- the real optimizers -----------------------------------------------------------------------
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
        self.inner = torch.optim.RMSprop(self.params, lr=lr, alpha=alpha, eps=eps, momentum=0.0, centered=False,
                                         weight_decay=0.0)

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
        return torch.optim.RMSprop(params, lr=eta, alpha=values["beta"], eps=values["eps"], momentum=0.0, centered=False)
    if name == "rmspropw":
        return _DecoupledRMSprop(params, eta, values["beta"], values["eps"], values["theta"])
    if name == "adam":
        return torch.optim.Adam(params, lr=eta, betas=(values["beta1"], values["beta2"]), eps=values["eps"])
    if name == "adamw":
        return torch.optim.AdamW(params, lr=eta, betas=(values["beta1"], values["beta2"]), eps=values["eps"],
                                 weight_decay=values["theta"])
    from ..errors import UnknownNameError

    raise UnknownNameError("optimizer for the network validation", name, OPTIMIZERS)


# ---- results -----------------------------------------------------------------------------------
@dataclass
class Trajectory:
    """Loss of one simulator at every step (``loss[seed, step]``, NaN after a divergence)."""

    label: str
    description: str
    loss: np.ndarray
    diverged: dict | None = None  #: {"step": k, "seed": s} of the first non-finite value
    seconds: float = 0.0

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return self.loss.mean(axis=0)

    @property
    def se(self) -> np.ndarray:
        n = self.loss.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):
            return self.loss.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(self.loss.shape[1])


@dataclass
class Result:
    """Everything one validation run measured; ``fidelity[label]`` for each SDE."""

    model: str
    optimizer: str
    noise: str
    eta: float
    sigma: float
    steps: int
    seeds: list[int]
    hyper: dict
    dim: int
    trajectories: dict[str, Trajectory]
    fidelity: dict[str, Fidelity] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    record: np.ndarray | None = None  #: recorded step numbers (default: every step)
    unit: str = "seeds"  #: what the bands and the bootstrap run over (seeds, or paths on a quadratic)

    @property
    def step_numbers(self) -> np.ndarray:
        return np.arange(self.steps + 1) if self.record is None else np.asarray(self.record)

    def table(self) -> str:
        """The fidelity table (markdown): one row per SDE, the optimizer replicate as the floor."""
        lines = ["| compared with the optimizer | fidelity (mean relative gap) | 95% bootstrap interval | final mean loss |",
                 "|---|---|---|---|"]
        ref = self.trajectories["optimizer"]
        lines.append(f"| optimizer ({ref.description}) | - | - | {_fmt(ref.mean[-1])} |")
        for label, fid in self.fidelity.items():
            t = self.trajectories[label]
            name = f"{label} ({t.description})" + (" DIVERGED" if t.diverged else "")
            ci = "n/a" if not math.isfinite(fid.low) else f"[{fid.low:.4f}, {fid.high:.4f}]"
            val = "n/a" if not math.isfinite(fid.value) else f"{fid.value:.4f}"
            lines.append(f"| {name} | {val} | {ci} | {_fmt(t.mean[-1])} |")
        return "\n".join(lines)

    def to_json(self) -> dict:
        def clean(a):
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]

        return {
            "model": self.model, "unit": self.unit, "recorded_steps": [int(k) for k in self.step_numbers],
            "optimizer": self.optimizer, "noise": self.noise, "eta": self.eta,
            "sigma": self.sigma, "steps": self.steps, "seeds": list(self.seeds), "hyper": self.hyper,
            "parameters": self.dim, "seconds": round(self.seconds, 2), "notes": self.notes,
            "fidelity": {k: v.to_json() for k, v in self.fidelity.items()},
            "trajectories": {k: {"description": t.description, "diverged": t.diverged, "seconds": round(t.seconds, 2),
                                 "mean_loss": clean(t.mean), "se_loss": clean(t.se)}
                             for k, t in self.trajectories.items()},
        }


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"


def _same_sde(optimizer: str, noise: str, nu, a: tuple[str, str], b: tuple[str, str]) -> bool:
    from ..engine import derive_sde

    try:
        x, y = (derive_sde(optimizer, noise, r, f, nu=nu) for r, f in (a, b))
    except Exception:  # noqa: BLE001 - a refused derivation is simply not the same SDE
        return False
    return list(x.drift) == list(y.drift) and x.diffusion == y.diffusion


def sde_kinds(optimizer: str, noise: str = "gaussian", nu=None, compare=None) -> list[tuple[str, str, str]]:
    """The SDEs compared for ``optimizer``: full, published unless it equals full (SGD, SignSGD), and
    the noise-dominated SDE for RMSprop(W) and Adam(W). ``compare`` (labels) overrides the choice."""
    labels = {k[0]: k for k in SDE_KINDS}
    if compare is not None:
        unknown = [c for c in compare if c not in labels]
        if unknown:
            from ..errors import UnknownNameError

            raise UnknownNameError("SDE", ",".join(unknown), list(labels))
        return [labels[c] for c in compare]
    kinds = [labels["full"]]
    if not _same_sde(optimizer, noise, nu, ("paper", "full"), ("paper", "published")):
        kinds.append(labels["published"])
    if optimizer in NOISE_DOMINATED:
        kinds.append(labels["noise-dominated"])
    return kinds


def _module(optimizer: str, noise: str, nu, regime: str, form: str):
    from ..codegen.model import Combination
    from ..simulate import load_module, module_dir_for

    combo = Combination(optimizer, noise, regime, form, nu)
    directory = module_dir_for(combo)
    return load_module(combo, directory)


def _check_inputs(optimizer: str, eta: float, sigma: float, steps: int, seeds) -> list[int]:
    for name, v in (("eta", eta), ("sigma", sigma)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ValidationInputError(f"{name} must be a finite number, got {v!r}")
    if sigma <= 0:
        raise ValidationInputError(f"sigma must be > 0, got {sigma} (the SDEs model gradient noise of scale sigma)")
    if eta <= 0:
        raise ValidationInputError(f"eta must be > 0, got {eta}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValidationInputError(f"steps must be a positive integer, got {steps!r}")
    seeds = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValidationInputError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValidationInputError(f"seeds must be distinct, got {seeds}")
    if optimizer not in OPTIMIZERS:
        from ..errors import UnknownNameError

        raise UnknownNameError("optimizer for the network validation", optimizer, OPTIMIZERS)
    return [int(s) for s in seeds]


def validate(problem: "Problem | str", optimizer: str, *, noise: str = "gaussian", nu=None, eta: float = 0.01,
             sigma: float = 0.1, steps: int = 200, seeds=(0, 1, 2), hyper: dict | None = None, compare=None,
             replicate: bool = True, init_seed: int = 0, n_boot: int = 1000,
             progress: Callable[[int, int], None] | None = None) -> Result:
    """Run the optimizer and its SDEs on ``problem`` (a :class:`Problem` or a built-in model name).

    ``compare``: SDE labels (``full``, ``published``, ``noise-dominated``); default per
    :func:`sde_kinds`. ``replicate`` adds a second, independent run of the optimizer: its
    "fidelity" is the Monte Carlo floor of the measure at this number of seeds. ``progress(done,
    total)`` is called after every step of every trajectory.
    """
    torch = require_torch()
    import numba

    threads = torch.get_num_threads(), numba.get_num_threads()
    # the models are tiny: one thread each avoids oversubscription (measured: 2 threads were up to
    # 100x slower on the 2-core machine while other work ran)
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        return _validate(problem, optimizer, noise=noise, nu=nu, eta=eta, sigma=sigma, steps=steps, seeds=seeds,
                         hyper=hyper, compare=compare, replicate=replicate, init_seed=init_seed, n_boot=n_boot,
                         progress=progress)
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])


def _validate(problem, optimizer, *, noise, nu, eta, sigma, steps, seeds, hyper, compare, replicate, init_seed,
              n_boot, progress) -> Result:
    from ..simulate import hyperparameters

    torch = require_torch()
    optimizer = optimizer.lower()
    seeds = _check_inputs(optimizer, eta, sigma, steps, seeds)
    if isinstance(problem, str):
        problem = Problem.builtin(problem, init_seed)
    values = hyperparameters(optimizer, eta, sigma, hyper)
    sample = zeta_sampler(noise, nu)
    kinds = sde_kinds(optimizer, noise, nu, compare)
    modules = {label: _module(optimizer, noise, nu, regime, form) for label, regime, form in kinds}

    x0 = problem.initial()
    d, S = problem.dim, len(seeds)
    started = time.perf_counter()

    # trajectories: optimizer (+ replicate) and SDEs; each has its state array and per-seed views
    plans = [("optimizer", f"torch {optimizer}", None, 2)]
    if replicate:
        plans.append(("optimizer replicate", f"torch {optimizer}, independent noise (Monte Carlo floor)", None, 3))
    plans += [(label, f"SDE {regime}/{form}", modules[label], 1) for label, regime, form in kinds]

    total = len(plans) * steps
    done = 0
    trajectories: dict[str, Trajectory] = {}
    for label, desc, module, stream in plans:
        t0 = time.perf_counter()
        loss = np.full((S, steps + 1), np.nan)
        diverged = None
        if module is None:
            xs = np.repeat(x0[None, :], S, axis=0)
            params = [torch.nn.Parameter(torch.from_numpy(xs[s])) for s in range(S)]
            opts = [torch_optimizer(optimizer, [params[s]], values) for s in range(S)]
            rngs = [np.random.default_rng([s, stream, 17]) for s in seeds]
            gbuf = torch.zeros(S, d, dtype=torch.float64)
            rows = [torch.from_numpy(xs[s]) for s in range(S)]
        else:
            n_states = len(module.STATE)
            state = np.zeros((n_states, S, d))
            state[0] = x0[None, :]
            for j, init in enumerate(module.SDE_INITIAL):
                state[j + 1] = init
            p = np.array([values[n] for n in module.SDE_PARAMS], dtype=np.float64)
            g = np.zeros((S, d))
            gbuf = torch.from_numpy(g)
            rows = [torch.from_numpy(state[0, s]) for s in range(S)]
            rngs = [np.random.default_rng([s, stream, 29]) for s in seeds]
            xi = np.empty((module.NOISE_SOURCES, S, d))
        for k in range(steps + 1):
            for s in range(S):
                value = problem.loss_grad(rows[s], gbuf[s])
                loss[s, k] = value
                if not math.isfinite(value) or not bool(torch.isfinite(gbuf[s]).all()):
                    diverged = {"step": k, "seed": seeds[s]}
                    loss[:, k] = np.nan
                    break
            if diverged is not None or k == steps:
                break
            if module is None:
                for s in range(S):
                    zeta = torch.from_numpy(sample(rngs[s], d))
                    params[s].grad = gbuf[s] + values["sigma"] * zeta
                    opts[s].step()
            else:
                for s in range(S):
                    xi[:, s, :] = rngs[s].standard_normal((xi.shape[0], d))
                module.sde_step(state, g, xi, (k + 1) * eta, eta, p)
            done += 1
            if progress is not None:
                progress(done, total)
        if done < (len(trajectories) + 1) * steps:  # a divergence skipped the rest of this trajectory
            done = (len(trajectories) + 1) * steps
            if progress is not None:
                progress(done, total)
        trajectories[label] = Trajectory(label, desc, loss, diverged, time.perf_counter() - t0)

    result = Result(problem.name, optimizer, noise if nu is None else f"{noise}(nu={nu})", float(eta), float(sigma),
                    int(steps), seeds, {k: v for k, v in values.items()}, d, trajectories)
    reference = trajectories["optimizer"]
    if reference.diverged is not None:
        result.notes.append(f"the optimizer diverged at step {reference.diverged['step']} (seed "
                            f"{reference.diverged['seed']}); fidelities use the steps before it")
    for label, traj in trajectories.items():
        if label == "optimizer":
            continue
        if traj.diverged is not None:
            result.notes.append(f"{label} diverged at step {traj.diverged['step']} (seed {traj.diverged['seed']}); "
                                "its fidelity uses the steps before it")
        result.fidelity[label] = fidelity(reference.loss, traj.loss, n_boot=n_boot, seed=seeds[0])
    result.seconds = time.perf_counter() - started
    return result


# ---- the quadratic: the same comparison with the generated path simulators ---------------------
def validate_quadratic(optimizer: str, *, noise: str = "gaussian", nu=None, eta: float = 0.01, sigma: float = 0.1,
                       steps: int = 500, paths: int = 2000, seed: int = 0, lam=(1.0, 4.0, 10.0, 0.5),
                       hyper: dict | None = None, compare=None, replicate: bool = True, n_boot: int = 500,
                       progress: Callable[[int, int], None] | None = None) -> Result:
    """Optimizer against its SDEs on f = sum lam x^2/2 with :func:`derive.simulate.run` (every
    path is an independent noise realisation; bands and bootstrap run over paths). The start is
    continuous and random (N(0, 1) per path and coordinate), the same for every simulator."""
    from ..codegen.model import Combination
    from ..simulate import DivergenceError, module_dir_for, quadratic, random_start, run

    optimizer = optimizer.lower()
    _check_inputs(optimizer, eta, sigma, steps, [seed])
    if isinstance(paths, bool) or not isinstance(paths, (int, np.integer)) or paths < 2:
        raise ValidationInputError(f"paths must be an integer >= 2, got {paths!r}")
    started = time.perf_counter()
    land = quadratic(list(lam))
    x0 = random_start(paths, len(lam), seed)
    record = np.unique(np.linspace(0, steps, min(steps, 100) + 1).round().astype(np.int64))
    kinds = sde_kinds(optimizer, noise, nu, compare)
    plans = [("optimizer", f"{optimizer} (generated optimizer_step)", "optimizer", ("paper", "full"), seed)]
    if replicate:
        plans.append(("optimizer replicate", f"{optimizer}, independent noise (Monte Carlo floor)", "optimizer",
                      ("paper", "full"), seed + 1))
    plans += [(label, f"SDE {regime}/{form}", "sde", (regime, form), seed) for label, regime, form in kinds]
    trajectories: dict[str, Trajectory] = {}
    values = None
    for i, (label, desc, kind, (regime, form), s) in enumerate(plans):
        t0 = time.perf_counter()
        combo = Combination(optimizer, noise, regime, form, nu)
        directory = module_dir_for(combo)
        diverged = None
        try:
            r = run(kind, combo, x0, eta=eta, sigma=sigma, steps=steps, seed=s, landscape=land, hyper=hyper,
                    record=record, module_dir=directory)
            loss = r.loss.T.copy()
        except DivergenceError as exc:
            diverged = {"step": exc.step, "paths": exc.paths}
            loss = np.full((paths, record.size), np.nan)
        trajectories[label] = Trajectory(label, desc, loss, diverged, time.perf_counter() - t0)
        if progress is not None:
            progress(i + 1, len(plans))
    from ..simulate import hyperparameters

    values = hyperparameters(optimizer, eta, sigma, hyper)
    result = Result("quadratic", optimizer, noise if nu is None else f"{noise}(nu={nu})", float(eta), float(sigma),
                    int(steps), [int(seed)], values, len(lam), trajectories, record=record, unit="paths")
    result.notes.append(f"f = sum lam x^2/2 with lam = {list(lam)}; {paths} paths from N(0, 1) starts")
    ref = trajectories["optimizer"]
    for label, traj in trajectories.items():
        if label == "optimizer":
            continue
        if traj.diverged is not None:
            result.notes.append(f"{label} diverged at step {traj.diverged['step']}")
        result.fidelity[label] = fidelity(ref.loss, traj.loss, n_boot=n_boot, seed=seed, paired=True)
    result.seconds = time.perf_counter() - started
    return result
