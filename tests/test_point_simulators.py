"""Generated simulators of the optimizers with gradients at another point, noise through the Hessian,
step-count coefficients and other clocks (issue 19; reference section 12): usam, schedulefree_sgd,
adagrad.

The kernels are run through ``run_paths`` on the built-in landscapes and compared, path by path, with
the reference's update and SDE written out here in NumPy from the same random numbers (the module's
own streams): every quantity is exact in floating point, so the tolerances are rounding only, and a
formula with one term wrong (the mutants) is visibly different.
"""

from __future__ import annotations

import numpy as np
import pytest

from derive.combination import Combination
from derive.runtime.paths import PathRun
from derive.runtime.schemes import SCHEMES
from derive.simulate import (
    SimulationInputError,
    full_quadratic,
    hyperparameters,
    load_module,
    quadratic,
    run_coupled,
)
from derive.theory.check_table import TABLE
from derive.theory.checks import Sim

RNG = np.random.default_rng(19)


def _random_quadratic(d: int):
    """A random symmetric positive definite H (not diagonal: H u mixes the coordinates)."""
    A = RNG.standard_normal((d, d))
    return full_quadratic(A @ A.T / d + np.eye(d))


def _params(mod, names, optimizer: str, eta: float, sigma: float, hyper: dict, dtype):
    values = hyperparameters(optimizer, eta, sigma, hyper)
    return np.array([values[n] for n in names], dtype=dtype)


def _one_run(mod, land, x0, p, steps, seed, kind: str):
    """States of every path after ``steps`` steps (the SDE: euler, one substep of eta)."""
    start = x0[None].copy()
    sde = kind == "sde"
    r = PathRun(
        sde_start=start if sde else None, opt_start=None if sde else start, sde_params=p if sde else None,
        opt_params=None if sde else p, land_params=land.params, land_code=land.code, steps=steps,
        record=np.array([steps]), seed=seed, chunk=2, keep=True, step_time=float(p[0]), scheme=SCHEMES["euler"],
    )  # fmt: skip
    out = mod.run_paths(r)
    assert (out.diverged == -1).all()
    return out.xs[0, 0]


# ---- usam ---------------------------------------------------------------------------------------
def _usam_chain(x0, H, eta, r, sigma, zetas, steps):
    """x <- x - eta (H (x + r (H x + sigma zeta)) + sigma zeta): the gradient at x + r*grad, one draw."""
    x = x0.copy()
    for k in range(steps):
        zeta = zetas[:, k]
        x = x - eta * ((x + r * (x @ H.T + sigma * zeta)) @ H.T + sigma * zeta)
    return x


def _usam_sde(x0, H, eta, r, sigma, normals, steps, hessian_noise=True):
    """Euler with dt = eta of dx = -(g + r H g) dt + sqrt(eta) (I + r H) sigma dW (reference section 12);
    ``hessian_noise`` False: the mutant without r H in the diffusion."""
    x = x0.copy()
    for k in range(steps):
        g, dw = x @ H.T, np.sqrt(eta) * normals[:, k]
        noise = np.sqrt(eta) * sigma * (dw + (r * dw @ H.T if hessian_noise else 0.0))
        x = x - eta * (g + r * g @ H.T) + noise
    return x


