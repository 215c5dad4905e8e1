"""Coupled runs, the generated kernels against the schemes' exact moment recursions, and the
weak-order study against exact results, each with a mutation that must fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import sympy as sp
from test_schemes import Linear

from derive.combination import Combination
from derive.simulate import SimulationInputError, quadratic, run, run_coupled

LAND = quadratic([1.0, 2.0])


# ---- coupling: exact identities ------------------------------------------------------------------
def test_coupled_euler_sgd_step_is_the_optimizer_step():
    """One euler step of dt = eta driven by W1 = -sqrt(eta) zeta is exactly SGD's step: the coupled
    paths coincide, and the optimizer is the uncoupled optimizer run (same stream)."""
    x0 = np.random.default_rng(1).standard_normal((300, 2))
    common = dict(eta=0.1, sigma=0.7, steps=25, seed=4, landscape=LAND, keep=True)
    chain, sde = run_coupled(Combination("sgd"), x0, **common)
    np.testing.assert_allclose(sde.path, chain.path, rtol=0, atol=1e-13)
    alone = run("optimizer", Combination("sgd"), x0, **common)
    np.testing.assert_array_equal(alone.path, chain.path)
    # mutation: uncoupled SDE paths are far from the chain's
    independent = run("sde", Combination("sgd"), x0, **common)
    assert np.abs(independent.path - chain.path).max() > 0.1


@pytest.mark.parametrize("scheme,substeps", [("euler", 3), ("weak2", 4)])
def test_brownian_bridge_keeps_the_optimizer_step_total(scheme, substeps):
    """On a flat landscape the SDE's x is x0 + sqrt(eta) sigma W; W's increment over every optimizer
    step is -sqrt(eta) zeta, however the substeps fill it in (fine and coarse runs alike)."""
    x0 = np.zeros((200, 2))
    common = dict(eta=0.05, sigma=1.3, steps=30, seed=2, landscape=quadratic([0.0, 0.0]), keep=True)
    chain, sde = run_coupled(Combination("sgd"), x0, scheme=scheme, substeps=substeps, **common)
    np.testing.assert_allclose(sde.path, chain.path, rtol=0, atol=1e-12)
    if scheme == "weak2":
        np.testing.assert_allclose(sde.path_coarse, chain.path, rtol=0, atol=1e-12)


def test_coupling_signs_read_off_the_update_rules():
    """G dW1 must move the state W1 drives like the optimizer's noise does: SGD, SignSGD, RMSprop
    (x: dx = -eta g~ / ...) sign -1; Adam (m: dm = (1 - beta1) g~) sign +1."""
    from derive.simulate import load_module

    expect = {
        "sgd": ("x", -1.0),
        "signsgd": ("x", -1.0),
        "rmsprop": ("x", -1.0),
        "rmspropw": ("x", -1.0),
        "adam": ("m", 1.0),
        "adamw": ("m", 1.0),
    }
    for name, (state, sign) in expect.items():
        assert load_module(Combination(name)).COUPLING == {"state": state, "sign": sign}, name


def test_coupling_sign_of_a_flipped_update_is_flipped():
    """Mutation of the rule's input: gradient ascent x + eta grad needs the opposite sign."""
    from derive.codegen.model import _coupling
    from derive.engine import derive_sde
    from derive.spec import Optimizer

    ascent = Optimizer(name="ascent", hyper={"eta": "lr"}, update=[("x", "x + eta*grad")], defaults={"eta": 0.01})
    assert _coupling(derive_sde(ascent), ascent) == {"state": "x", "sign": 1.0}


