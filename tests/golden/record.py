"""The golden set: numbers the simulators and the commands built on them give today, at explicit
sizes that depend on no default of the CLI or the report.

    python tests/golden/record.py [GROUP ...]     (groups: simulate, variants, weak_order, check)
    python tests/golden/record.py GROUP --only NAME,...   (recompute some cases, keep the others)

writes ``tests/golden/<group>.json``; ``tests/test_golden.py`` recomputes every case and compares.
Each case is a function of nothing (fixed seeds, sizes, hyperparameters) returning JSON-able data:

* ``simulate``: what ``derive simulate`` computes (the same library calls, in-process) for every
  built-in combination of generated/: the optimizer and the SDE on a 3-d quadratic, float64, mean
  loss, its standard error, and the mean and variance of x at the recorded steps (order-2 modules
  also with ``--scheme weak2``);
* ``variants``: the other entry points of the kernels on a few modules: float32, substeps, weak2,
  coupled runs from burned-in states, ``burn_in``, the double well and the full-H quadratic, user
  Numba landscapes, user specs and a ``cdf:`` law generated on demand, and the module-level kernels
  that the network validation calls (``sde_step``, ``hvp_vector``, ``optimizer_step``, ``drift``,
  ``diffusion``, the streams);
* ``weak_order``: ``derive weak-order sgd`` and ``adam`` (JSON, wall times removed) at fixed etas
  and paths;
* ``check``: ``derive check --only ROW --paths N --format json`` for a few rows (seconds removed).

A case that raises :class:`derive.errors.DeriveError` records its message (a divergence at these
sizes is a result too).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from derive import simulate as sim  # noqa: E402
from derive.codegen.catalog import builtin_combinations  # noqa: E402
from derive.combination import Combination  # noqa: E402
from derive.errors import DeriveError  # noqa: E402

GROUPS = ("simulate", "variants", "weak_order", "check")

#: the sizes of every simulate case (``derive simulate OPT --compare optimizer,sde --dim 3 --paths 48
#: --steps 30 --eta 0.05 --sigma 1 --seed 5 --lam-min 1 --lam-max 2 --records 4``)
DIM, PATHS, STEPS, ETA, SIGMA, SEED = 3, 48, 30, 0.05, 1.0, 5
RECORD = np.array([0, 10, 20, 30])
LAM = np.linspace(1.0, 2.0, DIM)


def _floats(a) -> list:
    """Exact float64 values as a (nested) list; JSON writes them by repr, which round-trips."""
    return np.asarray(a, dtype=np.float64).tolist()


def summary(run: sim.Run, path: bool = False) -> dict:
    out = {
        "label": run.label,
        "loss_mean": _floats(run.loss_mean),
        "loss_se": _floats(run.loss_se),
        "mean": _floats(run.mean),
        "var": _floats(run.var),
    }
    if path:
        out["path"] = _floats(run.path)
        if run.path_coarse is not None:
            out["path_coarse"] = _floats(run.path_coarse)
    return out


def guarded(fn: Callable[[], dict]) -> dict:
    try:
        return fn()
    except DeriveError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _x0(dtype=np.float64, paths=PATHS, dim=DIM, seed=SEED):
    return sim.random_start(paths, dim, seed, 1.0, dtype)


def _common(**kw) -> dict:
    out = dict(eta=ETA, sigma=SIGMA, steps=STEPS, seed=SEED, landscape=sim.quadratic(LAM), record=RECORD)
    out.update(kw)
    return out


# ---- simulate: every built-in combination ------------------------------------------------------
def simulate_case(combo: Combination) -> Callable[[], dict]:
    def case() -> dict:
        x0 = _x0()
        out = {"optimizer": guarded(lambda: summary(sim.run("optimizer", combo, x0, **_common())))}
        out["sde"] = guarded(lambda: summary(sim.run("sde", combo, x0, **_common())))
        if combo.order == 2:
            out["sde_weak2"] = guarded(lambda: summary(sim.run("sde", combo, x0, **_common(scheme="weak2"))))
        return out

    return case


def simulate_cases() -> dict[str, Callable[[], dict]]:
    return {c.module_name: simulate_case(c) for c in builtin_combinations()}


# ---- variants: the other entry points ------------------------------------------------------------
def _user_quadratic(with_hvp: bool):
    from numba import njit

    @njit
    def grad_fn(x, lp, out):
        for j in range(x.shape[0]):
            out[j] = lp[j] * x[j] + lp[3] * x[j] * x[j] * x[j]

    @njit
    def loss_fn(x, lp):
        acc = 0.0
        for j in range(x.shape[0]):
            acc += 0.5 * lp[j] * x[j] * x[j] + 0.25 * lp[3] * x[j] ** 4
        return acc

    @njit
    def hvp_fn(x, u, lp, out):
        for j in range(x.shape[0]):
            out[j] = (lp[j] + 3.0 * lp[3] * x[j] * x[j]) * u[j]

    params = np.array([1.0, 1.5, 2.0, 0.3])
    return sim.user_landscape(grad_fn, loss_fn, params, "user quartic", DIM, hvp_fn if with_hvp else None)


def _runs(combo: Combination, hyper=None, dtype32=True, coupled=True, users=True, module_dir=None) -> dict:
    """Every run entry point of ``combo``'s module at the golden sizes."""
    x0 = _x0()
    kw = dict(hyper=hyper, module_dir=module_dir)
    out = {}
    out["sde_substeps3"] = guarded(lambda: summary(sim.run("sde", combo, x0, **_common(substeps=3, **kw))))
    out["sde_weak2_sub2_keep"] = guarded(
        lambda: summary(sim.run("sde", combo, x0[:20], **_common(scheme="weak2", substeps=2, keep=True, **kw)), True)
    )
    out["sde_floor"] = guarded(lambda: summary(sim.run("sde", combo, x0, **_common(boundary="floor", **kw))))
    out["optimizer_keep"] = guarded(
        lambda: summary(sim.run("optimizer", combo, x0[:20], **_common(keep=True, **kw)), True)
    )
    if dtype32:
        x32 = _x0(np.float32)
        out["sde_float32"] = guarded(lambda: summary(sim.run("sde", combo, x32, **_common(**kw))))
        out["optimizer_float32"] = guarded(lambda: summary(sim.run("optimizer", combo, x32, **_common(**kw))))
        out["sde_float32_weak2"] = guarded(lambda: summary(sim.run("sde", combo, x32, **_common(scheme="weak2", **kw))))
    for name, land in (("double_well", sim.double_well(DIM)), ("rotated", sim.rotated_quadratic(LAM))):
        start = _x0() * 0.5 + (1.0 if name == "double_well" else 0.0)
        out[f"sde_{name}"] = guarded(lambda: summary(sim.run("sde", combo, start, **_common(landscape=land, **kw))))  # noqa: B023
        out[f"optimizer_{name}"] = guarded(
            lambda: summary(sim.run("optimizer", combo, start, **_common(landscape=land, **kw)))  # noqa: B023
        )
    if users:
        land = _user_quadratic(combo.order == 2)
        out["sde_user"] = guarded(lambda: summary(sim.run("sde", combo, x0, **_common(landscape=land, **kw))))
        out["optimizer_user"] = guarded(
            lambda: summary(sim.run("optimizer", combo, x0, **_common(landscape=land, **kw)))
        )
    if coupled:
        base = Combination(combo.optimizer, combo.noise, nu=combo.nu)
        start = guarded(
            lambda: {
                "states": _floats(
                    sim.burn_in(
                        base, x0, eta=ETA, sigma=SIGMA, steps=25, seed=SEED + 1, landscape=sim.quadratic(LAM), **kw
                    )
                )
            }
        )
        out["burn_in"] = start
        state = np.asarray(start["states"]) if "states" in start else None
        k0 = 25 if state is not None else 0

        def coupled_run(scheme: str, substeps: int, landscape=None, keep=False):
            chain, sde = sim.run_coupled(
                combo,
                x0[: 20 if keep else PATHS],
                **_common(
                    scheme=scheme,
                    substeps=substeps,
                    start=None if state is None else state[:, : 20 if keep else PATHS],
                    k0=k0,
                    keep=keep,
                    **({"landscape": landscape} if landscape else {}),
                    **kw,
                ),
            )
            return {"optimizer": summary(chain, keep), "sde": summary(sde, keep)}

        out["coupled_euler"] = guarded(lambda: coupled_run("euler", 1))
        out["coupled_weak2_sub3_keep"] = guarded(lambda: coupled_run("weak2", 3, keep=True))
        if users:
            out["coupled_user"] = guarded(lambda: coupled_run("euler", 2, landscape=_user_quadratic(combo.order == 2)))
        out["coupled_rotated"] = guarded(lambda: coupled_run("weak2", 1, landscape=sim.rotated_quadratic(LAM)))
    return out


