"""The report's independent parts as executor tasks, and the warm-up of the kernels they compile.

Each section of the report lists its work as :class:`ReportTask` s: a module-level function (so
that a Dask worker can import it) with its arguments, a key, and the simulator kernels it compiles
(:class:`Kernel`). Every seed is an argument of the task, never a consequence of the order or the
process in which tasks run, so the report's numbers are the same serially, on one worker or on N.

:func:`run` runs them on a :class:`~derive.executor.Executor` in two phases when the executor runs
tasks in parallel: first one task per distinct kernel (:func:`warm_kernel`: a tiny run that makes
Numba compile it into its on-disk cache), so that no kernel is compiled twice by two workers at
once, then the tasks themselves, heaviest first, each loading its kernels from the cache. Each
task's value comes back with its wall time and the CPU time of the process that ran it
(:class:`Measured`).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..combination import Combination
from ..errors import DeriveError
from ..executor import Executor, Outcome, SerialExecutor, Task

#: the kinds of simulator kernel, one per Numba specialisation the report's runs use: the optimizer's
#: path kernel (`simulate_chain`), the SDE's path kernel alone with the Euler scheme ("paths"), alone with
#: weak2 (a fine and a coarse run: "paths-weak2") and coupled with the optimizer under weak2 ("coupled"),
#: and the SDE's one-step function of the networks (`sde_step`). The loops are compiled once per type
#: signature: a warm-up of another specialisation than the task's leaves the task to compile its own.
KINDS = ("chain", "paths", "paths-weak2", "coupled", "step")


@dataclass(frozen=True)
class Kernel:
    """One compiled kernel of a generated module: its ``kind`` (:data:`KINDS`) of ``combination``."""

    kind: str
    combination: Combination

    @property
    def key(self) -> str:
        c = self.combination
        return f"warm/{self.kind}/{c.module_name}"


@dataclass(frozen=True)
class ReportTask:
    """``function(*args, **kwargs)``, a module-level function, under ``key``; ``kernels``: what it
    compiles; ``weight``: a rough relative cost, heaviest submitted first."""

    key: str
    function: Callable[..., object]
    args: tuple = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)
    kernels: tuple[Kernel, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class Measured:
    """A task's value, with the CPU seconds (user + system) of the process while it ran."""

    value: object
    cpu: float


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(function: Callable[..., object], args: tuple, kwargs: Mapping[str, object]) -> Measured:
    """Run ``function`` here and measure its CPU time (its Numba threads included)."""
    start = _cpu()
    value = function(*args, **dict(kwargs))
    return Measured(value, _cpu() - start)


def warm_kernel(kind: str, combination: Combination) -> None:
    """Compile one kernel into Numba's on-disk cache by a tiny run (2 paths, 2 steps, float64: the
    types of every run of the report, so the run loads exactly this specialisation)."""
    import numpy as np

    from ..simulate import hyperparameters, load_module, quadratic, run, run_coupled

    module = load_module(combination)
    if kind == "step":
        values = hyperparameters(combination.optimizer, 0.01, 0.01)
        p = np.array([values[n] for n in module.SDE_PARAMS], dtype=np.float64)
        state = np.ones((len(module.STATE), 1, 2))
        grad, xi = np.ones((1, 2)), np.zeros((module.NOISE_SOURCES, 1, 2))
        hv = (np.zeros((1, 2)),) if getattr(module, "HVP", False) else ()
        if hv:
            module.hvp_vector(state, grad, 0.01, 0.01, p, np.zeros((1, 2)))
        module.sde_step(state, grad, xi, 0.01, 0.01, p, *hv)
        return
    tiny = dict(eta=0.01, sigma=1.0, steps=2, seed=0, landscape=quadratic([1.0, 4.0]))
    try:
        if kind == "coupled":
            run_coupled(combination, np.ones((2, 2)), scheme="weak2", **tiny)
        else:
            scheme = "weak2" if kind == "paths-weak2" else "euler"
            run("optimizer" if kind == "chain" else "sde", combination, np.ones((2, 2)), scheme=scheme, **tiny)
    except DeriveError:  # a diverging tiny run: the kernel is compiled all the same
        pass


@dataclass
class Results:
    """What the tasks gave, by key, and the timings of the run."""

    outcomes: dict[str, Outcome]
    warmed: dict[str, Outcome] = field(default_factory=dict)  #: the warm-up tasks' outcomes, by kernel key
    warm_seconds: float = 0.0

    def value(self, key: str):
        """The task's value; raises :class:`TaskFailed` with its one-line error if it failed."""
        outcome = self.outcomes[key]
        if not outcome.ok:
            raise TaskFailed(outcome.error)
        return outcome.value.value

    def seconds(self, key: str) -> float:
        return self.outcomes[key].seconds

    def cpu(self, key: str) -> float:
        return _cpu_of(self.outcomes[key])

    def timings(self) -> dict:
        """Wall and CPU seconds of every task and of the warm-up, and where each ran."""

        def times(outcomes: dict[str, Outcome]) -> dict:
            return {
                k: {"seconds": o.seconds, "cpu_seconds": _cpu_of(o), "worker": o.worker} for k, o in outcomes.items()
            }

        return {
            "warm_up": {
                "kernels": len(self.warmed),
                "seconds": self.warm_seconds,
                "cpu_seconds": sum(_cpu_of(o) for o in self.warmed.values()),
                "by_kernel": times(self.warmed),
            },
            "tasks": times(self.outcomes),
        }


def _cpu_of(outcome: Outcome) -> float:
    return outcome.value.cpu if outcome.ok else 0.0


class TaskFailed(Exception):
    """A report task that raised; the section shows its one-line message and goes on."""


def run(executor: Executor, tasks: Sequence[ReportTask], progress=sys.stderr, warm: bool | None = None) -> Results:
    """Run ``tasks`` on ``executor``: with ``warm`` (default: unless the executor is serial) first
    one :func:`warm_kernel` task per distinct kernel, then the tasks, heaviest first."""
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"report task keys must be unique: {sorted(k for k in keys if keys.count(k) > 1)[:5]}")
    show = progress is not None
    results = Results({})
    if warm is None:
        warm = not isinstance(executor, SerialExecutor)
    if warm:
        kernels = list(dict.fromkeys(k for t in tasks for k in t.kernels))
        kernels.sort(key=lambda k: k.kind != "paths")  # the SDE kernels compile longest: first
        start = time.perf_counter()
        _log(progress, f"compiling {len(kernels)} kernels (one task each) on {executor.describe()}")
        warmed = [Task(k.key, measured, (warm_kernel, (k.kind, k.combination), {})) for k in kernels]
        for outcome in executor.map(warmed, label="kernels", progress=show):
            results.warmed[outcome.key] = outcome
            if not outcome.ok:  # the task that needs it will compile it, and report its error
                _log(progress, f"{outcome.key}: {outcome.error}")
        results.warm_seconds = time.perf_counter() - start
    order = sorted(tasks, key=lambda t: -t.weight)
    submitted = [Task(t.key, measured, (t.function, t.args, dict(t.kwargs))) for t in order]
    for outcome in executor.map(submitted, label="report", progress=show):
        results.outcomes[outcome.key] = outcome
        status = f"{outcome.seconds:.1f} s (CPU {_cpu_of(outcome):.1f} s)" if outcome.ok else f"FAILED: {outcome.error}"
        _log(progress, f"{outcome.key}: {status}")
    return results


def _log(progress, text: str) -> None:
    if progress is not None:
        print(f"[report] {text}", file=progress, flush=True)