@pytest.mark.parametrize("noise,nu", [("student-t", 3), ("laplace", None), ("uniform", None), ("cauchy", None)])
def test_quantile_coupling_gives_exact_normals(noise, nu):
    """n = Phi^{-1}(F(zeta)) of the module's own draws is N(0, 1) and increasing in zeta; the raw
    draws (the mutation: no quantile transform) are not normal."""
    from derive.simulate import load_module

    mod = load_module(Combination("signsgd", noise, nu=nu))
    zeta = np.concatenate([mod.stream_zetas(11, i, 20_000) for i in range(3)])
    n = np.array([mod._coupled_normal(z) for z in zeta])
    assert scipy.stats.kstest(n, "norm").pvalue > 1e-3
    order = np.argsort(zeta)
    assert np.all(np.diff(n[order]) >= 0)
    assert scipy.stats.kstest(zeta, "norm").pvalue < 1e-6


def test_coupled_runs_refuse_what_they_cannot_couple():
    with pytest.raises(SimulationInputError, match="scheme"):
        run_coupled(
            Combination("sgd"), np.ones((4, 2)), eta=0.1, sigma=1.0, steps=2, seed=0, landscape=LAND, scheme="rk4"
        )
    with pytest.raises(SimulationInputError, match="sde_values"):
        run_coupled(
            Combination("sgd"),
            np.ones((4, 2)),
            eta=0.1,
            sigma=1.0,
            steps=2,
            seed=0,
            landscape=LAND,
            sde_values={"beta": 0.5},
        )


# ---- the generated kernels follow the schemes' exact moment recursions -----------------------------
def _ou_moments(eta: float, sigma: float, lam: float, steps: int, substeps: int, scheme: str) -> np.ndarray:
    """E x and E x^2 after ``steps`` optimizer steps of the SGD SDE dX = -lam X dt + sqrt(eta) sigma dW
    on f = lam x^2/2, by the exact recursion of the scheme (tests/test_schemes.py)."""
    x = sp.Symbol("x", real=True)
    sde = Linear("SGD SDE", [x], [-lam * x], [[math.sqrt(eta) * sigma]], [1.0], T=eta * steps)
    m = (
        sde.euler(steps * substeps)
        if scheme == "euler"
        else 2 * sde.euler(2 * steps * substeps) - sde.euler(steps * substeps)
    )
    return m[1:]


@pytest.mark.parametrize("scheme,substeps", [("euler", 1), ("weak2", 1), ("euler", 2)])
def test_generated_kernel_follows_the_scheme_recursion(scheme, substeps):
    """Monte Carlo (N = 200000, 4 SE): the generated SGD SDE kernel's E x and E x^2 at T match the
    exact recursion of its scheme; the recursions of the other schemes are rejected (eta lam = 0.5,
    where they differ by tens of SE)."""
    eta, sigma, lam, steps, n = 0.5, 1.0, 1.0, 4, 200_000
    r = run(
        "sde",
        Combination("sgd"),
        np.ones((n, 1)),
        eta=eta,
        sigma=sigma,
        steps=steps,
        seed=9,
        landscape=quadratic([lam]),
        keep=True,
        scheme=scheme,
        substeps=substeps,
        record=np.array([0, steps]),
    )
    x = r.values(lambda p: p)[-1, :, 0]
    x2 = r.values(lambda p: p * p)[-1, :, 0]
    est = np.array([x.mean(), x2.mean()])
    se = np.array([x.std(ddof=1), x2.std(ddof=1)]) / math.sqrt(n)
    for other in [("euler", 1), ("weak2", 1), ("euler", 2)]:
        gap = np.abs(est - _ou_moments(eta, sigma, lam, steps, other[1], other[0])) / se
        if other == (scheme, substeps):
            assert np.all(gap < 4), (other, gap)
        else:
            assert np.any(gap > 8), (other, gap)


