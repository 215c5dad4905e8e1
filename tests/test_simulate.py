"""Simulators on landscapes: optimizer vs SDE mean loss (4 standard errors), determinism across
thread counts, float32 without NaN, input errors, divergence reporting, a user landscape."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from derive.combination import Combination
from derive.simulate import DivergenceError, SimulationInputError, quadratic, random_start, run, user_landscape

LAND = quadratic([1.0, 3.0])
STEPS, RECORD = 150, [50, 100, 150]


def _pair(combo, paths, seed, eta=0.01, sigma=1.0, x0=None, **kw):
    x0 = random_start(paths, 2, seed) if x0 is None else x0
    common = dict(eta=eta, sigma=sigma, steps=STEPS, seed=seed, landscape=LAND, record=RECORD, **kw)
    return run("optimizer", combo, x0, **common), run("sde", combo, x0, **common)


@pytest.mark.parametrize(
    "combo",
    [Combination(o) for o in ("sgd", "signsgd", "adam")]
    + [
        pytest.param(c, marks=pytest.mark.slow)  # the default run keeps one module per kind of update
        for c in [Combination(o) for o in ("rmsprop", "rmspropw", "adamw")]
        + [Combination("signsgd", "student-t", nu=3), Combination("signsgd", "cauchy")]
    ],
    ids=lambda c: c.module_name,
)
def test_sde_mean_loss_matches_optimizer_within_4_se(combo):
    opt, sde = _pair(combo, paths=6000, seed=17)  # 4000 left RMSprop at 0.16 loss per SE after the predictor fix
    se = np.sqrt(opt.loss_se**2 + sde.loss_se**2)
    gap = np.abs(opt.loss_mean - sde.loss_mean)
    assert np.all(gap < 4 * se), f"gap {gap} vs 4 SE {4 * se}"
    assert np.all(se < 0.15 * opt.loss_mean)  # tight enough to catch a 60% error in the mean loss


def test_same_seed_one_and_two_threads_identical():
    combo = Combination("adamw")
    x0 = random_start(100, 2, 3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = run("sde", combo, x0, eta=0.01, sigma=1.0, steps=50, seed=5, landscape=LAND, keep=True)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = run("sde", combo, x0, eta=0.01, sigma=1.0, steps=50, seed=5, landscape=LAND, keep=True)
    finally:
        numba.set_num_threads(before)
    for name in ("loss", "mean", "var", "path"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_float32_runs_without_nan_where_float64_does():
    combo = Combination("signsgd")
    x0 = random_start(200, 2, 4)
    r64 = run("sde", combo, x0, eta=0.01, sigma=0.05, steps=100, seed=1, landscape=quadratic([30.0, 50.0]))
    r32 = run(
        "sde", combo, x0.astype(np.float32), eta=0.01, sigma=0.05, steps=100, seed=1, landscape=quadratic([30.0, 50.0])
    )
    assert np.isfinite(r64.loss).all() and np.isfinite(r32.loss).all()
    np.testing.assert_allclose(r32.loss_mean, r64.loss_mean, rtol=0.05)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x0=np.zeros((10, 3))), "shape mismatch"),
        (dict(eta=0.0), "learning rate eta must be > 0"),
        (dict(eta=-1.0), "learning rate eta must be > 0"),
        (dict(hyper={"beta1": 1.0}), "beta1 must lie in (0, 1)"),
        (dict(hyper={"beta2": 0.0}), "beta2 must lie in (0, 1)"),
        (dict(hyper={"eps": -1e-8}), "eps must be >= 0"),
        (dict(hyper={"gamma": 1.0}), "unknown hyperparameter"),
        (dict(steps=0), "steps must be a positive integer"),
        (dict(x0=np.zeros((0, 2))), "paths, dim"),
        (dict(x0=np.array([[0.0, np.nan]])), "NaN or infinity"),
        (dict(x0=np.array([[0.0, np.inf]])), "NaN or infinity"),
        (dict(record=[5, 3]), "record must be increasing"),
    ],
)
def test_bad_input_is_a_clear_error(change, message):
    args = dict(x0=np.zeros((10, 2)), eta=0.01, sigma=1.0, steps=10, seed=0, landscape=LAND)
    args.update(change)
    with pytest.raises(SimulationInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("optimizer", Combination("adam"), args.pop("x0"), **args)
    with pytest.raises(SimulationInputError, match="paths must be a positive integer"):
        random_start(0, 2, 1)


def test_divergence_is_reported_with_its_step():
    x0 = random_start(20, 2, 1)
    with pytest.raises(DivergenceError, match=r"optimizer diverged at step (\d+)") as info:
        run("optimizer", Combination("sgd"), x0, eta=1.0, sigma=1.0, steps=500, seed=0, landscape=quadratic([3.0, 1.0]))
    # |1 - eta*lambda| = 2: |x| grows like 2^k from O(1), so it passes 1e30 near step 100
    assert 90 <= info.value.step <= 110


@numba.njit(cache=False)
def _double_well_grad(x, a, out):
    for j in range(x.shape[0]):
        out[j] = x[j] * x[j] * x[j] - a[0] * x[j]


@numba.njit(cache=False)
def _double_well_loss(x, a):
    s = 0.0
    for j in range(x.shape[0]):
        s += 0.25 * x[j] ** 4 - 0.5 * a[0] * x[j] ** 2
    return s


def test_user_double_well_landscape_runs_and_sde_tracks_optimizer():
    land = user_landscape(_double_well_grad, _double_well_loss, [1.0], name="double well")
    x0 = random_start(2000, 2, 9, scale=0.5)
    common = dict(eta=0.01, sigma=0.5, steps=100, seed=2, landscape=land, record=[50, 100])
    opt = run("optimizer", Combination("sgd"), x0, **common)
    sde = run("sde", Combination("sgd"), x0, **common)
    assert opt.loss_mean[-1] < opt.loss_mean[0]  # descends towards the wells at x = +-1 (loss -1/4 per coordinate)
    se = np.sqrt(opt.loss_se**2 + sde.loss_se**2)
    assert np.all(np.abs(opt.loss_mean - sde.loss_mean) < 4 * se)


@pytest.mark.parametrize(
    "combo", [Combination("sgd", "cauchy"), Combination("clipsgd", "student-t", nu=1.5)], ids=lambda c: c.module_name
)
def test_optimizer_only_module_runs_and_refuses_the_sde(combo, tmp_path):
    """No SDE (SGD under Cauchy needs E[zeta^2]; clipped SGD at nu = 1.5 needs an incomplete beta
    function with a negative parameter): the module simulates the optimizer only and run('sde')
    names the reason."""
    x0 = random_start(200, 2, 6)
    common = dict(eta=0.01, sigma=1.0, steps=100, seed=3, landscape=LAND, record=[0, 100], module_dir=tmp_path)
    opt = run("optimizer", combo, x0, **common)
    assert np.isfinite(opt.loss).all() and opt.loss.shape == (2, 200)
    assert combo.module_name.isidentifier() and (tmp_path / f"{combo.module_name}.py").is_file()
    reason = "E\\[zeta\\^2\\]" if combo.noise == "cauchy" else "numeric a, b > 0 only"
    with pytest.raises(SimulationInputError, match=f"has no SDE to simulate.*{reason}"):
        run("sde", combo, x0, **common)
