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
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from .combination import Combination
from .errors import DeriveError
from .resources import GENERATED, user_cache_dir
from .runtime.paths import PathOutput, PathRun
from .runtime.schemes import BOUNDARIES, SCHEMES, Scheme

if TYPE_CHECKING:  # SymPy only where a noise model is given
    from .correlated_simulation import SimulatorNoise
    from .correlation import NoiseModel

CHUNK = 16  #: paths per parallel work item (results do not depend on it)


class SimulationInputError(DeriveError, ValueError):
    """Input a simulator cannot accept (shapes, ranges, non-finite values)."""


class DivergenceError(DeriveError, ArithmeticError):
    """A run left every finite bound: ``step`` is the first step at which some path diverged."""

    def __init__(self, label: str, step: int, paths: int, total: int):
        self.label, self.step, self.paths, self.total = label, step, paths, total
        super().__init__(
            f"{label} diverged at step {step}: {paths} of {total} paths reached |x| >= 1e30 "
            "or NaN (reduce eta or sigma)"
        )


@dataclass(frozen=True)
class Landscape:
    """A loss on R^d: a built-in landscape (``grad_fn`` None; ``code`` says which, see
    :mod:`derive.runtime.landscapes`) or user Numba functions.

    User functions are Numba-compiled (``numba.njit``): ``grad_fn(x, params, out)`` writes the
    gradient at x (a 1-d array) into ``out``; ``loss_fn(x, params)`` returns f(x) as a float;
    ``hvp_fn(x, u, params, out)`` (needed by order-2 SDEs only) writes H(x) u, the Hessian of f at
    x times the vector u, into ``out``. ``params`` is a float64 array passed through unchanged.
    """

    name: str
    params: np.ndarray
    dim: int | None = None
    grad_fn: Callable | None = None
    loss_fn: Callable | None = None
    code: int = 0  #: built-in landscapes: 0 diagonal quadratic, 1 double well, 2 quadratic with a full H
    hvp_fn: Callable | None = None


def quadratic(lam: np.ndarray | list[float]) -> Landscape:
    """f(x) = sum_j lam_j x_j^2 / 2, gradient lam * x."""
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)):
        raise SimulationInputError(f"quadratic curvatures must be a non-empty finite 1-d array, got shape {lam.shape}")
    return Landscape("quadratic", lam, lam.size)


def double_well(dim: int) -> Landscape:
    """f(x) = sum_j (x_j^2 - 1)^2 / 4, gradient x^3 - x: minima at x_j = +-1, a maximum at 0."""
    _check_counts(dim=dim)
    return Landscape("double-well", np.zeros(1), int(dim), code=1)