# ---- the weak-order study ----------------------------------------------------------------------------
def _exact_sgd_gap(eta: float, sigma: float, lam: np.ndarray, x0: float, times: np.ndarray) -> float:
    """max over phi in {f, x_j, x_j^2} and t of |E phi(SDE) - E phi(SGD)| on sum lam x^2/2, exactly
    (both are linear: the chain's mean (1 - eta lam)^k x0 and variance eta^2 sigma^2 sum (1 - eta lam)^2j,
    the SDE's e^{-lam t} x0 and eta sigma^2 (1 - e^{-2 lam t}) / (2 lam))."""
    out = 0.0
    for t in times[1:]:
        k = int(round(t / eta))
        a = 1 - eta * lam
        mc, vc = a**k * x0, eta**2 * sigma**2 * (1 - a ** (2 * k)) / (1 - a**2)
        ms, vs = np.exp(-lam * t) * x0, eta * sigma**2 * (1 - np.exp(-2 * lam * t)) / (2 * lam)
        gaps = (
            [abs(np.sum(lam / 2 * (ms**2 + vs - mc**2 - vc)))]
            + list(np.abs(ms - mc))
            + list(np.abs(ms**2 + vs - mc**2 - vc))
        )
        out = max(out, max(gaps))
    return out


@pytest.fixture(scope="module")
def sgd_study():
    from derive.validate.weak_order import weak_order

    return weak_order("sgd", etas=(0.16, 0.08, 0.04, 0.02), paths=4000, dt_max=0.01, refine=False)


def test_sgd_weak_error_matches_the_exact_gap_and_has_slope_1(sgd_study):
    """The coupled estimate equals the exact weak error of the SGD SDE (4 SE plus the weak2
    discretisation at dt = 0.01, bounded by 2e-4 from the scheme tests' constants), every point is
    resolved, and the slope is 1 with its interval inside [0.8, 1.25]."""
    row = sgd_study.runs[0]
    lam = np.array(sgd_study.held_fixed["landscape_parameters"])
    for eta, err, se in zip(row.etas, row.errors, row.se):
        steps = round(2.0 / eta)
        times = np.unique(np.linspace(0, steps, 11).round()) * eta
        exact = _exact_sgd_gap(eta, 1.0, lam, 1.0, times)
        assert abs(err - exact) < 4 * se + 2e-4, (eta, err, exact, se)
    assert all(row.resolved)
    assert 0.8 <= row.slope_ci[0] and row.slope_ci[1] <= 1.25, (row.slope, row.slope_ci)
    assert min(row.se_ratio) > 5  # coupling: at least 5x smaller standard errors than independent runs


def test_a_sigma_error_of_ten_percent_is_resolved(sgd_study):
    """Mutation: the SDE with sigma 10% too large gives errors that differ from the correct SDE's
    (and from the exact gap) by more than 4 SE at every eta."""
    from derive.validate.weak_order import weak_order

    wrong = weak_order(
        "sgd", etas=(0.16, 0.08, 0.04, 0.02), paths=4000, dt_max=0.01, refine=False, sde_values={"sigma": 1.1}
    ).runs[0]
    right = sgd_study.runs[0]
    for e1, s1, e2, s2 in zip(right.errors, right.se, wrong.errors, wrong.se):
        assert abs(e2 - e1) > 4 * math.hypot(s1, s2), (e1, e2, s1, s2)


@pytest.mark.slow
def test_a_drift_error_flattens_the_slope():
    """Mutation: Adam's noise-dominated SDE (a different limit: no g^2 in the V drift) does not
    converge to the optimizer in the paper regime: its errors are resolved and its slope is about 0,
    outside [0.8, 1.25], while the full SDE's is inside."""
    from derive.validate.weak_order import weak_order

    study = weak_order(
        "adam", sdes=["full", "noise-dominated"], etas=(0.16, 0.08, 0.04, 0.02), paths=3000, dt_max=0.02, refine=False
    )
    full, nd = study.runs
    assert all(full.resolved) and 0.8 <= full.slope <= 1.25, (full.errors, full.se, full.slope)
    assert all(nd.resolved) and abs(nd.slope) < 0.3, (nd.errors, nd.slope)
    assert study.initial_layer["optimizer"] < study.initial_layer["sde"] - 0.2  # the layer no SDE reproduces