def _kernels(combo: Combination, hyper=None) -> dict:
    """The module-level kernels the network validation calls, on fixed arrays."""
    module = sim.load_module(combo)
    values = sim.hyperparameters(combo.optimizer, ETA, SIGMA, hyper)
    rng = np.random.default_rng(3)
    n, d = 5, 4
    out = {}
    if not module.SDE_UNAVAILABLE:
        p = np.array([values[name] for name in module.SDE_PARAMS])
        S = len(module.STATE)
        state = rng.standard_normal((S, n, d))
        state[1:] = np.abs(state[1:]) + 0.1
        g = rng.standard_normal((n, d))
        xi = rng.standard_normal((module.NOISE_SOURCES, n, d))
        if module.HVP:
            u = np.zeros((n, d))
            module.hvp_vector(state, g, 0.3, 0.01, p, u)
            out["hvp_vector"] = _floats(u)
            module.sde_step(state, g, xi, 0.3, 0.01, p, 1.5 * u)
        else:
            module.sde_step(state, g, xi, 0.3, 0.01, p)
        out["sde_step"] = _floats(state)
        args = [float(v) for v in state[:, 1, 2]] + [0.7] + ([0.2] if module.HVP else []) + [0.3, p]
        out["drift"] = _floats(module.drift(*args))
        args = [float(v) for v in state[:, 1, 2]] + [0.7, 0.3, p]
        out["diffusion"] = _floats(module.diffusion(*args))
        out["stream_normals"] = _floats(module.stream_normals(SEED, module.SDE_STREAM, 3, 7))
        x0 = _x0(paths=6)
        out["simulate_sde"] = [
            _floats(a) for a in module.simulate_sde(x0, p, LAM, 6, np.array([0, 3, 6]), SEED, 4, True)
        ]
    po = np.array([values[name] for name in module.OPT_PARAMS])
    n_opt = len(module.OPT_STATE)
    state = rng.standard_normal((n_opt, n, d))
    state[1:] = np.abs(state[1:]) + 0.1
    g = rng.standard_normal((n, d))
    draws = len(getattr(module, "OPT_DRAWS", ("zeta",)))
    zeta = rng.standard_normal((n, d) if draws == 1 else (draws, n, d))
    module.optimizer_step(state, g, zeta, 4, po)
    out["optimizer_step"] = _floats(state)
    out["stream_zetas"] = _floats(module.stream_zetas(SEED, 3, 7))
    out["simulate_optimizer"] = [
        _floats(a) for a in module.simulate_optimizer(_x0(paths=6), po, LAM, 6, np.array([0, 3, 6]), SEED, 4, True)
    ]
    return out


