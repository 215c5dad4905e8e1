"""Run generated simulators: the optimizer and its SDEs on one problem, recorded at chosen steps.

Nothing here knows which optimizer it runs: a generated module (see :mod:`derive.codegen`)
exports its state and parameter names, and this module maps the user's hyperparameters onto
them (rho = (1 - beta)/eta for every decay beta; the SDE is integrated with dt = eta in every
regime, since derived SDEs are expressed in the user's units).

Statistics over N paths at each recorded step: mean loss with standard error
sd/sqrt(N); per-coordinate mean and (unbiased) variance of x, from per-chunk sums accumulated
in float64 in a fixed order, so results are identical for any number of threads.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np

from .combination import Combination
from .errors import DeriveError
from .resources import GENERATED, user_cache_dir


CHUNK = 16  #: paths per parallel work item (results do not depend on it)


class SimulationInputError(DeriveError, ValueError):
    """Input a simulator cannot accept (shapes, ranges, non-finite values)."""


class DivergenceError(DeriveError, ArithmeticError):
    """A run left every finite bound: ``step`` is the first step at which some path diverged."""

    def __init__(self, label: str, step: int, paths: int, total: int):
        self.label, self.step, self.paths, self.total = label, step, paths, total
        super().__init__(f"{label} diverged at step {step}: {paths} of {total} paths reached |x| >= 1e30 "
                         "or NaN (reduce eta or sigma)")


@dataclass(frozen=True)
class Landscape:
    """A loss on R^d: the built-in diagonal quadratic (``grad_fn`` None) or user Numba functions.

    User functions are Numba-compiled (``numba.njit``): ``grad_fn(x, params, out)`` writes the
    gradient at x (a 1-d array) into ``out``; ``loss_fn(x, params)`` returns f(x) as a float.
    ``params`` is a float64 array passed through unchanged.
    """

    name: str
    params: np.ndarray
    dim: int | None = None
    grad_fn: Callable | None = None
    loss_fn: Callable | None = None


def quadratic(lam: "np.ndarray | list[float]") -> Landscape:
    """f(x) = sum_j lam_j x_j^2 / 2, gradient lam * x."""
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)):
        raise SimulationInputError(f"quadratic curvatures must be a non-empty finite 1-d array, got shape {lam.shape}")
    return Landscape("quadratic", lam, lam.size)


def user_landscape(grad_fn: Callable, loss_fn: Callable, params: "np.ndarray | list[float]",
                   name: str = "user", dim: int | None = None) -> Landscape:
    """A landscape given by Numba-compiled gradient and loss functions (see :class:`Landscape`)."""
    from numba.core.registry import CPUDispatcher

    for fn, what in ((grad_fn, "grad_fn"), (loss_fn, "loss_fn")):
        if not isinstance(fn, CPUDispatcher):
            raise SimulationInputError(f"{what} must be a numba.njit-compiled function, got {type(fn).__name__}")
    return Landscape(name, np.ascontiguousarray(params, dtype=np.float64), dim, grad_fn, loss_fn)


@dataclass
class Run:
    """Recorded statistics of one simulator over N paths."""

    label: str
    steps: np.ndarray
    eta: float
    loss: np.ndarray  #: [R, N] loss of every path at every recorded step
    mean: np.ndarray  #: [R, d] mean of x over paths
    var: np.ndarray  #: [R, d] unbiased variance of x over paths
    path: np.ndarray | None = field(default=None, repr=False)  #: [R, N, d] if asked for

    @property
    def times(self) -> np.ndarray:
        return self.steps * self.eta

    @property
    def loss_mean(self) -> np.ndarray:
        return self.loss.mean(axis=1)

    @property
    def loss_se(self) -> np.ndarray:
        """Monte Carlo standard error of the mean loss, sd / sqrt(N)."""
        n = self.loss.shape[1]
        return self.loss.std(axis=1, ddof=1) / math.sqrt(n) if n > 1 else np.full(len(self.steps), np.nan)


_MODULES: dict[Path, ModuleType] = {}
_HEADER = re.compile(r"^# Key: ([0-9a-f]{64}) ", re.MULTILINE)


def is_builtin(combo: Combination) -> bool:
    """Whether ``combo`` is in the built-in set of generated/."""
    return (GENERATED / f"{combo.module_name}.py").is_file()


def module_dir_for(combo: Combination) -> Path | None:
    """None for a combination of the built-in set, else the user cache directory in which
    :func:`load_module` generates it on demand (``$DERIVE_CACHE_DIR`` overrides it)."""
    return None if is_builtin(combo) else user_cache_dir()


def _key_in(path: Path) -> str | None:
    """The ``# Key:`` of a generated module's header, None if absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            match = _HEADER.search(fh.read(4096))
    except OSError:
        return None
    return match.group(1) if match else None