def test_fit_slope_uses_resolved_points_and_widens_with_misfit():
    from derive.validate.weak_order import fit_slope

    etas = np.array([0.16, 0.08, 0.04, 0.02])
    slope, (lo, hi) = fit_slope(etas, 0.5 * etas, 0.005 * etas, [True] * 4)
    assert slope == pytest.approx(1.0) and hi - lo < 0.1
    # an unresolved point is left out (it would pull the slope to 0.5)
    errors = 0.5 * etas
    errors[-1] = 0.5 * etas[-2]
    slope, _ = fit_slope(etas, errors, 0.005 * etas, [True, True, True, False])
    assert slope == pytest.approx(1.0)
    # misfit (curvature) widens the interval beyond what the standard errors alone give
    _, (lo2, hi2) = fit_slope(etas, 0.5 * etas * (1 + 3 * etas), 0.005 * etas, [True] * 4)
    assert hi2 - lo2 > 3 * (hi - lo)
    assert math.isnan(fit_slope(etas, errors, 0.005 * etas, [True, False, False, False])[0])


def test_weak_order_json_has_the_issue_schema(sgd_study):
    data = sgd_study.to_json()
    assert {"optimizer", "noise", "landscape", "held_fixed", "runs"} <= set(data)
    run_keys = {"sde", "etas", "errors", "se", "resolved", "slope", "slope_ci"}
    assert all(run_keys <= set(r) for r in data["runs"])
    assert data["runs"][0]["sde"] == "full" and len(data["runs"][0]["slope_ci"]) == 2


@pytest.mark.parametrize("landscape", ["double-well", "rotated"])
def test_other_landscapes_run_and_resolve(landscape):
    from derive.validate.weak_order import weak_order

    study = weak_order("signsgd", landscape=landscape, etas=(0.16, 0.08, 0.04), paths=4000, dt_max=0.02, refine=False)
    row = study.runs[0]
    assert all(row.resolved) and 0.6 < row.slope < 1.4, (row.errors, row.se, row.slope)


@pytest.mark.slow
def test_pytorch_momentum_has_weak_order_one_with_burned_in_momentum():
    """sgd_momentum (beta = 0.9 fixed), coupled with burned-in momentum (the SDE started at x - c*m):
    at the default etas (8x) every error is resolved and the slope lies in [0.8, 1.25]. Mutation: the
    SDE with beta = 0.8 (learning rate eta/(1 - 0.8), half the right one) does not converge: its errors
    are resolved and do not shrink (slope about 0)."""
    from derive.validate.weak_order import weak_order

    study = weak_order("sgd_momentum", paths=4000, refine=False)
    (row,) = study.runs
    assert study.held_fixed["burn_in"].startswith("ceil(12 / (1 - beta))")
    assert len(row.etas) >= 4 and max(row.etas) / min(row.etas) >= 8
    assert all(row.resolved) and 0.8 <= row.slope <= 1.25, (row.errors, row.se, row.slope)
    wrong = weak_order("sgd_momentum", etas=row.etas[:2], paths=4000, refine=False, sde_values={"beta": 0.8}).runs[0]
    assert all(wrong.resolved) and abs(wrong.slope) < 0.3, (wrong.errors, wrong.slope)


def test_weak_order_text_under_a_noise_model_prints_its_scales_and_correlation():
    """Under correlated noise the held sigma is the model's scales (a list) and R is held too: the text report
    prints both (it raised a TypeError formatting the list), and phi adds x_1 x_2."""
    from derive.correlation import NoiseModel
    from derive.validate.weak_order import weak_order

    study = weak_order(
        "sgd", etas=(0.16, 0.08), paths=500, dt_max=0.04, refine=False, noise_model=NoiseModel.correlated(0.5, 2, 1.0)
    )
    text = study.text()
    assert "sigma = [1, 1]" in text and "noise correlation R = [[1, 0.5], [0.5, 1]]" in text
    assert "x_i x_j (i < j)" in study.to_json()["phi"]