#: (module, hyperparameters) of the variants: one state, two and three states, order 2 (with and
#: without aux states), a quantile-coupled law, a real nu (no coupling), Lion's two draws
VARIANT_COMBOS = {
    "signsgd_gaussian_paper_full": (Combination("signsgd"), None),
    "adam_gaussian_paper_full": (Combination("adam"), {"beta1": 0.9, "beta2": 0.99}),
    "adam_gaussian_paper_published": (Combination("adam", form="published"), {"beta1": 0.9, "beta2": 0.99}),
    "rmspropw_gaussian_paper_full": (Combination("rmspropw"), {"beta": 0.99, "theta": 0.1}),
    "adamw_gaussian_paper_full_order2": (Combination("adamw", order=2), {"beta1": 0.9, "beta2": 0.99}),
    "sgd_gaussian_paper_full_order2": (Combination("sgd", order=2), None),
    "signsgd_studentt3_paper_full": (Combination("signsgd", "student-t", nu=3), None),
    "signsgd_studentt2p5_paper_full": (Combination("signsgd", "student-t", nu=2.5), None),
    "lion_gaussian_paper_full": (Combination("lion"), None),
    "clipsgd_cauchy_paper_full": (Combination("clipsgd", "cauchy"), None),
}

#: generated on demand into a module directory: a user spec and a law given by its CDF
ONDEMAND_COMBOS = {
    "adabelief_gaussian_paper_full": (Combination(str(ROOT / "examples" / "adabelief.py") + ":adabelief"), None),
    "signsgd_cdf_logistic": (Combination("signsgd", "cdf:1/(1+exp(-y))"), None),
}