@pytest.mark.parametrize("dtype", [np.float64, pytest.param(np.float32, marks=pytest.mark.slow)])
def test_usam_kernels_are_the_reference_update_and_sde(dtype):
    """Optimizer and SDE of usam on a random full quadratic (H u mixes coordinates), 3 paths x 20 steps,
    against section 12's formulas from the same draws; the SDE without r H in the diffusion is off."""
    mod = load_module(Combination("usam"))
    assert mod.OPT_POINT and mod.HESSIAN_NOISE and mod.HVP
    n, d, steps, seed, eta, r, sigma = 3, 3, 20, 5, 0.05, 0.3, 0.8
    land = _random_quadratic(d)
    H = land.params.reshape(d, d)
    x0 = RNG.standard_normal((n, d)).astype(dtype)
    zetas = np.stack([mod.stream_zetas(seed, i, steps * d) for i in range(n)]).reshape(n, steps, d)
    normals = np.stack([mod.stream_normals(seed, mod.SDE_STREAM, i, steps * d) for i in range(n)]).reshape(n, steps, d)
    tol = dict(rtol=1e-11, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    po = _params(mod, mod.OPT_PARAMS, "usam", eta, sigma, {"r": r}, dtype)
    chain = _one_run(mod, land, x0, po, steps, seed, "optimizer")
    np.testing.assert_allclose(chain, _usam_chain(x0.astype(float), H, eta, r, sigma, zetas, steps), **tol)
    ps = _params(mod, mod.SDE_PARAMS, "usam", eta, sigma, {"r": r}, dtype)
    sde = _one_run(mod, land, x0, ps, steps, seed, "sde")
    reference = _usam_sde(x0.astype(float), H, eta, r, sigma, normals, steps)
    np.testing.assert_allclose(sde, reference, **tol)
    mutant = _usam_sde(x0.astype(float), H, eta, r, sigma, normals, steps, hessian_noise=False)
    assert np.abs(mutant - reference).max() > 1e-2


@pytest.mark.slow
def test_usam_coupled_sde_is_the_optimizer_on_the_quadratic():
    """On a quadratic USAM's drift and diffusion are exact, so the coupled Euler run with one substep
    of eta (dW = -sqrt(eta) zeta, COUPLING_SIGN) reproduces the optimizer path by path; sigma 10% off in
    the SDE does not."""
    land = _random_quadratic(2)
    x0 = RNG.standard_normal((64, 2))
    common = dict(eta=0.02, sigma=1.0, steps=50, seed=3, landscape=land, hyper={"r": 0.2}, keep=True)
    chain, sde = run_coupled(Combination("usam"), x0, **common)
    assert np.abs(chain.path - sde.path).max() < 1e-10
    _, wrong = run_coupled(Combination("usam"), x0, sde_values={"sigma": 1.1}, **common)
    assert np.abs(chain.path - wrong.path).max() > 1e-2


def test_single_step_interfaces_refuse_a_gradient_at_another_point():
    mod = load_module(Combination("usam"))
    state, g = np.zeros((1, 2, 3)), np.zeros((2, 3))
    p = np.array([0.01, 0.1, 1.0])
    with pytest.raises(TypeError, match=r"gradient at grad\*r \+ x.*use run_paths"):
        mod.optimizer_step(state, g, np.zeros((2, 3)), 1, p)
    with pytest.raises(TypeError, match="noise through the Hessian"):
        mod.sde_step(state, g, np.zeros((1, 2, 3)), 0.01, 0.01, p)


def _entry(check: str):
    return next(e for e in TABLE if e.check == check)


def test_usam_check_row_passes_and_rejects_the_diffusion_without_r_h():
    """`derive check`'s usam row at 1000 paths (about 3 s): the stationary loss of the chain agrees
    with the SDE's law and rejects the law without r H in the diffusion."""
    (row,) = _entry("usam").rows(Sim(paths=1000))
    assert row.ok, row
    (mutant,) = row.mutants
    assert row.mutant_detected(mutant) and abs(row.mutants[mutant] - row.estimate) > 6 * row.se


# ---- adagrad ------------------------------------------------------------------------------------
def _adagrad_chain(x0, s0, lam, eta, eps, sigma, zetas, steps):
    """s <- s + grad^2, x <- x - eta grad/(sqrt(s) + eps), grad = lam x + sigma zeta."""
    x, s = x0.copy(), s0.copy()
    for k in range(steps):
        grad = lam * x + sigma * zetas[:, k]
        s = s + grad**2
        x = x - eta * grad / (np.sqrt(s) + eps)
    return x, s


def _adagrad_sde(x0, V0, lam, eta, eps, sigma, normals, steps, v_noise=True):
    """Split Euler with dt = eta^2 (the clock t = k eta^2) of section 12's SDE, V = eta^2 s:
    dV = (g^2 + sigma^2) dt - 2 eta g sigma dW1 + sqrt(2) eta sigma^2 dW2 (V reflected at 0),
    dX = -g/(sqrt(V) + eta eps) dt + eta sigma/(sqrt(V) + eta eps) dW1, X's drift at the new V, its
    noise at V's noise-free predictor. ``v_noise`` False: the mutant without V's noise."""
    x, V, dt = x0.copy(), V0.copy(), eta**2
    for k in range(steps):
        g, w1, w2 = lam * x, np.sqrt(dt) * normals[:, k, 0], np.sqrt(dt) * normals[:, k, 1]
        b = g**2 + sigma**2
        new = np.abs(V + b * dt + v_noise * (-2 * eta * g * sigma * w1 + np.sqrt(2) * eta * sigma**2 * w2))
        x = x - g / (np.sqrt(new) + eta * eps) * dt + eta * sigma / (np.sqrt(V + b * dt) + eta * eps) * w1
        V = new
    return x, V


def test_adagrad_kernels_on_the_eta_squared_clock_from_its_first_step():
    """AdaGrad's optimizer kernel is PyTorch's rule; its SDE runs on t = k eta^2 with V = eta^2 s and,
    from s = 0, starts after the optimizer's first step (START_STEPS): its start is the optimizer's
    state after one step, mapped (sde_start, STATE_MAP), then steps - 1 steps of dt = eta^2 follow.
    Both against the reference from the same draws; the SDE without V's noise is off. No coupled runs:
    on its clock one step is dt = eta^2 (COUPLING None), refused in one line naming the clock."""
    from derive.simulate import quadratic, run

    combo = Combination("adagrad")
    mod = load_module(combo)
    assert mod.CLOCK == "k*eta**2" and mod.CLOCK_ETA_POWER == 2 and mod.START_STEPS == 1
    n, steps, seed, eta, sigma, eps, lam = 4, 30, 7, 0.05, 0.9, 1e-10, 1.5
    x0 = RNG.standard_normal((n, 1))
    zetas = np.stack([mod.stream_zetas(seed, i, steps) for i in range(n)])
    common = dict(eta=eta, sigma=sigma, steps=steps, seed=seed, landscape=quadratic([lam]), keep=True)
    chain = run("optimizer", combo, x0, record=[1, steps], **common)
    x1, s1 = _adagrad_chain(x0[:, 0], np.zeros(n), lam, eta, eps, sigma, zetas, 1)
    x_end, _ = _adagrad_chain(x0[:, 0], np.zeros(n), lam, eta, eps, sigma, zetas, steps)
    np.testing.assert_allclose(chain.path[:, :, 0], [x1, x_end], rtol=1e-12, atol=1e-12)
    sde = run("sde", combo, x0, record=[1, steps], **common)
    assert list(sde.steps) == [1, steps] and sde.times[-1] == pytest.approx(steps * eta**2)
    normals = np.stack([mod.stream_normals(seed, mod.SDE_STREAM, i, 2 * (steps - 1)) for i in range(n)])
    normals = normals.reshape(n, steps - 1, 2)
    reference, _ = _adagrad_sde(x1, eta**2 * s1, lam, eta, eps, sigma, normals, steps - 1)
    np.testing.assert_allclose(sde.path[:, :, 0], [x1, reference], rtol=1e-11, atol=1e-12)
    mutant, _ = _adagrad_sde(x1, eta**2 * s1, lam, eta, eps, sigma, normals, steps - 1, v_noise=False)
    assert np.abs(mutant - reference).max() > 1e-3
    with pytest.raises(Exception, match="record steps must be >= 1"):
        run("sde", combo, x0, record=[0, steps], **common)
    assert mod.COUPLING is None
    with pytest.raises(
        SimulationInputError, match=r"no coupled run: its SDE runs on the clock t = k\*eta\*\*2"
    ) as info:
        run_coupled(combo, x0, **common)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_adagrad_check_row_passes_and_rejects_the_sde_without_v_noise():
    """`derive check`'s adagrad row (Var x at t = 0.5 from V(0) = 0.5, 4000 paths, about 5 s warm)."""
    (row,) = _entry("adagrad").rows(Sim(paths=1000))
    assert row.ok, row
    (mutant,) = row.mutants
    assert row.mutant_detected(mutant)


# ---- schedulefree_sgd ---------------------------------------------------------------------------
def _schedulefree_chain(x0, H, eta, beta, sigma, zetas, steps):
    """y = (1 - beta) z + beta x; z <- z - eta (H y + sigma zeta); x <- (1 - c) x + c z, c = 1/(k + 1)."""
    x, z = x0.copy(), x0.copy()
    for k in range(1, steps + 1):
        y = (1 - beta) * z + beta * x
        z = z - eta * (y @ H.T + sigma * zetas[:, k - 1])
        x = (1 - 1 / (k + 1)) * x + z / (k + 1)
    return x, z


def _schedulefree_sde(x0, H, eta, beta, sigma, normals, steps, at_y=True):
    """Split Euler with dt = eta of dZ = -grad f(Y) dt + sqrt(eta) sigma dW, dX = (Z - X)/t dt, from
    X(0) = Z(0), 1/t at the end of each step (t_k = k eta), X reading the new Z; ``at_y`` False: the
    mutant with the gradient at X."""
    x, z = x0.copy(), x0.copy()
    for k in range(1, steps + 1):
        point = (1 - beta) * z + beta * x if at_y else x
        z = z - eta * point @ H.T + np.sqrt(eta) * sigma * np.sqrt(eta) * normals[:, k - 1]
        x = x + eta / (k * eta) * (z - x)
    return x, z


def test_schedulefree_kernels_take_the_gradient_at_y():
    """Schedule-free SGD's optimizer and SDE kernels on a random full quadratic, z starting at x
    (OPT_INITIAL, SDE_INITIAL 'x'), against the reference from the same draws; the gradient at x
    instead of y is off."""
    mod = load_module(Combination("schedulefree_sgd"))
    assert mod.OPT_POINT and mod.SDE_POINT and mod.OPT_INITIAL == ("x",) and mod.SDE_INITIAL == ("x",)
    n, d, steps, seed, eta, beta, sigma = 3, 2, 25, 9, 0.05, 0.8, 0.7
    land = _random_quadratic(d)
    H = land.params.reshape(d, d)
    x0 = RNG.standard_normal((n, d))
    zetas = np.stack([mod.stream_zetas(seed, i, steps * d) for i in range(n)]).reshape(n, steps, d)
    normals = np.stack([mod.stream_normals(seed, mod.SDE_STREAM, i, steps * d) for i in range(n)]).reshape(n, steps, d)
    start = np.stack([x0, x0])
    out = {}
    for kind, names in (("optimizer", mod.OPT_PARAMS), ("sde", mod.SDE_PARAMS)):
        p = _params(mod, names, "schedulefree_sgd", eta, sigma, {"beta": beta}, np.float64)
        sde = kind == "sde"
        r = PathRun(
            sde_start=start.copy() if sde else None, opt_start=None if sde else start.copy(),
            sde_params=p if sde else None, opt_params=None if sde else p, land_params=land.params,
            land_code=land.code, steps=steps, record=np.array([steps]), seed=seed, chunk=2, keep=True,
            step_time=eta, scheme=SCHEMES["euler"],
        )  # fmt: skip
        out[kind] = mod.run_paths(r).xs[0, 0]
    chain_x, _ = _schedulefree_chain(x0, H, eta, beta, sigma, zetas, steps)
    np.testing.assert_allclose(out["optimizer"], chain_x, rtol=1e-12, atol=1e-12)
    sde_x, _ = _schedulefree_sde(x0, H, eta, beta, sigma, normals, steps)
    np.testing.assert_allclose(out["sde"], sde_x, rtol=1e-12, atol=1e-12)
    assert np.abs(_schedulefree_sde(x0, H, eta, beta, sigma, normals, steps, at_y=False)[0] - sde_x).max() > 1e-3


def test_schedulefree_check_row_passes_and_rejects_a_wrong_sigma():
    """`derive check`'s schedulefree_sgd row (Var x at t = 2, eta = 0.02, 4000 paths)."""
    (row,) = _entry("schedulefree_sgd").rows(Sim(paths=1000))
    assert row.ok, row
    (mutant,) = row.mutants
    assert row.mutant_detected(mutant)


# ---- weak order (long: slow) ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer, landscape, etas, mutant, mutant_slope",
    [
        # the SDE without r (SGD's): its error is O(r) = O(sqrt(eta)), slope about 0.5 (measured 0.67)
        ("usam", "double-well", (0.08, 0.04, 0.02, 0.01), {"r": 0.0}, 0.8),
        # the gradient at z instead of y: an O(1) error, slope about 0 (measured 0.03)
        ("schedulefree_sgd", "quadratic", (0.16, 0.08, 0.04, 0.02, 0.01), {"beta": 0.0}, 0.3),
    ],
)
def test_weak_order_one_and_its_mutant(optimizer, landscape, etas, mutant, mutant_slope):
    """Coupled weak-order study (5000 paths, T = 2, about 30 s for usam): every eta resolved, slope in
    [0.8, 1.25]; the mutant SDE's slope below ``mutant_slope``. USAM holds r0 = r/sqrt(eta) = 0.5."""
    from derive.validate.weak_order import weak_order

    common = dict(landscape=landscape, etas=etas, paths=5000, refine=False)
    (row,) = weak_order(optimizer, **common).runs
    assert all(row.resolved) and 0.8 <= row.slope <= 1.25, row
    (wrong,) = weak_order(optimizer, sde_values=mutant, **common).runs
    assert all(wrong.resolved) and wrong.slope < mutant_slope, wrong


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["schedulefree_sgd", "adagrad"])
def test_float32_kernels_follow_float64(optimizer):
    """The float32 kernels (the start's dtype) track the float64 ones path by path (same draws)."""
    from derive.simulate import quadratic, run

    x0 = RNG.standard_normal((8, 3))
    common = dict(eta=0.05, sigma=0.5, steps=40, seed=2, landscape=quadratic([1.0, 2.0, 3.0]), keep=True)
    for kind in ("optimizer", "sde"):
        runs = [
            run(kind, Combination(optimizer), x0.astype(t), record=[40], **common) for t in (np.float64, np.float32)
        ]
        assert runs[1].path.dtype == np.float32
        np.testing.assert_allclose(runs[1].path, runs[0].path, rtol=1e-3, atol=1e-4)


def test_user_adagrad_with_a_warm_accumulator_starts_its_sde_at_the_mapped_state(tmp_path):
    """A user AdaGrad with s(0) = 0.1 (examples/adagrad_schedulefree.py:adagrad_warm): the SDE starts at
    t = 0 from V(0) = eta**2 * 0.1 (STATE_MAP), not from the optimizer's 0.1 (a factor 1/eta**2 off)."""
    from derive.simulate import _setup

    eta = 0.02
    combo = Combination("examples/adagrad_schedulefree.py:adagrad_warm")
    setup = _setup(
        combo, np.ones((3, 2)), eta=eta, sigma=1.0, steps=1, seed=0, landscape=quadratic([1.0, 2.0]), hyper=None,
        module_dir=tmp_path,
    )  # fmt: skip
    S0, _, _ = setup.start_sde(None, np.array([0, 1]), 1)
    assert np.allclose(S0[0], 1.0)
    assert np.allclose(S0[1], eta**2 * 0.1)  # the optimizer's units (0.1) would be 2500x this