def full_quadratic(H: np.ndarray | list[list[float]], name: str = "full quadratic") -> Landscape:
    """f(x) = x^T H x / 2 with a symmetric d x d matrix H, gradient H x."""
    H = np.ascontiguousarray(H, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.size == 0 or not np.all(np.isfinite(H)):
        raise SimulationInputError(f"H must be a finite square matrix, got shape {H.shape}")
    if not np.allclose(H, H.T):
        raise SimulationInputError("H must be symmetric")
    return Landscape(name, H.ravel().copy(), H.shape[0], code=2)


def rotated_quadratic(lam: np.ndarray | list[float], angle: float = math.pi / 6) -> Landscape:
    """The quadratic with curvatures lam in axes rotated by ``angle`` in every plane (x_1, x_2),
    (x_3, x_4), ...: H = R diag(lam) R^T, not diagonal, so coordinates interact through g = H x
    (per-coordinate optimizers such as SignSGD see the rotation)."""
    lam = np.asarray(quadratic(lam).params)
    R = np.eye(lam.size)
    c, s = math.cos(angle), math.sin(angle)
    for i in range(0, lam.size - 1, 2):
        R[i : i + 2, i : i + 2] = [[c, -s], [s, c]]
    return full_quadratic(R @ np.diag(lam) @ R.T, name="rotated quadratic")


def user_landscape(
    grad_fn: Callable,
    loss_fn: Callable,
    params: np.ndarray | list[float],
    name: str = "user",
    dim: int | None = None,
    hvp_fn: Callable | None = None,
) -> Landscape:
    """A landscape given by Numba-compiled gradient, loss and (for order-2 SDEs) Hessian-vector
    product functions (see :class:`Landscape`)."""
    from numba.core.registry import CPUDispatcher

    for fn, what in ((grad_fn, "grad_fn"), (loss_fn, "loss_fn"), (hvp_fn, "hvp_fn")):
        if not isinstance(fn, CPUDispatcher) and not (what == "hvp_fn" and fn is None):
            raise SimulationInputError(f"{what} must be a numba.njit-compiled function, got {type(fn).__name__}")
    return Landscape(name, np.ascontiguousarray(params, dtype=np.float64), dim, grad_fn, loss_fn, hvp_fn=hvp_fn)


@dataclass
class Run:
    """Recorded statistics of one simulator over N paths.

    Under the weak2 scheme every statistic is already extrapolated (2 fine - coarse, per path for
    ``loss``), ``path`` holds the fine run's states and ``path_coarse`` the coarse run's: use
    :meth:`values` for other functions of the state."""

    label: str
    steps: np.ndarray
    eta: float
    loss: np.ndarray  #: [R, N] loss of every path at every recorded step
    mean: np.ndarray  #: [R, d] mean of x over paths
    var: np.ndarray  #: [R, d] unbiased variance of x over paths
    path: np.ndarray | None = field(default=None, repr=False)  #: [R, N, d] if asked for
    path_coarse: np.ndarray | None = field(default=None, repr=False)  #: weak2: the coarse run's [R, N, d]
    scheme: str = "euler"
    substeps: int = 1
    clock_power: int = 1  #: one optimizer step is eta**clock_power of SDE time (AdaGrad: 2)

    @property
    def times(self) -> np.ndarray:
        return self.steps * self.eta**self.clock_power

    @property
    def loss_mean(self) -> np.ndarray:
        return self.loss.mean(axis=1)

    @property
    def loss_se(self) -> np.ndarray:
        """Monte Carlo standard error of the mean loss, sd / sqrt(N)."""
        n = self.loss.shape[1]
        return self.loss.std(axis=1, ddof=1) / math.sqrt(n) if n > 1 else np.full(len(self.steps), np.nan)

    def values(self, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Per-path estimates of E fn(X) at each recorded step, fn(path) (needs keep=True); under
        weak2 the extrapolation 2 fn(fine) - fn(coarse), whose mean is the weak order-2 estimate."""
        if self.path is None:
            raise SimulationInputError("per-path values need the states: run with keep=True")
        out = fn(self.path)
        return out if self.path_coarse is None else SCHEMES[self.scheme].combine(out, fn(self.path_coarse))

    @property
    def integrator(self) -> str:
        """The integrator in words, e.g. 'weak2, 4 substeps of eta/4'."""
        return f"{self.scheme}, {self.substeps} substep{'s' if self.substeps > 1 else ''} of eta/{self.substeps}"


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


def load_module(combo: Combination, directory: str | Path | None = None) -> ModuleType:
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
        raise SimulationInputError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for {spec.name}; it has {', '.join(spec.hyper)}"
        )
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
    values["_boundary"] = BOUNDARIES["reflect"]  # the boundary rule of positive states (B in max(v, B v))
    return values


def clock_power(module: ModuleType) -> int:
    """p of the module's clock, one optimizer step being dt = eta**p of SDE time: CLOCK_ETA_POWER where the
    SDE has another clock than k*eta (AdaGrad's k*eta**2), else 1."""
    return getattr(module, "CLOCK_ETA_POWER", 1)


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
        raise SimulationInputError(
            f"record must be increasing step numbers in [0, {steps}], got {list(np.atleast_1d(record))}"
        )
    return rec


def _check_start(x0: np.ndarray, landscape: Landscape) -> np.ndarray:
    x0 = np.asarray(x0)
    if x0.dtype not in (np.float64, np.float32):
        raise SimulationInputError(f"the start must be float64 or float32, got {x0.dtype}")
    if x0.ndim != 2 or x0.shape[0] == 0 or x0.shape[1] == 0:
        raise SimulationInputError(f"the start must have shape (paths, dim) with both > 0, got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise SimulationInputError("the start contains NaN or infinity")
    if landscape.dim is not None and landscape.dim != x0.shape[1]:
        raise SimulationInputError(
            f"shape mismatch: the start has dim {x0.shape[1]}, the landscape {landscape.name} has dim {landscape.dim}"
        )
    return np.ascontiguousarray(x0)


def _check_integrator(scheme: str, substeps: int, boundary: str) -> None:
    if scheme not in SCHEMES:
        raise SimulationInputError(f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or not 1 <= substeps <= 4096:
        raise SimulationInputError(f"substeps must be an integer in [1, 4096], got {substeps!r}")
    if boundary not in BOUNDARIES:
        raise SimulationInputError(f"unknown boundary rule {boundary!r}; allowed: {', '.join(BOUNDARIES)}")


def _states(start: np.ndarray, x0: np.ndarray, names, initial, what: str) -> np.ndarray:
    """The start of every state [S, N, d]: ``start`` if given (checked), else x0 and ``initial``."""
    if start is None:
        out = np.empty((1 + len(initial),) + x0.shape, x0.dtype)
        out[0] = x0
        for i, v in enumerate(initial):
            out[1 + i] = x0 if v == "x" else v  # "x": a state that starts at x (schedule-free's z)
        return out
    start = np.ascontiguousarray(start, dtype=x0.dtype)
    if start.shape != (len(names),) + x0.shape or not np.array_equal(start[0], x0):
        raise SimulationInputError(
            f"the {what} start states must have shape {(len(names),) + x0.shape} "
            f"({', '.join(names)}) with x equal to x0, got {start.shape}"
        )
    if not np.all(np.isfinite(start)):
        raise SimulationInputError(f"the {what} start states contain NaN or infinity")
    return start


def _summary(
    label: str, rec, eta: float, out: PathOutput, keep: bool, scheme: Scheme | None, substeps: int, first: int,
    clock_power: int = 1,
) -> Run:  # fmt: skip
    """A :class:`Run` from the outputs of one call, its runs starting at ``first``: one run (the
    optimizer, ``scheme`` None, or an euler SDE) or the scheme's runs combined (weak2: 2 fine - coarse)."""
    runs = list(range(first, first + (scheme.runs if scheme else 1)))
    n = out.loss.shape[2]
    combine = scheme.combine if scheme else (lambda value: value)
    total1, total2 = out.s1[runs].sum(axis=1), out.s2[runs].sum(axis=1)
    lo, m1, m2 = combine(*out.loss[runs]), combine(*total1), combine(*total2)
    mean = m1 / n
    var = np.maximum(m2 - n * mean**2, 0.0) / max(n - 1, 1)
    path = out.xs[runs[0]] if keep else None
    coarse = out.xs[runs[1]] if keep and len(runs) == 2 else None
    return Run(
        label, rec, float(eta), lo, mean, var, path, coarse, scheme.name if scheme else "optimizer", int(substeps),
        clock_power,
    )  # fmt: skip


def _sde_label(combo: Combination) -> str:
    """'SDE paper/full', with ' order 2' for the order-2 SDE."""
    return f"SDE {combo.regime}/{combo.form}" + (f" order {combo.order}" if combo.order != 1 else "")


def _check_seed(seed, k0) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise SimulationInputError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    if isinstance(k0, bool) or not isinstance(k0, (int, np.integer)) or k0 < 0:
        raise SimulationInputError(f"k0 (steps already taken) must be an integer >= 0, got {k0!r}")


def _raise_divergence(label: str, diverged: np.ndarray) -> None:
    bad = diverged[diverged >= 0]
    if bad.size:
        raise DivergenceError(label, int(bad.min()), int(bad.size), diverged.size)


@dataclass
class _Setup:
    """What run, run_coupled and burn_in share: the checked inputs, the module and the values."""

    combo: Combination
    module: ModuleType
    x0: np.ndarray
    values: dict[str, float]
    landscape: Landscape
    steps: int
    seed: int
    k0: int
    noise: SimulatorNoise | None = None

    def sde_params(self, sde_values: dict | None = None) -> np.ndarray:
        m = self.module
        unknown = sorted(set(sde_values or {}) - set(m.SDE_PARAMS))
        if unknown:
            raise SimulationInputError(
                f"sde_values names {', '.join(unknown)}, not parameters of the SDE ({', '.join(m.SDE_PARAMS)})"
            )
        return np.array([{**self.values, **(sde_values or {})}[n] for n in m.SDE_PARAMS], dtype=self.x0.dtype)

    def step_time(self) -> float:
        """The SDE time of one optimizer step: eta, or eta**CLOCK_ETA_POWER on another clock (AdaGrad's eta**2)."""
        return float(self.values["eta"]) ** clock_power(self.module)

    def start_sde(self, start, rec: np.ndarray, steps: int, default_record: bool = False):
        """The SDE's start [S, N, d], its record steps and step count (counted from its start) for a
        run whose ``rec`` counts optimizer steps: ``start`` if given (the SDE's states, at t = k0
        step_time), else its initial states (x0 and SDE_INITIAL: the optimizer's initial states; an
        eliminated fast state starts at m = 0, so x - c*m = x0), or, where the SDE is not defined
        there (START_STEPS > 0, AdaGrad from s = 0), the optimizer's state after START_STEPS steps
        (its own draws, stream OPT_STREAM of the seed, correlated as the run's noise model) mapped to
        the SDE's (:meth:`map_states`); the SDE then starts at t = (k0 + START_STEPS) step_time and
        records only from that step (the default record steps, ``default_record``, from there on).
        Returns (start, record steps, step count)."""
        m = self.module
        first = getattr(m, "START_STEPS", 0) if start is None else 0
        if first == 0:
            if start is None and hasattr(m, "STATE_MAP"):
                return self.initial_map(), rec, steps
            return _states(start, self.x0, m.STATE, m.SDE_INITIAL, "SDE"), rec, steps
        if default_record:
            rec = np.unique(np.concatenate([[first], rec[rec >= first]]))
        if rec[0] < first:
            raise SimulationInputError(
                f"the SDE of {m.COMBINATION['optimizer']} starts after optimizer step {first} ({m.START_REASON}); "
                f"record steps must be >= {first}, got {rec[0]}, or give the start states"
            )
        run_ = PathRun(
            sde_start=None, opt_start=_states(None, self.x0, m.OPT_STATE, m.OPT_INITIAL, "optimizer"),
            sde_params=None, opt_params=self.opt_params(), land_params=self.landscape.params, steps=first,
            record=np.array([first], dtype=np.int64), seed=self.seed,
            land_code=0 if self.landscape.grad_fn is not None else self.landscape.code,
            grad_fn=self.landscape.grad_fn, loss_fn=self.landscape.loss_fn, k0=self.k0, chunk=CHUNK,
            opt_factor=None if self.noise is None else self.noise.opt_factor,
            opt_mixing=None if self.noise is None else self.noise.opt_mixing,
        )  # fmt: skip
        out = m.run_paths(run_)
        _raise_divergence(f"optimizer (the SDE's first {first} step(s))", out.diverged)
        self.k0 += first
        return self.map_states(out.end), rec - first, steps - first

    def initial_map(self) -> np.ndarray:
        """The SDE's start standing for the optimizer's initial states (x0, OPT_INITIAL) through STATE_MAP:
        a rescaled state starts at its map (a user AdaGrad with s(0) = s0 > 0: V(0) = eta**2 s0). Where the
        map is undefined at the start (adam_fixed: x - c(t)*m with c(0) infinite) while every eliminated
        fast state starts at 0, the eliminated term vanishes: x0 and the SDE's own initial values."""
        m = self.module
        opt = _states(None, self.x0, m.OPT_STATE, m.OPT_INITIAL, "optimizer")
        try:
            return self.map_states(opt)
        except SimulationInputError:
            eliminated = [i for i, name in enumerate(m.OPT_STATE) if name not in m.STATE]
            if eliminated and not np.any(opt[eliminated]):
                return _states(None, self.x0, m.STATE, m.SDE_INITIAL, "SDE")
            raise

    def map_states(self, opt: np.ndarray) -> np.ndarray:
        """The SDE's states [STATE, N, d] standing for the optimizer's ``opt`` [OPT_STATE, N, d] after ``k0``
        steps (SDE time t = k0 step_time), through the module's STATE_MAP (``sde_start``; reference
        section 11: the SDE's x is x - c*m of the optimizer, m the eliminated fast state, at m = 0 x
        itself; section 12: AdaGrad's V = eta**2 s)."""
        m = self.module
        params = np.array([self.values[n] for n in m.STATE_MAP_PARAMS], dtype=np.float64)
        S = np.empty((len(m.STATE),) + opt.shape[1:], opt.dtype)
        try:
            m.sde_start(opt, float(self.k0 * self.step_time()), params, S)
            finite = bool(np.all(np.isfinite(S)))
        except ZeroDivisionError:
            finite = False
        if not finite:
            raise SimulationInputError(
                f"the SDE's start, {m.STATE_MAP} of the optimizer's start states, is not finite "
                f"(after k0 = {self.k0} steps); start from burned-in states with k0 > 0"
            )
        return S

    def opt_params(self) -> np.ndarray:
        return np.array([self.values[n] for n in self.module.OPT_PARAMS], dtype=self.x0.dtype)

    def require_sde(self) -> None:
        reason = getattr(self.module, "SDE_UNAVAILABLE", None)
        if reason:
            raise SimulationInputError(f"{self.combo.module_name} has no SDE to simulate, only the optimizer: {reason}")
        if self.noise is not None and self.noise.sde_refusal:
            raise SimulationInputError(self.noise.sde_refusal)
        if self.landscape.grad_fn is not None and self.module.HVP and self.landscape.hvp_fn is None:
            raise SimulationInputError(
                f"the order-2 SDE of {self.module.COMBINATION['optimizer']} needs the Hessian-vector "
                f"product of the user landscape {self.landscape.name}: pass hvp_fn(x, u, params, out) "
                "to user_landscape"
            )

    def paths(self, *, sde_start=None, opt_start=None, sde_params=None, record, keep=False, scheme=None,
              substeps=1, freeze=False) -> PathRun:  # fmt: skip
        """The call of the module's path simulators (:class:`derive.runtime.paths.PathRun`)."""
        land = self.landscape
        user = land.grad_fn is not None
        nf = self.noise
        return PathRun(
            sde_start=sde_start,
            opt_start=opt_start,
            sde_params=sde_params,
            opt_params=self.opt_params() if opt_start is not None else None,
            land_params=land.params,
            steps=self.steps,
            record=record,
            seed=self.seed,
            land_code=0 if user else land.code,
            grad_fn=land.grad_fn,
            loss_fn=land.loss_fn,
            hvp_fn=land.hvp_fn if user and sde_start is not None and self.module.HVP else None,
            step_time=self.step_time() if sde_start is not None else 0.0,
            scheme=scheme,
            substeps=int(substeps),
            k0=self.k0,
            keep=bool(keep),
            freeze=freeze,
            chunk=CHUNK,
            opt_factor=nf.opt_factor if nf is not None and opt_start is not None else None,
            sde_factor=nf.sde_factor if nf is not None and sde_start is not None else None,
            sign_factor=nf.sign_factor if nf is not None and sde_start is not None else None,
            opt_mixing=nf.opt_mixing if nf is not None else None,
        )


def _setup(
    combo, x0, *, eta, sigma, steps, seed, landscape, hyper, module_dir, k0=0, scheme="euler", substeps=1,
    boundary="reflect", noise=None, sde=True,
) -> _Setup:  # fmt: skip
    """Check the inputs of a run, load the module, complete the hyperparameters; with a noise model, the
    factors of correlated noise (:mod:`derive.correlated_simulation`; ``sde``: the SDE will run)."""
    _check_counts(steps=steps)
    _check_integrator(scheme, substeps, boundary)
    _check_seed(seed, k0)
    x0 = _check_start(x0, landscape)
    if noise is None and sigma is None:
        raise SimulationInputError("sigma is required (or a noise model, which holds the noise scales)")
    module = factors = None
    if noise is not None:
        from .correlated_simulation import simulator_noise

        module = load_module(combo, module_dir)
        factors = simulator_noise(noise, combo, module, x0.shape[1], sde)
    if factors is not None and sigma is not None and not math.isclose(sigma, factors.sigma, rel_tol=1e-12):
        raise SimulationInputError(
            f"sigma {sigma} disagrees with the noise model {noise.origin} (its scale {factors.sigma:.6g}); "
            "give sigma=None with a noise model"
        )
    values = hyperparameters(combo.optimizer, eta, factors.sigma if factors is not None else sigma, hyper)
    values["_boundary"] = BOUNDARIES[boundary]
    module = module or load_module(combo, module_dir)
    return _Setup(combo, module, x0, values, landscape, int(steps), int(seed), int(k0), factors)


def run(
    kind: str,
    combo: Combination,
    x0: np.ndarray,
    *,
    eta: float,
    sigma: float | None,
    steps: int,
    seed: int,
    landscape: Landscape,
    hyper: dict | None = None,
    record=None,
    keep: bool = False,
    module_dir: str | Path | None = None,
    scheme: str = "euler",
    substeps: int = 1,
    boundary: str = "reflect",
    start=None,
    k0: int = 0,
    noise: NoiseModel | None = None,
) -> Run:
    """Simulate ``kind`` ('optimizer' or 'sde') of ``combo`` from x0[N, d] for ``steps`` steps.

    The SDE takes ``substeps`` steps of dt = eta/substeps per optimizer step with ``scheme``
    (``euler``: the split-step Euler-Maruyama scheme, weak order 1; ``weak2``: its Talay-Tubaro
    extrapolation, weak order 2) and the ``boundary`` rule for positive states (``reflect`` or
    ``floor``). ``start`` (optional, [states, N, d] in the module's STATE or OPT_STATE order, x
    equal to x0) replaces the constant initial values of the auxiliary states; ``k0`` steps are
    taken as already done (the SDE starts at t = k0 eta, bias corrections at k = k0 + 1).
    The dtype of x0 (float64 or float32) is the kernel's float type. ``noise``: a
    :class:`derive.correlation.NoiseModel` of noise correlated across coordinates (reference section 9,
    :mod:`derive.correlated_simulation`; ``sigma`` None or its common scale), None for independent
    noise of scale ``sigma`` (the numbers of before, bit for bit). Raises
    :class:`SimulationInputError` for bad input and :class:`DivergenceError` if a path diverges.
    """
    if kind not in ("optimizer", "sde"):
        raise SimulationInputError(f"kind must be 'optimizer' or 'sde', got {kind!r}")
    setup = _setup(
        combo, x0, eta=eta, sigma=sigma, steps=steps, seed=seed, landscape=landscape, hyper=hyper,
        module_dir=module_dir, k0=k0, scheme=scheme, substeps=substeps, boundary=boundary, noise=noise,
        sde=kind == "sde",
    )  # fmt: skip
    rec = _record_steps(record, steps)
    m = setup.module
    if kind == "optimizer":
        O0 = _states(start, setup.x0, m.OPT_STATE, m.OPT_INITIAL, "optimizer")
        out = m.run_paths(setup.paths(opt_start=O0, record=rec, keep=keep))
        _raise_divergence("optimizer", out.diverged)
        return _summary("optimizer", rec, eta, out, keep, None, 1, 0, clock_power(m))
    setup.require_sde()
    S0, sde_rec, setup.steps = setup.start_sde(start, rec, steps, default_record=record is None)
    chosen = SCHEMES[scheme]
    out = m.run_paths(
        setup.paths(
            sde_start=S0, sde_params=setup.sde_params(), record=sde_rec, keep=keep, scheme=chosen, substeps=substeps
        )
    )
    _raise_divergence(_sde_label(combo), out.diverged)
    return _summary(
        _sde_label(combo), sde_rec + (steps - setup.steps), eta, out, keep, chosen, substeps, 0, clock_power(m),
    )  # fmt: skip


def run_coupled(
    combo: Combination,
    x0: np.ndarray,
    *,
    eta: float,
    sigma: float | None,
    steps: int,
    seed: int,
    landscape: Landscape,
    hyper: dict | None = None,
    record=None,
    keep: bool = False,
    module_dir: str | Path | None = None,
    scheme: str = "euler",
    substeps: int = 1,
    boundary: str = "reflect",
    start=None,
    k0: int = 0,
    sde_values: dict | None = None,
    noise: NoiseModel | None = None,
    sde_noise: NoiseModel | None = None,
) -> tuple[Run, Run]:
    """The optimizer and the SDE of ``combo`` on shared randomness, in one generated kernel:
    ``(optimizer run, SDE run)``, path i of both driven by the same noise (docs/validation.md,
    "Coupling"). The optimizer is exactly :func:`run` ('optimizer', same seed); the SDE's first
    Brownian motion takes s sqrt(eta) n(zeta_k) over optimizer step k (s and the state it drives
    first: the module's COUPLING; n = zeta under Gaussian noise, else Phi^{-1}(F(zeta))), filled in by
    a Brownian bridge over the substeps; its other Brownian motions are independent. Arguments as
    :func:`run`; ``start`` is the start of every optimizer state (OPT_STATE order): the SDE starts
    from the same states, or, where its states stand for functions of the optimizer's (a fast state
    m eliminated, the module's STATE_MAP: x - c*m), from the map of that start at t = k0 eta
    (:meth:`_Setup.map_states`); without ``start`` both start from x0 and their initial states (m = 0:
    x - c*m = x0). Path i of the optimizer's x is then compared with the SDE's x, which stands for
    x - c*m = x + O(eta): part of the O(eta) weak error. ``sde_values`` replaces values of the SDE's
    parameters only (e.g. {"sigma": 2.0}: a deliberately wrong SDE for a mutation test, or another
    setting of a scaling rule). ``noise``: as :func:`run`; the optimizer draws zeta = F xi and the
    SDE's first Brownian motion takes the same xi (Gaussian noise only). ``sde_noise`` gives the SDE the increments of another noise model of the same
    scale, the optimizer keeping ``noise`` (e.g. r dropped: a deliberately wrong SDE for a mutation test)."""
    setup = _setup(
        combo, x0, eta=eta, sigma=sigma, steps=steps, seed=seed, landscape=landscape, hyper=hyper,
        module_dir=module_dir, k0=k0, scheme=scheme, substeps=substeps, boundary=boundary, noise=noise,
    )  # fmt: skip
    rec = _record_steps(record, steps)
    m = setup.module
    if sde_noise is not None:
        setup.noise = _replace_sde_noise(setup, sde_noise)
    setup.require_sde()
    if setup.noise is not None and setup.noise.coupling_refusal:
        raise SimulationInputError(setup.noise.coupling_refusal)
    if m.COUPLING is None:
        raise SimulationInputError(f"{combo.module_name}: no coupled run: {_no_coupling(m)}")
    if not m.COUPLABLE_LAW:
        raise SimulationInputError(
            f"{combo.module_name}: no coupled run under {combo.noise} noise (its CDF, needed "
            "for the quantile coupling, is not compiled; Student-t needs an integer nu)"
        )
    if hasattr(m, "STATE_MAP"):
        O0 = _states(start, setup.x0, m.OPT_STATE, m.OPT_INITIAL, "optimizer")
        S0 = setup.initial_map() if start is None else setup.map_states(O0)
    else:
        O0 = S0 = _states(start, setup.x0, m.STATE, m.SDE_INITIAL, "SDE")
    chosen = SCHEMES[scheme]
    out = m.run_paths(
        setup.paths(
            sde_start=S0, opt_start=O0, sde_params=setup.sde_params(sde_values), record=rec, keep=keep,
            scheme=chosen, substeps=substeps,
        )
    )  # fmt: skip
    _raise_divergence(f"optimizer or {_sde_label(combo)} (coupled)", out.diverged)
    chain = _summary("optimizer", rec, eta, out, keep, None, 1, chosen.runs)
    sde = _summary(_sde_label(combo), rec, eta, out, keep, chosen, substeps, 0)
    return chain, sde


def _no_coupling(m) -> str:
    """Why a module has no coupled run (its COUPLING is None: codegen's ``_coupling``), in words."""
    if hasattr(m, "CLOCK"):
        return (
            f"its SDE runs on the clock t = {m.CLOCK}, not k*eta: one optimizer step is dt = eta**{m.CLOCK_ETA_POWER}, "
            f"over which the SDE's noise is not the optimizer's sqrt(eta) n(zeta), and its states {m.STATE} stand for "
            f"other quantities (STATE_MAP {getattr(m, 'STATE_MAP', {})})"
        )
    if hasattr(m, "START_STEPS"):
        return f"its SDE starts only after optimizer step {m.START_STEPS} ({m.START_REASON})"
    if not set(m.STATE) <= set(m.OPT_STATE) and not hasattr(m, "STATE_MAP"):
        return f"the SDE's states {m.STATE} are neither the optimizer's {m.OPT_STATE} nor mapped to them (STATE_MAP)"
    return "its first Brownian motion drives no state, or the sign of the optimizer's noise along it cannot be read"


def _replace_sde_noise(setup: _Setup, sde_noise: NoiseModel) -> SimulatorNoise:
    """The setup's factors with the SDE's taken from ``sde_noise`` (same common scale)."""
    from dataclasses import replace

    from .correlated_simulation import simulator_noise

    if setup.noise is None:
        raise SimulationInputError("sde_noise replaces the SDE's noise of a correlated run: give noise too")
    other = simulator_noise(sde_noise, setup.combo, setup.module, setup.x0.shape[1], True)
    if not math.isclose(other.sigma, setup.noise.sigma, rel_tol=1e-12):
        raise SimulationInputError(f"sde_noise {sde_noise.origin} has another scale than noise {other.sigma:.6g}")
    return replace(
        setup.noise,
        sde_factor=other.sde_factor,
        sign_factor=other.sign_factor,
        sde_refusal=other.sde_refusal,
        coupling_refusal=other.coupling_refusal,
    )


def burn_in(
    combo: Combination,
    x0: np.ndarray,
    *,
    eta: float,
    sigma: float | None,
    steps: int,
    seed: int,
    landscape: Landscape,
    hyper: dict | None = None,
    module_dir: str | Path | None = None,
    noise: NoiseModel | None = None,
) -> np.ndarray:
    """The optimizer's states [OPT_STATE, N, d] after ``steps`` steps from x0 and the initial
    auxiliary states with x held at x0: auxiliary states (m, v) burned in at the start, so that a
    run from them has no initial layer (bias-corrected first steps from m = v = 0, which no SDE
    reproduces). Draws from stream (seed, OPT_STREAM, i): use another seed than the run's. ``noise``:
    as :func:`run`."""
    setup = _setup(
        combo, x0, eta=eta, sigma=sigma, steps=steps, seed=seed, landscape=landscape, hyper=hyper,
        module_dir=module_dir, noise=noise, sde=False,
    )  # fmt: skip
    m = setup.module
    O0 = _states(None, setup.x0, m.OPT_STATE, m.OPT_INITIAL, "optimizer")
    out = m.run_paths(setup.paths(opt_start=O0, record=np.array([steps], dtype=np.int64), freeze=True))
    _raise_divergence("optimizer (burn-in)", out.diverged)
    return out.end


def gap_in_se(run, reference) -> float:
    """Largest |mean loss difference| over the recorded steps, in combined standard errors."""
    se = np.sqrt(run.loss_se**2 + reference.loss_se**2)
    diff = np.abs(run.loss_mean - reference.loss_mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, np.where(diff > 0, np.inf, 0.0))
    return float(z.max())