def variant_cases(module_dir: Path | None = None) -> dict[str, Callable[[], dict]]:
    cases = {}
    for name, (combo, hyper) in VARIANT_COMBOS.items():
        cases[f"{name}/runs"] = lambda c=combo, h=hyper: _runs(c, h)
        cases[f"{name}/kernels"] = lambda c=combo, h=hyper: _kernels(c, h)
    for name, (combo, hyper) in ONDEMAND_COMBOS.items():
        cases[f"{name}/runs"] = lambda c=combo, h=hyper: _runs(
            c, h, dtype32=False, users=False, module_dir=module_dir or _tmp_module_dir()
        )
    return cases


def _tmp_module_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="derive-golden-"))


# ---- weak order and check ----------------------------------------------------------------------
def _strip(data, keys=("seconds",)):
    """``data`` without the wall-time entries (named in ``keys``), recursively."""
    if isinstance(data, dict):
        return {k: _strip(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [_strip(v, keys) for v in data]
    return data


def weak_order_case(optimizer: str) -> Callable[[], dict]:
    def case() -> dict:
        from derive.validate.weak_order import weak_order

        # `derive weak-order OPT --etas 0.16,0.08 --paths 400 --format json`, every other flag at the
        # values written here
        study = weak_order(
            optimizer,
            etas=(0.16, 0.08),
            paths=400,
            scheme="weak2",
            substeps=None,
            seed=0,
            boundary="reflect",
            burn=True,
            order=1,
            landscape="quadratic",
        )
        return _strip(json.loads(json.dumps(study.to_json())))

    return case


CHECK_ROWS = ("sgd", "signsgd", "rmspropw", "adamw")
CHECK_PATHS = 300


def check_case(name: str) -> Callable[[], dict]:
    def case() -> dict:
        from derive.theory.checks import Sim, run_checks, to_dict

        # `derive check --only NAME --paths 300 --seed 11 --format json`
        rows = run_checks([name], Sim(paths=CHECK_PATHS, seed=11), progress=None)
        return _strip(json.loads(json.dumps(to_dict(rows))))

    return case


def cases(group: str) -> dict[str, Callable[[], dict]]:
    if group == "simulate":
        return simulate_cases()
    if group == "variants":
        return variant_cases()
    if group == "weak_order":
        return {o: weak_order_case(o) for o in ("sgd", "adam")}
    if group == "check":
        return {r: check_case(r) for r in CHECK_ROWS}
    raise SystemExit(f"unknown group {group!r}; groups: {', '.join(GROUPS)}")


def compute(group: str, names=None, progress: bool = True) -> dict:
    out = {}
    for name, fn in cases(group).items():
        if names is not None and name not in names:
            continue
        if progress:
            print(f"[golden] {group}/{name}", file=sys.stderr, flush=True)
        out[name] = json.loads(json.dumps(fn()))  # exactly what the file holds
    return out


def path_of(group: str) -> Path:
    return HERE / f"{group}.json"


def load(group: str) -> dict:
    return json.loads(path_of(group).read_text())


def main(argv: list[str]) -> int:
    """``GROUP ...`` records whole groups; ``GROUP --only NAME,...`` recomputes those cases of one
    group and keeps the others (after a deliberate change of some numbers)."""
    if "--only" in argv:
        i = argv.index("--only")
        (group,), names = argv[:i], argv[i + 1].split(",")
        data = load(group)
        unknown = [n for n in names if n not in cases(group)]
        if unknown:
            raise SystemExit(f"unknown {group} case(s) {', '.join(unknown)}")
        data.update(compute(group, names))
    else:
        for group in argv or GROUPS:
            data = compute(group)
            path_of(group).write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
            print(f"wrote {path_of(group)} ({len(data)} cases)")
        return 0
    path_of(group).write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"wrote {path_of(group)} ({', '.join(names)} recomputed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
