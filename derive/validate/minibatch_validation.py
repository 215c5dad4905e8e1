"""The SDEs against real minibatch training (reference section 10): ``validate --gradients minibatch``.

Per seed, the real ``torch.optim`` optimizer steps on minibatch gradients
(:class:`derive.validate.minibatch_runs.MinibatchOptimizerPath`; sampling with replacement by
default, the SDE's assumption, or shuffled epochs); each SDE variant (``minibatch-full``,
``minibatch-diag``, ``isotropic``: :mod:`derive.validate.minibatch_sde`) is the engine's derived
SDE with its noise measured at its own current point at every step. Everything starts from the same
parameters. The runs are independent: no exact coupling exists between a minibatch and a Gaussian
increment (a minibatch gradient is not a function of a Gaussian draw that the SDE could share), so
the standard errors are those of independent runs; an independent replicate of the optimizer
gives the Monte Carlo floor of the fidelity at this number of seeds.

Observables, at every recorded step: the full-batch ``loss``, and the parameter ``distance``
|x - x_ref|^2 with x_ref the full-batch (noise-free) run of the same optimizer from the same start
(at a minimum x_ref = x*, so the distance is |x - x*|^2), and its projections (``top`` = k):
``distance_top`` = |U^T (x - x_ref)|^2 with U the unit eigenvectors of the k largest eigenvalues of
Sigma(x_ref) at that step (from the N x N Gram matrix, :meth:`GradientSample.top_directions`), and
``distance_rest`` = the remainder, the part in the directions the minibatch noise hardly drives.
Section 10: the stationary covariance solves H C + C H = (eta/B) Sigma, so the full model puts the
parameter spread where Sigma is large, a trace-matched isotropic model (C proportional to H^-1) puts
it in the flat directions; the split says where a variant's distance goes wrong. For each, the fidelity of every variant
(mean relative gap of the mean, with a bootstrap interval over seeds: :func:`derive.validate.fidelity.fidelity`)
and the paired differences of the variants' fidelities (they share the optimizer runs), resolved
when the 95% interval excludes 0.

:func:`least_squares_control` is the positive control: linear least squares started at its
minimum, the stationary E|x - x*|^2 of each variant against its closed forms
(:mod:`derive.validate.least_squares`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import ValidationInputError, require_torch
from .fidelity import Difference, Fidelity, difference, fidelity
from .minibatch import GradientSample, check_batch, check_sampling, torch_threads
from .minibatch_runs import MINIBATCH_STREAM, MinibatchOptimizerPath, SVAGPath, record_path, record_steps
from .minibatch_sde import VARIANTS, MinibatchSDEPath, NumericSDE, derived_sde
from .torch_adapter import Problem, torch_optimizer

OBSERVABLES = ("loss", "distance")
PROJECTIONS = ("distance_top", "distance_rest")
REPLICATE_MINIBATCH_STREAM = 8
INDEPENDENT_NOTE = (
    "independent runs: no exact coupling exists between a minibatch and a Gaussian increment, so the "
    "SDEs and the optimizer share only the start; the replicate row is the Monte Carlo floor"
)
CLOSURE_NOTE = (
    "per-coordinate sigma_i(x)^2 = c Sigma_ii(x)/B under the Gaussian closure (a CLT for the batch "
    "mean): the SDE's {what} use it; the true fourth moments differ by kurtosis/B terms"
)


@dataclass
class MinibatchResult:
    """What one minibatch validation measured (module docstring)."""

    model: str
    optimizer: str
    batch: int
    sampling: str
    eta: float
    steps: int
    seeds: list[int]
    hyper: dict
    dim: int
    form: str
    substeps: int
    record: np.ndarray
    observables: dict[str, dict[str, np.ndarray]]  #: label -> observable -> [seeds, recorded steps]
    descriptions: dict[str, str]
    fidelity: dict[str, dict[str, Fidelity]] = field(default_factory=dict)  #: observable -> label -> fidelity
    differences: dict[str, list[Difference]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    diverged: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    #: SVAG against minibatch-full at the last recorded step (independent runs): dicts with a, b,
    #: observable, difference, se, resolved
    cross_check: list[dict] = field(default_factory=list)
    run_seconds: dict[str, float] = field(default_factory=dict)  #: wall time of each run (all seeds)
    #: the distance's projections: top (k asked), ranks (k used at each recorded step), basis
    projection: dict = field(default_factory=dict)

    @property
    def observable_names(self) -> list[str]:
        """The observables measured: loss, distance, and the projections when ``top`` > 0."""
        return [o for o in (*OBSERVABLES, *PROJECTIONS) if o in self.observables["optimizer"]]

    def mean(self, label: str, observable: str) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.observables[label][observable].mean(axis=0)

    def table(self) -> str:
        lines = [
            f"SDEs ({self.form} form) integrated by split-step Euler, {self.substeps} substep(s) of eta/"
            f"{self.substeps}; fidelity = mean relative gap of the mean, +- bootstrap SE over seeds [95% interval]",
            "",
            "| compared with the optimizer | loss fidelity | loss 95% | distance fidelity | distance 95% | "
            "final loss | final distance |",
            "|---|---|---|---|---|---|---|",
        ]
        lines.append(
            f"| optimizer ({self.descriptions['optimizer']}) | - | - | - | - | "
            f"{_fmt(self.mean('optimizer', 'loss')[-1])} | {_fmt(self.mean('optimizer', 'distance')[-1])} |"
        )
        for label in self.fidelity["loss"]:
            cells = [_cells(self.fidelity[obs][label]) for obs in OBSERVABLES]
            flag = " DIVERGED" if label in self.diverged else ""
            lines.append(
                f"| {label}{flag} | {' | '.join(cells)} | {_fmt(self.mean(label, 'loss')[-1])} | "
                f"{_fmt(self.mean(label, 'distance')[-1])} |"
            )
        if self.projection:
            lines += [
                "",
                f"distance = distance_top + distance_rest: the part in the top {self.projection['top']} eigenvectors "
                "of Sigma(x_ref) at each step, and the rest",
                "",
                "| compared with the optimizer | top fidelity | top 95% | rest fidelity | rest 95% | final top | "
                "final rest |",
                "|---|---|---|---|---|---|---|",
                f"| optimizer | - | - | - | - | {_fmt(self.mean('optimizer', 'distance_top')[-1])} | "
                f"{_fmt(self.mean('optimizer', 'distance_rest')[-1])} |",
            ]
            for label in self.fidelity["distance_top"]:
                cells = [_cells(self.fidelity[obs][label]) for obs in PROJECTIONS]
                lines.append(
                    f"| {label} | {' | '.join(cells)} | {_fmt(self.mean(label, 'distance_top')[-1])} | "
                    f"{_fmt(self.mean(label, 'distance_rest')[-1])} |"
                )
        rows = [(obs, d) for obs in self.observable_names for d in self.differences.get(obs, [])]
        if rows:
            lines += ["", "| difference of fidelities | observable | value +- SE | 95% interval | resolved |"]
            lines.append("|---|---|---|---|---|")
            for obs, d in rows:
                ci = "n/a" if not math.isfinite(d.low) else f"[{d.low:.4f}, {d.high:.4f}]"
                lines.append(
                    f"| {d.a} - {d.b} | {obs} | {d.value:+.4f} +- {d.se:.4f} | {ci} | "
                    f"{'resolved' if d.resolved else 'not resolved'} |"
                )
        if self.cross_check:
            lines += [
                "",
                "| cross-check at the last step (independent runs) | observable | difference +- SE | resolved |",
            ]
            lines.append("|---|---|---|---|")
            for c in self.cross_check:
                lines.append(
                    f"| {c['a']} - {c['b']} | {c['observable']} | {c['difference']:+.4g} +- {c['se']:.2g} | "
                    f"{'resolved' if c['resolved'] else 'not resolved'} |"
                )
        return "\n".join(lines)

    def to_json(self) -> dict:
        def clean(a):
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]

        n = len(self.seeds)
        runs = {}
        for label, obs in self.observables.items():
            runs[label] = {
                "description": self.descriptions[label],
                "diverged": self.diverged.get(label),
                "seconds": round(self.run_seconds.get(label, 0.0), 3),
            }
            for name, values in obs.items():
                with np.errstate(invalid="ignore"):
                    se = values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(values.shape[1])
                runs[label][f"mean_{name}"] = clean(values.mean(axis=0))
                runs[label][f"se_{name}"] = clean(se)
        return {
            "model": self.model,
            "gradients": "minibatch",
            "optimizer": self.optimizer,
            "batch": self.batch,
            "sampling": self.sampling,
            "eta": self.eta,
            "steps": self.steps,
            "seeds": list(self.seeds),
            "hyper": self.hyper,
            "parameters": self.dim,
            "form": self.form,
            "integrator": f"split-step euler, {self.substeps} substep(s) of eta/{self.substeps}",
            "coupled": False,
            "recorded_steps": [int(k) for k in self.record],
            "variants": [label for label in self.observables if label in VARIANTS],
            "fidelity": {obs: {k: v.to_json() for k, v in f.items()} for obs, f in self.fidelity.items()},
            "differences": [
                d.to_json() | {"observable": obs}
                for obs in self.observable_names
                for d in self.differences.get(obs, [])
            ],
            "projection": self.projection,
            "runs": runs,
            "cross_check": self.cross_check,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
        }


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"


def _cells(f: Fidelity) -> str:
    value = "n/a" if not math.isfinite(f.value) else f"{f.value:.4f} +- {f.se:.4f}"
    return value + " | " + ("n/a" if not math.isfinite(f.low) else f"[{f.low:.4f}, {f.high:.4f}]")


def noise_bases(problem: Problem, points: np.ndarray, top: int) -> list[np.ndarray]:
    """U_j (d x k_j) for each row x_j of ``points``: the unit eigenvectors of the k_j = min(top, rank,
    d - 1) largest eigenvalues of Sigma(x_j) (d - 1 at most, so that a remainder is left)."""
    k = min(int(top), problem.dim - 1)
    return [GradientSample.at(problem, x).top_directions(k) for x in points]


def projected_distances(params: np.ndarray, reference: np.ndarray, bases: list[np.ndarray]):
    """(top, rest) [runs, recorded steps] from ``params[run, j, d]``, ``reference[j, d]`` and the
    bases U_j: top = |U_j^T (x - x_ref)|^2, rest = |x - x_ref|^2 - top."""
    top = np.empty(params.shape[:2])
    for j, basis in enumerate(bases):
        top[:, j] = np.square((params[:, j] - reference[j]) @ basis).sum(axis=1)
    return top, np.square(params - reference[None]).sum(axis=2) - top


def full_batch_reference(problem: Problem, optimizer: str, values: dict, x0: np.ndarray, steps: int) -> np.ndarray:
    """x_ref[k], k = 0..steps: the real optimizer on the full-batch gradient from x0 (no noise)."""
    torch = require_torch()
    row = torch.from_numpy(x0.copy())
    param = torch.nn.Parameter(row)
    opt = torch_optimizer(optimizer, [param], values)
    grad = torch.zeros(problem.dim, dtype=torch.float64)
    out = np.empty((steps + 1, problem.dim))
    out[0] = x0
    for k in range(1, steps + 1):
        problem.loss_grad(row, grad)
        param.grad = grad.clone()
        opt.step()
        out[k] = row.numpy()
    return out


def _check(optimizer: str, eta, steps, seeds, form: str, substeps, variants) -> tuple[list[int], tuple[str, ...]]:
    from .sdes import OPTIMIZERS

    if optimizer not in OPTIMIZERS:
        raise ValidationInputError(f"no minibatch model for optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta <= 0:
        raise ValidationInputError(f"eta must be a finite number > 0, got {eta!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValidationInputError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ValidationInputError(f"substeps must be a positive integer, got {substeps!r}")
    seeds = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValidationInputError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValidationInputError(f"seeds must be distinct, got {seeds}")
    if form not in ("full", "published"):
        raise ValidationInputError(f"unknown form {form!r}; allowed: full, published")
    variants = tuple(dict.fromkeys(variants))
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValidationInputError(f"unknown SDE variant(s) {unknown or variants!r}; allowed: {', '.join(VARIANTS)}")
    return [int(s) for s in seeds], variants


def validate_minibatch(
    problem: Problem | str,
    optimizer: str,
    *,
    batch: int,
    sampling: str = "replacement",
    eta: float = 0.01,
    steps: int = 100,
    seeds=range(8),
    hyper: dict | None = None,
    variants=VARIANTS,
    form: str = "full",
    substeps: int = 1,
    replicate: bool = True,
    record=None,
    x0: np.ndarray | None = None,
    init_seed: int = 0,
    n_boot: int = 1000,
    threads: int | None = 1,
    svag=(),
    top: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> MinibatchResult:
    """The real ``optimizer`` on minibatches of ``batch`` against its SDE ``variants`` (module
    docstring) on ``problem`` (a :class:`Problem` with its dataset, or a built-in model name), from
    ``x0`` (default: the problem's parameters) for ``steps`` steps of ``eta`` on every seed.
    ``form``: the derived SDE's form (full or published); ``substeps``: SDE steps of eta/substeps per
    optimizer step (the noise re-measured at each); ``record``: the steps recorded (default all);
    ``threads``: torch threads; ``svag``: SVAG parameters l (SGD only) whose runs (labelled ``svag-l``,
    an independent route to the same SDE) are added and compared with ``minibatch-full`` at the last
    step; ``top``: the distance's projections onto the top ``top`` eigenvectors of Sigma(x_ref) and
    the rest (0: none; module docstring); ``progress(done, total)`` after every step of every run."""
    from ..simulate import SimulationInputError, hyperparameters

    optimizer = optimizer.lower()
    seeds, variants = _check(optimizer, eta, steps, seeds, form, substeps, variants)
    if isinstance(problem, str):
        problem = Problem.builtin(problem, init_seed)
    n = problem.n_samples  # a one-line error when the problem has no dataset
    batch, sampling = check_batch(batch, n), check_sampling(sampling)
    try:
        values = hyperparameters(optimizer, eta, 1.0, hyper)  # sigma: unused, the noise is measured
    except SimulationInputError as exc:
        raise ValidationInputError(str(exc)) from None
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValidationInputError(f"top must be an integer >= 0 (eigenvectors of Sigma(x_ref)), got {top!r}")
    svag = [svag] if isinstance(svag, (int, np.integer)) else list(svag)
    if svag and optimizer != "sgd":
        raise ValidationInputError(f"SVAG is defined for sgd here, got {optimizer!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in svag):
        raise ValidationInputError(f"SVAG's l must be integers >= 1, got {svag!r}")
    numeric = NumericSDE(derived_sde(optimizer, form), values)
    if "minibatch-full" in variants and numeric.full_noise is None:
        raise ValidationInputError(numeric.refusal)
    x0 = problem.initial() if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    rec = record_steps(steps, record)
    started = time.perf_counter()
    plans = [("optimizer", f"torch {optimizer}, minibatches of {batch} ({sampling})")]
    if replicate:
        plans.append(("optimizer replicate", "the same, independent batches (Monte Carlo floor)"))
    plans += [(f"svag-{v}", f"SGD by SVAG, l = {v} (step eta/{v}, two batches)") for v in svag]
    descriptions = dict(plans)
    descriptions |= {
        "minibatch-full": "SDE, sigma_i(x) and correlations from Sigma(x)/B",
        "minibatch-diag": "SDE, sigma_i(x)^2 = Sigma_ii(x)/B, independent coordinates",
        "isotropic": "SDE, one sigma^2 = tr Sigma(x0)/(B d)",
    }
    total = (len(plans) + len(variants)) * int(rec[-1]) + (rec.size if top else 0)
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if progress is not None:
            progress(done[0], total)

    observables, diverged, seconds = {}, {}, {}
    with torch_threads(threads):
        try:
            reference = full_batch_reference(problem, optimizer, values, x0, int(rec[-1]))[rec]
            bases = noise_bases(problem, reference, top) if top else []
            tick(len(bases))

            def make(label):
                if label == "optimizer":
                    return MinibatchOptimizerPath(
                        problem, optimizer, values, x0, seeds, batch, sampling, MINIBATCH_STREAM
                    )
                if label.startswith("svag-"):
                    return SVAGPath(problem, values, x0, seeds, batch, int(label[5:]), sampling)
                if label == "optimizer replicate":
                    return MinibatchOptimizerPath(
                        problem, optimizer, values, x0, seeds, batch, sampling, REPLICATE_MINIBATCH_STREAM
                    )
                return MinibatchSDEPath(problem, numeric, label, values, x0, seeds, batch, sampling, substeps=substeps)

            for label in [p[0] for p in plans] + list(variants):
                run = record_path(make(label), label, descriptions[label], steps, seeds, rec, tick)
                distance = np.square(run.params - reference[None]).sum(axis=2)
                observables[label] = {"loss": run.trajectory.loss, "distance": distance}
                if bases:
                    observables[label] |= dict(
                        zip(PROJECTIONS, projected_distances(run.params, reference, bases), strict=True)
                    )
                seconds[label] = run.trajectory.seconds
                if run.trajectory.diverged is not None:
                    diverged[label] = run.trajectory.diverged
        finally:
            problem.bind(require_torch().from_numpy(x0.copy()))
    result = MinibatchResult(
        problem.name, optimizer, batch, sampling, float(eta), int(steps), seeds, dict(values), problem.dim,
        form, int(substeps), rec, observables, {k: descriptions[k] for k in observables}, diverged=diverged,
    )  # fmt: skip
    result.run_seconds = seconds
    if bases:
        result.projection = {
            "top": int(top),
            "ranks": [int(b.shape[1]) for b in bases],
            "basis": "unit eigenvectors of the largest eigenvalues of Sigma(x_ref) at each recorded step "
            "(Gram matrix of the per-sample gradients at the noise-free run's point)",
        }
    result.notes.append(INDEPENDENT_NOTE)
    needs = {"adam": "V drift and noise", "adamw": "V drift and noise", "signsgd": "drift and diffusion"}
    needs |= {"rmsprop": "V drift and noise, x diffusion", "rmspropw": "V drift and noise, x diffusion"}
    if optimizer in needs:
        result.notes.append(CLOSURE_NOTE.format(what=needs[optimizer]))
    if sampling == "epoch":
        result.notes.append(
            "epoch sampling: each batch's covariance carries (N - B)/(N - 1); the anti-correlation of the "
            "batches of one epoch is not in any Markov SDE"
        )
    for label, where in diverged.items():
        result.notes.append(f"{label} diverged at step {where['step']} (seed {where['seed']}); later steps are NaN")
    _compare(result, variants, n_boot, seeds[0])
    result.seconds = time.perf_counter() - started
    return result


def _compare(result: MinibatchResult, variants, n_boot: int, seed: int) -> None:
    for obs in result.observable_names:
        ref = result.observables["optimizer"][obs]
        result.fidelity[obs] = {
            label: fidelity(ref, result.observables[label][obs], n_boot=n_boot, seed=seed)
            for label in [*variants, *[k for k in result.observables if k not in variants and k != "optimizer"]]
        }
        result.differences[obs] = [
            difference(ref, result.observables[a][obs], result.observables[b][obs], a, b, n_boot=n_boot, seed=seed)
            for a, b in itertools.combinations(variants, 2)
        ]
    if "minibatch-full" not in result.observables:
        return
    n = len(result.seeds)
    for label in [k for k in result.observables if k.startswith("svag-")]:
        for obs in OBSERVABLES:
            a, b = result.observables[label][obs][:, -1], result.observables["minibatch-full"][obs][:, -1]
            if n < 2:
                continue
            value = float(a.mean() - b.mean())
            se = math.hypot(a.std(ddof=1), b.std(ddof=1)) / math.sqrt(n)
            resolved = bool(math.isfinite(se) and abs(value) > 1.96 * se)
            result.cross_check.append(
                {
                    "a": label,
                    "b": "minibatch-full",
                    "observable": obs,
                    "difference": value,
                    "se": se,
                    "resolved": resolved,
                }
            )