def _runtime_hash_in(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            match = re.search(r"^RUNTIME_HASH = '([0-9a-f]+)'$", fh.read(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1) if match else None


def load_module(combo: Combination, directory: "str | Path | None" = None) -> ModuleType:
    """Import the generated module of ``combo``, generating it first where needed.

    Without ``directory``: the built-in module of generated/ if there is one and it was rendered
    against the current runtime (its ``RUNTIME_HASH``); otherwise the module is generated into the
    user cache (:func:`derive.resources.user_cache_dir`). With ``directory``: the module there if its
    header's key equals :func:`derive.codegen.model.module_key` of ``combo`` (spec, law, regime,
    form, templates, runtime, versions), else it is (re)generated there, atomically. A changed
    runtime therefore never runs from a module, or a Numba cache, compiled against the old one.
    """
    from .runtime import runtime_hash

    builtin = GENERATED / f"{combo.module_name}.py"
    if directory is None and builtin.is_file() and _runtime_hash_in(builtin) == runtime_hash():
        return _import(builtin.resolve(), combo)
    folder = Path(directory) if directory is not None else user_cache_dir()
    path = (folder / f"{combo.module_name}.py").resolve()
    from .codegen.model import module_key  # the generator (SymPy, Jinja2) only for modules outside generated/

    key = module_key(combo)
    if _key_in(path) != key:
        from .codegen.render import write

        write(combo, folder)
        _MODULES.pop(path, None)
    return _import(path, combo)


def _import(path: Path, combo: Combination) -> ModuleType:
    if path in _MODULES:
        return _MODULES[path]
    # a stable import name per file: Numba's cache reimports the module by it
    name = f"derive_generated_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}_{combo.module_name}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _MODULES[path] = module
    return module


def hyperparameters(optimizer: str, eta: float, sigma: float, hyper: dict | None = None) -> dict[str, float]:
    """The optimizer's hyperparameters (defaults completed) plus sigma and every rate rho, validated."""
    from . import symbols as S
    from .optimizers import get_optimizer

    spec = get_optimizer(optimizer)
    values = {n: float(v) for n, v in spec.defaults.items()}
    unknown = sorted(set(hyper or {}) - set(spec.hyper))
    if unknown:
        raise SimulationInputError(f"unknown hyperparameter(s) {', '.join(unknown)} for {spec.name}; "
                                   f"it has {', '.join(spec.hyper)}")
    values.update({n: float(v) for n, v in (hyper or {}).items()})
    values[spec.hypers_with_role("lr")[0]] = float(eta)
    values["sigma"] = float(sigma)
    missing = sorted(set(spec.hyper) - set(values))
    if missing:
        raise SimulationInputError(f"{spec.name} needs a value for {', '.join(missing)}")
    for name, value in values.items():
        if not math.isfinite(value):
            raise SimulationInputError(f"{name} must be finite, got {value}")
    if values["sigma"] <= 0:
        raise SimulationInputError(f"sigma must be > 0, got {values['sigma']}")
    for name, role in spec.hyper.items():
        v = values[name]
        if role == "lr" and v <= 0:
            raise SimulationInputError(f"the learning rate {name} must be > 0, got {v}")
        if role == "decay" and not 0 < v < 1:
            raise SimulationInputError(f"{name} must lie in (0, 1), got {v}")
        if role in ("eps", "weight_decay") and v < 0:
            raise SimulationInputError(f"{name} must be >= 0, got {v}")
    lr = spec.hypers_with_role("lr")[0]
    for decay in spec.hypers_with_role("decay"):
        values[S.rate_name(decay)] = (1.0 - values[decay]) / values[lr]
    values.setdefault("eta", values[lr])  # derived SDEs name the step size eta, whatever the spec calls it
    return values


def random_start(paths: int, dim: int, seed: int, scale: float = 1.0, dtype=np.float64) -> np.ndarray:
    """A continuous random start x0[paths, dim] ~ N(0, scale^2) (SignSGD lives on x0 + eta Z)."""
    _check_counts(paths=paths, dim=dim)
    return (scale * np.random.default_rng([int(seed), 7]).standard_normal((paths, dim))).astype(dtype)


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise SimulationInputError(f"{name} must be a positive integer, got {value!r}")


def _record_steps(record, steps: int) -> np.ndarray:
    if record is None:
        record = np.unique(np.linspace(0, steps, 11).round().astype(np.int64))
    rec = np.asarray(record, dtype=np.int64)
    if rec.ndim != 1 or rec.size == 0 or np.any(np.diff(rec) <= 0) or rec[0] < 0 or rec[-1] > steps:
        raise SimulationInputError(f"record must be increasing step numbers in [0, {steps}], got {list(np.atleast_1d(record))}")
    return rec


def run(kind: str, combo: Combination, x0: np.ndarray, *, eta: float, sigma: float, steps: int,
        seed: int, landscape: Landscape, hyper: dict | None = None, record=None, keep: bool = False,
        module_dir: "str | Path | None" = None) -> Run:
    """Simulate ``kind`` ('optimizer' or 'sde') of ``combo`` from x0[N, d] for ``steps`` steps.

    The dtype of x0 (float64 or float32) is the kernel's float type. Raises
    :class:`SimulationInputError` for bad input and :class:`DivergenceError` if a path diverges.
    """
    if kind not in ("optimizer", "sde"):
        raise SimulationInputError(f"kind must be 'optimizer' or 'sde', got {kind!r}")
    _check_counts(steps=steps)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise SimulationInputError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    x0 = np.asarray(x0)
    if x0.dtype not in (np.float64, np.float32):
        raise SimulationInputError(f"the start must be float64 or float32, got {x0.dtype}")
    if x0.ndim != 2 or x0.shape[0] == 0 or x0.shape[1] == 0:
        raise SimulationInputError(f"the start must have shape (paths, dim) with both > 0, got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise SimulationInputError("the start contains NaN or infinity")
    if landscape.dim is not None and landscape.dim != x0.shape[1]:
        raise SimulationInputError(f"shape mismatch: the start has dim {x0.shape[1]}, the landscape {landscape.name} "
                                   f"has dim {landscape.dim}")
    values = hyperparameters(combo.optimizer, eta, sigma, hyper)
    rec = _record_steps(record, steps)
    module = load_module(combo, module_dir)
    reason = getattr(module, "SDE_UNAVAILABLE", None)
    if kind == "sde" and reason:
        raise SimulationInputError(f"{combo.module_name} has no SDE to simulate, only the optimizer: {reason}")
    names = module.SDE_PARAMS if kind == "sde" else module.OPT_PARAMS
    p = np.array([values[n] for n in names], dtype=x0.dtype)
    x0 = np.ascontiguousarray(x0)
    args = (x0, p, landscape.params, int(steps), rec, int(seed), CHUNK, bool(keep))
    if landscape.grad_fn is None:
        kernel = getattr(module, f"simulate_{kind}")
        out = kernel(*args)
    else:
        kernel = getattr(module, f"simulate_{kind}_user")
        out = kernel(*args, landscape.grad_fn, landscape.loss_fn)
    loss, s1, s2, xs, diverged = out
    label = "optimizer" if kind == "optimizer" else f"SDE {combo.regime}/{combo.form}"
    bad = diverged[diverged >= 0]
    if bad.size:
        raise DivergenceError(label, int(bad.min()), int(bad.size), x0.shape[0])
    n = x0.shape[0]
    total1, total2 = s1.sum(axis=0), s2.sum(axis=0)
    mean = total1 / n
    var = np.maximum(total2 - n * mean**2, 0.0) / max(n - 1, 1)
    return Run(label, rec, float(eta), loss, mean, var, xs if keep else None)


def gap_in_se(run, reference) -> float:
    """Largest |mean loss difference| over the recorded steps, in combined standard errors."""
    se = np.sqrt(run.loss_se**2 + reference.loss_se**2)
    diff = np.abs(run.loss_mean - reference.loss_mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, np.where(diff > 0, np.inf, 0.0))
    return float(z.max())
