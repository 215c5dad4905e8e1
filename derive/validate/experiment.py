"""The validation experiment of reference section 7: the optimizer against its SDEs, coupled.

Networks (:func:`validate`), per seed: the real ``torch.optim`` optimizer on the flattened float64
parameter vector, fed the full-batch gradient plus ``sigma * zeta``; each SDE (paper/full,
paper/published where it differs, and for RMSprop(W), Adam(W) the noise-dominated SDE) advanced by
the generated ``sde_step`` on the same vector, its drift fed autograd's gradient at the SDE's own
parameters, with ``substeps`` steps of eta/substeps per optimizer step and ``scheme`` euler or
weak2 (:mod:`derive.validate.steppers`). Everything starts from the same parameters; seeds change
only the noise; with ``coupled`` (default) the SDEs are driven by the optimizer's own noise
(docs/validation.md, "Coupling"), so the fidelity, a mean of paired differences
(:mod:`derive.validate.fidelity`), is resolved with a handful of seeds. An optimizer replicate on
independent noise shows what uncoupled runs would resolve.

A trajectory whose loss or gradient becomes non-finite stops there: the step and seed are recorded,
its losses from that step on are NaN, every other trajectory runs on, and fidelities use the steps
before.

Quadratic (:func:`validate_quadratic`): the same comparison with the generated path simulators
(:func:`derive.simulate.run_coupled`), paths instead of seeds.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

import numpy as np

from . import ValidationInputError, require_torch
from .fidelity import difference, fidelity
from .results import Result, Trajectory
from .samplers import zeta_sampler
from .sdes import OPTIMIZERS, order_of, sde_kinds
from .steppers import REPLICATE_STREAM, SDEPath, TorchOptimizerPath
from .torch_adapter import Problem, torch_optimizer

__all__ = ["Problem", "validate", "validate_quadratic", "sde_kinds", "torch_optimizer"]


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


def _check_integrator(scheme: str, substeps: int) -> str:
    from ..simulate import SimulationInputError
    from ..simulate import _check_integrator as check

    try:
        check(scheme, substeps, "reflect")
    except SimulationInputError as exc:
        raise ValidationInputError(str(exc)) from None
    return f"{scheme}, {substeps} substep{'s' if substeps > 1 else ''} of eta/{substeps}"


def _compare_all(result: Result, kinds, n_boot: int, seed: int) -> None:
    """Fidelities of every trajectory and the paired differences between the SDEs."""
    reference = result.trajectories["optimizer"]
    for label, traj in result.trajectories.items():
        if label == "optimizer":
            continue
        if traj.diverged is not None:
            where = f" (seed {traj.diverged['seed']})" if "seed" in traj.diverged else ""
            result.notes.append(
                f"{label} diverged at step {traj.diverged['step']}{where}; its fidelity uses the steps before it"
            )
        result.fidelity[label] = fidelity(reference.loss, traj.loss, n_boot=n_boot, seed=seed)
    labels = [k[0] for k in kinds]
    for a, b in itertools.combinations(labels, 2):
        result.differences.append(
            difference(
                reference.loss, result.trajectories[a].loss, result.trajectories[b].loss, a, b, n_boot=n_boot, seed=seed
            )
        )


def validate(
    problem: Problem | str,
    optimizer: str,
    *,
    noise: str = "gaussian",
    nu=None,
    eta: float = 0.01,
    sigma: float = 0.1,
    steps: int = 200,
    seeds=(0, 1, 2),
    hyper: dict | None = None,
    compare=None,
    replicate: bool = True,
    init_seed: int = 0,
    n_boot: int = 1000,
    scheme: str = "euler",
    substeps: int = 1,
    coupled: bool = True,
    boundary: str = "reflect",
    burn_in: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Run the optimizer and its SDEs on ``problem`` (a :class:`Problem` or a built-in model name).

    ``compare``: SDE labels (``full``, ``published``, ``noise-dominated``); default per
    :func:`sde_kinds`. ``scheme``/``substeps``: the SDEs' integrator. ``coupled``: drive the SDEs
    by the optimizer's noise (default). ``burn_in``: optimizer steps with x held at the start before
    the run (auxiliary states burned in, no initial layer); the SDEs start from the optimizer's
    burned-in states at t = burn_in eta. ``replicate`` adds an independent run of the optimizer: its
    fidelity is the Monte Carlo floor of uncoupled runs at this number of seeds. ``progress(done,
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
        return _validate(
            problem,
            optimizer,
            noise=noise,
            nu=nu,
            eta=eta,
            sigma=sigma,
            steps=steps,
            seeds=seeds,
            hyper=hyper,
            compare=compare,
            replicate=replicate,
            init_seed=init_seed,
            n_boot=n_boot,
            scheme=scheme,
            substeps=substeps,
            coupled=coupled,
            boundary=boundary,
            burn_in=burn_in,
            progress=progress,
        )
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])


def _validate(
    problem,
    optimizer,
    *,
    noise,
    nu,
    eta,
    sigma,
    steps,
    seeds,
    hyper,
    compare,
    replicate,
    init_seed,
    n_boot,
    scheme,
    substeps,
    coupled,
    boundary,
    burn_in,
    progress,
) -> Result:
    from ..combination import Combination
    from ..runtime.schemes import BOUNDARIES
    from ..simulate import hyperparameters, load_module

    optimizer = optimizer.lower()
    seeds = _check_inputs(optimizer, eta, sigma, steps, seeds)
    integrator = _check_integrator(scheme, substeps)
    if boundary not in BOUNDARIES:
        raise ValidationInputError(f"unknown boundary rule {boundary!r}; allowed: {', '.join(BOUNDARIES)}")
    if isinstance(problem, str):
        problem = Problem.builtin(problem, init_seed)
    values = hyperparameters(optimizer, eta, sigma, hyper)
    values["_boundary"] = BOUNDARIES[boundary]
    sample = zeta_sampler(noise, nu)
    kinds = sde_kinds(optimizer, noise, nu, compare)
    if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)) or burn_in < 0:
        raise ValidationInputError(f"burn_in must be an integer >= 0, got {burn_in!r}")
    x0 = problem.initial()
    started = time.perf_counter()

    def make_sde(regime, form, order=1):
        module = load_module(Combination(optimizer, noise, regime, form, nu=nu, order=order))
        if coupled and (module.COUPLING is None or not module.COUPLABLE_LAW):
            raise ValidationInputError(f"{optimizer} {regime}/{form} under {noise}: no coupled run; use coupled=False")
        start = None
        if burn_in:
            burner = TorchOptimizerPath(problem, optimizer, values, x0, seeds, sample, burn_in=burn_in)
            start = burner.states(module.STATE)
        return SDEPath(
            problem,
            module,
            values,
            x0,
            seeds,
            scheme=scheme,
            substeps=substeps,
            coupled=coupled,
            sample=sample,
            noise=noise,
            nu=nu,
            start=start,
            k0=burn_in,
        )

    plans = [
        (
            "optimizer",
            f"torch {optimizer}",
            lambda: TorchOptimizerPath(problem, optimizer, values, x0, seeds, sample, burn_in=burn_in),
        )
    ]
    if replicate:
        plans.append(
            (
                "optimizer replicate",
                f"torch {optimizer}, independent noise (Monte Carlo floor, uncoupled)",
                lambda: TorchOptimizerPath(
                    problem, optimizer, values, x0, seeds, sample, REPLICATE_STREAM, burn_in=burn_in
                ),
            )
        )
    plans += [
        (
            label,
            f"SDE {regime}/{form}" + (" order 2" if order_of(label) == 2 else ""),
            lambda r=regime, f=form, o=order_of(label): make_sde(r, f, o),  # noqa: B008 - binds this label's order
        )
        for label, regime, form in kinds
    ]
    total, done = len(plans) * steps, 0
    trajectories: dict[str, Trajectory] = {}
    for label, description, make in plans:
        t0 = time.perf_counter()
        path = make()
        loss, diverged = np.full((len(seeds), steps + 1), np.nan), None
        for k in range(steps + 1):
            values_k = path.evaluate()
            if not np.all(np.isfinite(values_k)):
                diverged = {"step": k, "seed": seeds[int(np.argmin(np.isfinite(values_k)))]}
                break
            loss[:, k] = values_k
            if k == steps:
                break
            path.advance(k + 1)
            done += 1
            if progress is not None:
                progress(done, total)
        done = len(trajectories) * steps + steps  # a divergence skipped the rest of this trajectory
        if progress is not None:
            progress(done, total)
        trajectories[label] = Trajectory(label, description, loss, diverged, time.perf_counter() - t0)
    problem.bind(require_torch().from_numpy(x0.copy()))  # the module's parameters back at the start

    result = Result(
        problem.name,
        optimizer,
        noise if nu is None else f"{noise}(nu={nu})",
        float(eta),
        float(sigma),
        int(steps),
        seeds,
        dict(values),
        problem.dim,
        trajectories,
        integrator,
        coupled,
    )
    reference = trajectories["optimizer"]
    if reference.diverged is not None:
        result.notes.append(
            f"the optimizer diverged at step {reference.diverged['step']} (seed "
            f"{reference.diverged['seed']}); fidelities use the steps before it"
        )
    _compare_all(result, kinds, n_boot, seeds[0])
    result.seconds = time.perf_counter() - started
    return result


def validate_quadratic(
    optimizer: str,
    *,
    noise: str = "gaussian",
    nu=None,
    eta: float = 0.01,
    sigma: float = 0.1,
    steps: int = 500,
    paths: int = 2000,
    seed: int = 0,
    lam=(1.0, 4.0, 10.0, 0.5),
    hyper: dict | None = None,
    compare=None,
    replicate: bool = True,
    n_boot: int = 500,
    scheme: str = "euler",
    substeps: int = 1,
    coupled: bool = True,
    boundary: str = "reflect",
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Optimizer against its SDEs on f = sum lam x^2/2 with the generated path simulators: path i of
    every simulator starts from the same random point (N(0, 1) per coordinate) and, with ``coupled``,
    the SDEs share path i's optimizer noise (:func:`derive.simulate.run_coupled`); bands and the
    bootstrap run over paths."""
    from ..combination import Combination
    from ..simulate import DivergenceError, hyperparameters, quadratic, random_start, run, run_coupled

    optimizer = optimizer.lower()
    _check_inputs(optimizer, eta, sigma, steps, [seed])
    integrator = _check_integrator(scheme, substeps)
    if isinstance(paths, bool) or not isinstance(paths, (int, np.integer)) or paths < 2:
        raise ValidationInputError(f"paths must be an integer >= 2, got {paths!r}")
    started = time.perf_counter()
    land = quadratic(list(lam))
    x0 = random_start(paths, len(lam), seed)
    record = np.unique(np.linspace(0, steps, min(steps, 100) + 1).round().astype(np.int64))
    kinds = sde_kinds(optimizer, noise, nu, compare)
    common = dict(eta=eta, sigma=sigma, steps=steps, landscape=land, hyper=hyper, record=record)
    nan = np.full((paths, record.size), np.nan)
    trajectories: dict[str, Trajectory] = {}

    def timed(label, description, simulate):
        t0 = time.perf_counter()
        try:
            loss, diverged = simulate(), None
        except DivergenceError as exc:
            loss, diverged = nan, {"step": exc.step, "paths": exc.paths}
        trajectories[label] = Trajectory(label, description, loss, diverged, time.perf_counter() - t0)
        if progress is not None:
            progress(len(trajectories), len(kinds) + 1 + replicate)

    opt = Combination(optimizer, noise, nu=nu)
    timed(
        "optimizer",
        f"{optimizer} (generated optimizer step)",
        lambda: run("optimizer", opt, x0, seed=seed, **common).loss.T.copy(),
    )
    if replicate:
        timed(
            "optimizer replicate",
            f"{optimizer}, independent noise (Monte Carlo floor, uncoupled)",
            lambda: run("optimizer", opt, x0, seed=seed + 1, **common).loss.T.copy(),
        )
    for label, regime, form in kinds:
        combo = Combination(optimizer, noise, regime, form, nu=nu, order=order_of(label))
        if coupled:
            simulate = lambda c=combo: run_coupled(
                c,
                x0,
                seed=seed,
                scheme=scheme,
                substeps=substeps,  # noqa: E731
                boundary=boundary,
                **common,
            )[1].loss.T.copy()
        else:
            simulate = lambda c=combo: run(
                "sde",
                c,
                x0,
                seed=seed + 2,
                scheme=scheme,
                substeps=substeps,  # noqa: E731
                boundary=boundary,
                **common,
            ).loss.T.copy()
        timed(label, f"SDE {regime}/{form}", simulate)
    values = hyperparameters(optimizer, eta, sigma, hyper)
    result = Result(
        "quadratic",
        optimizer,
        noise if nu is None else f"{noise}(nu={nu})",
        float(eta),
        float(sigma),
        int(steps),
        [int(seed)],
        values,
        len(lam),
        trajectories,
        integrator,
        coupled,
        record=record,
        unit="paths",
    )
    result.notes.append(f"f = sum lam x^2/2 with lam = {list(lam)}; {paths} paths from N(0, 1) starts")
    _compare_all(result, kinds, n_boot, seed)
    result.seconds = time.perf_counter() - started
    return result
