"""The generated simulators under noise correlated across coordinates (issue 17, reference section 9,
derive/correlated_simulation.py): moments of the simulated optimizer and SDE against closed forms, each
with a mutant (the correlation r dropped) that the same check rejects; reproducibility; refusals.

Tolerances are 4 Monte Carlo standard errors of the estimated covariance entry (the standard error of a
sample covariance of jointly Gaussian pairs, sqrt((s_ii s_jj + s_ij^2) / N))."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from derive.combination import Combination
from derive.correlation import NoiseModel, NoiseModelError
from derive.simulate import SimulationInputError, full_quadratic, quadratic, run, run_coupled

N = 4000
SIGMA = 1.5
R = 0.6
H = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.5]])


def _z_scores(samples: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|sample covariance - expected| in standard errors, per entry (samples [N, d])."""
    c = np.cov(samples.T)
    se = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / samples.shape[0])
    return np.abs(c - expected) / se


def _dropped(model: NoiseModel) -> NoiseModel:
    """The mutant: the same scales, r dropped (the diagonal of Sigma only)."""
    return NoiseModel.from_covariance(np.diag(np.diag(model.covariance)))


def test_sgd_one_step_covariance_is_eta_squared_sigma():
    """SGD from a fixed start on a full-H quadratic: x_1 - E x_1 = -eta S xi, Cov = eta^2 Sigma (optimizer and
    its coupled SDE, one euler step: the same numbers); the r-dropped model misses the off-diagonal."""
    eta, model = 0.01, NoiseModel.correlated(R, 3, SIGMA)
    land, x0 = full_quadratic(H), np.full((N, 3), 0.7)
    expected = eta**2 * model.covariance

    def one_step(noise):
        opt, sde = run_coupled(
            Combination("sgd"), x0, eta=eta, sigma=None, steps=1, seed=3, landscape=land, record=[0, 1],
            keep=True, scheme="euler", noise=noise,
        )  # fmt: skip
        return opt.path[1], sde.path[1]

    opt, sde = one_step(model)
    assert np.max(_z_scores(opt, expected)) < 4
    np.testing.assert_allclose(sde, opt, rtol=0, atol=1e-14)
    mutant, _ = one_step(_dropped(model))
    assert _z_scores(mutant, expected)[0, 1] > 10  # eta^2 sigma^2 r, resolved at about 25 SE


def _sgd_covariance_at(t: float, eta: float, model: NoiseModel) -> np.ndarray:
    """C(t) of the SDE dX = -H X dt + sqrt(eta) S dW from X(0) fixed: C(t) = C - e^{At} C e^{A^T t}, A, B from
    derive.linearised (A = -H, B = eta Sigma), C the stationary covariance (Lyapunov equation)."""
    from scipy.linalg import expm

    from derive.linearised import linearised

    system = linearised("sgd", model, H, {"eta": eta})
    A, _ = system.numeric()
    C = system.stationary_covariance()
    E = expm(A * t)
    return C - E @ C @ E.T


def test_sgd_sde_finite_time_covariance_matches_the_lyapunov_solution():
    """The SDE of SGD (8 euler substeps per step) from a fixed start: Cov X(t) at t = 1 against the
    Lyapunov closed form from derive.linearised; the optimizer's exact discrete recursion
    C_{k+1} = (I - eta H) C_k (I - eta H)^T + eta^2 Sigma against its run. r dropped: rejected."""
    eta, steps, model = 0.05, 20, NoiseModel.correlated(R, 3, SIGMA)
    land, x0 = full_quadratic(H), np.full((N, 3), 0.7)
    want_sde = _sgd_covariance_at(eta * steps, eta, model)
    M = np.eye(3) - eta * H
    want_opt = np.zeros((3, 3))
    for _ in range(steps):
        want_opt = M @ want_opt @ M.T + eta**2 * model.covariance

    def runs(noise):
        opt, sde = run_coupled(
            Combination("sgd"), x0, eta=eta, sigma=None, steps=steps, seed=5, landscape=land, record=[0, steps],
            keep=True, scheme="euler", substeps=8, noise=noise,
        )  # fmt: skip
        return opt.path[-1], sde.path[-1]

    opt, sde = runs(model)
    assert np.max(_z_scores(opt, want_opt)) < 4
    assert np.max(_z_scores(sde, want_sde)) < 4
    mutant_opt, mutant_sde = runs(_dropped(model))
    assert _z_scores(mutant_opt, want_opt)[0, 1] > 6
    assert _z_scores(mutant_sde, want_sde)[0, 1] > 6


def test_signsgd_one_step_covariance_follows_the_arcsine_law():
    """SignSGD at the minimum (g = 0): x_1 = -eta sign(S xi), Cov = eta^2 (2/pi) asin(R) (Sheppard), for the
    optimizer and for the SDE's moment-matched increments (its own draws: an SDE run, not coupled). r
    dropped: the off-diagonal is 0, rejected; the linear law r in place of (2/pi) asin(r) is 0.19 above it."""
    eta, model = 0.01, NoiseModel.correlated(R, 3, SIGMA)
    land, x0 = quadratic([1.0, 2.0, 3.0]), np.zeros((N, 3))
    expected = eta**2 * (2 / math.pi) * np.arcsin(model.correlation)
    common = dict(eta=eta, sigma=None, steps=1, seed=7, landscape=land, record=[0, 1], keep=True)
    opt = run("optimizer", Combination("signsgd"), x0, noise=model, **common).path[1]
    sde = run("sde", Combination("signsgd"), x0, noise=model, scheme="euler", **common).path[1]
    for got in (opt, sde):
        assert np.max(_z_scores(got, expected)) < 4
        assert _z_scores(got, eta**2 * model.correlation)[0, 1] > 4  # not the linear law r
    mutant = run("sde", Combination("signsgd"), x0, noise=_dropped(model), scheme="euler", **common).path[1]
    assert _z_scores(mutant, expected)[0, 1] > 10


def test_adam_one_step_covariance_of_x():
    """Adam (and its coupled SDE, two sources mixed by the factor of diag(R, R o R)) one step from x = 0, m = 0,
    v = sigma^2, bias corrections 1: x_1 = -eta m_1 / (sqrt(v_1) + eps), m_1 = (1 - beta1) sigma zeta, so
    Cov x_1 = eta^2 (1 - beta1)^2 sigma^2 R / (sigma + eps)^2 up to O(1 - beta2) = O(eta) (1%, below the
    4-SE tolerance of about 12%). r dropped: rejected."""
    eta, model, d = 0.01, NoiseModel.correlated(R, 3, SIGMA), 3
    hyper = {"beta1": 1 - 2 * eta, "beta2": 1 - eta, "eps": 1e-8}
    land, x0 = quadratic([1.0, 2.0, 3.0]), np.zeros((N, d))
    start = np.stack([x0, np.zeros((N, d)), np.full((N, d), SIGMA**2)])
    expected = eta**2 * (2 * eta) ** 2 * model.covariance / (SIGMA + hyper["eps"]) ** 2

    def one_step(noise):
        opt, sde = run_coupled(
            Combination("adam"), x0, eta=eta, sigma=None, steps=1, seed=13, landscape=land, hyper=hyper,
            record=[0, 1], keep=True, scheme="euler", start=start, k0=10_000, noise=noise,
        )  # fmt: skip
        return opt.path[1], sde.path[1]

    for got in one_step(model):
        assert np.max(_z_scores(got, expected)) < 4
    for got in one_step(_dropped(model)):
        assert _z_scores(got, expected)[0, 1] > 10


def test_runs_are_reproducible_at_any_thread_count():
    """Same seed, same numbers with 1 and 2 threads: correlated optimizer, SDE and coupled runs."""
    model = NoiseModel.correlated(-0.3, 3, SIGMA)
    land, x0 = full_quadratic(H), np.full((64, 3), 0.5)
    common = dict(eta=0.05, sigma=None, steps=5, seed=11, landscape=land, keep=True, noise=model)

    def runs():
        opt, sde = run_coupled(Combination("sgd"), x0, scheme="euler", substeps=2, **common)
        alone = run("optimizer", Combination("sgd"), x0, **common)
        return opt.path, sde.path, alone.path

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = runs()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = runs()
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one[0], one[2])  # the coupled optimizer is the optimizer run


def test_refusals_are_one_line_errors():
    land, x0 = quadratic([1.0, 2.0]), np.zeros((4, 2))
    common = dict(eta=0.01, sigma=None, steps=1, seed=0, landscape=land)
    model = NoiseModel.correlated(0.5, 2)
    with pytest.raises(SimulationInputError, match="moment-matched correlated increments are implemented for"):
        run("sde", Combination("lion"), x0, noise=model, **common)
    with pytest.raises(
        NoiseModelError, match="is a student-t.nu=5. noise model but sgd_gaussian_paper_full simulates gaussian"
    ):
        run("optimizer", Combination("sgd"), x0, noise=NoiseModel.correlated(0.5, 2, law="student-t", nu=5), **common)  # fmt: skip
    with pytest.raises(SimulationInputError, match=r"correlated across coordinates as C\(r\) = 2\*asin\(r\)/pi"):
        run_coupled(Combination("signsgd", "gaussian", "noise-dominated"), x0, noise=model, **common)
    unequal = NoiseModel.from_covariance([[1.0, 0.5], [0.5, 4.0]])
    with pytest.raises(SimulationInputError, match="unequal noise scales"):
        run("sde", Combination("sgd"), x0, noise=unequal, **common)
    with pytest.raises(NoiseModelError, match="is 3 x 3 but the start has dim 2"):
        run("optimizer", Combination("sgd"), x0, noise=NoiseModel.correlated(0.5, 3), **common)
    with pytest.raises(SimulationInputError, match="disagrees with the noise model"):
        run("optimizer", Combination("sgd"), x0, noise=model, **{**common, "sigma": 2.0})


def test_elliptical_optimizer_draws_share_one_w():
    """Laplace noise as the elliptical law g~ = g + sqrt(W) S xi, W exponential with mean 2, one W per step for
    all coordinates: one SGD step has Cov = eta^2 E[W] Sigma = 2 eta^2 Sigma and Laplace marginals (kurtosis 6,
    standard error about 0.35 at N = 20000). The Gaussian W = 1 (Cov eta^2 Sigma, kurtosis 3) is rejected.
    The SDE is refused (the coupling and the one-draw reduction are Gaussian)."""
    n, eta, model = 20_000, 0.01, NoiseModel.correlated(R, 2, 1.0, law="laplace")
    common = dict(eta=eta, sigma=None, steps=1, seed=1, landscape=quadratic([1.0, 2.0]), record=[0, 1], noise=model)
    got = run("optimizer", Combination("sgd", "laplace"), np.zeros((n, 2)), keep=True, **common).path[1] / eta
    assert np.max(_z_scores(got, 2.0 * model.covariance)) < 4
    assert np.max(_z_scores(got, model.covariance)) > 10
    kurtosis = (got[:, 0] ** 4).mean() / (got[:, 0] ** 2).mean() ** 2
    assert abs(kurtosis - 6.0) < 4 * 0.35 and abs(kurtosis - 3.0) > 4 * 0.35
    with pytest.raises(SimulationInputError, match="Gaussian noise only"):
        run("sde", Combination("sgd", "laplace"), np.zeros((4, 2)), **common)


def test_unequal_scales_reach_the_optimizer():
    """--noise-cov with unequal variances: the optimizer's noise has covariance Sigma itself (sigma = 1, F = S)."""
    Sigma = np.array([[1.0, -0.8], [-0.8, 4.0]])
    eta, land, x0 = 0.01, quadratic([1.0, 2.0]), np.zeros((N, 2))
    opt = run(
        "optimizer", Combination("sgd"), x0, eta=eta, sigma=None, steps=1, seed=2, landscape=land, record=[0, 1],
        keep=True, noise=NoiseModel.from_covariance(Sigma),
    ).path[1]  # fmt: skip
    assert np.max(_z_scores(opt, eta**2 * Sigma)) < 4


def _x1x2_errors(optimizer: str, eta: float, sde_noise, paths: int, hyper: dict, k0: int) -> tuple[float, float]:
    """|E[X_1 X_2](T) - E[x_1 x_2]_{T/eta}| and its standard error (paired, coupled runs from the minimum of
    the rotated quadratic, T = 1, auxiliary states burned in), the SDE driven by ``sde_noise``."""
    from derive.simulate import burn_in, rotated_quadratic

    model = NoiseModel.correlated(R, 2, 1.0)
    land, x0 = rotated_quadratic([1.0, 4.0]), np.zeros((paths, 2))
    state = None
    if k0:
        state = burn_in(
            Combination(optimizer), x0, eta=eta, sigma=None, steps=k0, seed=1, landscape=land, hyper=hyper,
            noise=model,
        )  # fmt: skip
    steps = round(1.0 / eta)
    opt, sde = run_coupled(
        Combination(optimizer), x0, eta=eta, sigma=None, steps=steps, seed=0, landscape=land, hyper=hyper,
        record=[0, steps], keep=True, scheme="weak2", substeps=max(1, math.ceil(eta / 0.005 - 1e-9)), start=state,
        k0=k0, noise=model, sde_noise=sde_noise,
    )  # fmt: skip
    diff = sde.values(lambda p: p[..., 0] * p[..., 1])[-1] - opt.values(lambda p: p[..., 0] * p[..., 1])[-1]
    return abs(float(diff.mean())), float(diff.std(ddof=1) / math.sqrt(paths))


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_x1x2_from_the_minimum_sees_the_correlation(optimizer):
    """Reference section 9: an order-1 weak error of f or x_j cannot see a dropped r; phi = x_1 x_2 from the
    minimum can. At every eta where the mutant's error (SDE with r dropped, the optimizer's noise correlated)
    is resolved, the correct SDE's error (or its resolution, 3 SE, when unresolved) is at least 10x below it."""
    resolved = 0
    for eta in (0.02, 0.01, 0.005):
        rates = {"sgd": {}, "adam": {"beta1": 2.0, "beta2": 1.0}}[optimizer]
        hyper = {b: 1.0 - eta * rho for b, rho in rates.items()}
        k0 = math.ceil(3.0 / (eta * min(rates.values()))) if rates else 0
        right, right_se = _x1x2_errors(optimizer, eta, None, 20_000, hyper, k0)
        wrong, wrong_se = _x1x2_errors(optimizer, eta, NoiseModel.correlated(0.0, 2, 1.0), 20_000, hyper, k0)
        print(
            f"{optimizer} eta={eta}: right {right:.3g} (SE {right_se:.2g}), r dropped {wrong:.3g} (SE {wrong_se:.2g})"
        )
        if wrong >= 3 * wrong_se:
            resolved += 1
            assert wrong >= 10 * max(right, 3 * right_se)
    assert resolved == 3


def test_simulate_cli_takes_the_noise_options(capsys, tmp_path):
    """`derive simulate --correlation R` runs the optimizer and the SDE under correlated noise; bad input is a
    one-line error with exit status 2 (the range of r; --noise-cov with --sigma)."""
    from derive.cli import main

    common = ["simulate", "sgd", "--dim", "3", "--paths", "32", "--steps", "4", "--records", "3"]
    assert main([*common, "--correlation", "0.5"]) == 0
    assert "noise --correlation 0.5" in capsys.readouterr().out
    assert main([*common, "--correlation", "-0.9"]) == 2
    assert "-1/(d - 1) = -0.5 <= r <= 1 with d = 3" in capsys.readouterr().err
    path = tmp_path / "sigma.npy"
    np.save(path, np.eye(3))
    assert main([*common, "--noise-cov", str(path), "--sigma", "2"]) == 2
    assert "drop --sigma" in capsys.readouterr().err


def _correlation_z(x: np.ndarray, r: float) -> float:
    """|sample correlation of x[:, 0], x[:, 1] - r| in standard errors ((1 - r^2) / sqrt(N), jointly normal)."""
    c = np.corrcoef(x.T)[0, 1]
    return abs(c - r) / ((1.0 - r * r) / math.sqrt(x.shape[0]))


@pytest.mark.parametrize("optimizer", ["sgd_momentum", pytest.param("schedulefree_sgd", marks=pytest.mark.slow)])
def test_issue19_simulators_take_correlated_noise(optimizer):
    """Issue 19's modules under correlated noise (a fast state eliminated with |1 - tau| in its diffusion; the
    SDE's gradient at another point): on an isotropic quadratic (both coordinates the same linear dynamics) x
    after 3 steps is linear in the noise, so corr(x_1, x_2) = r exactly, for the coupled optimizer and SDE.
    The SDE with r dropped (sde_noise) is rejected (r = 0.6 at N = 4000: about 60 SE)."""
    model = NoiseModel.correlated(R, 2, SIGMA)
    common = dict(
        eta=0.05, sigma=None, steps=3, seed=4, landscape=quadratic([1.0, 1.0]), record=[0, 3], keep=True, noise=model
    )
    opt, sde = run_coupled(Combination(optimizer), np.full((N, 2), 0.5), **common)
    assert _correlation_z(opt.path[-1], R) < 4
    assert _correlation_z(sde.path[-1], R) < 4
    _, wrong = run_coupled(Combination(optimizer), np.full((N, 2), 0.5), sde_noise=_dropped(model), **common)
    assert _correlation_z(wrong.path[-1], R) > 10


def test_usam_optimizer_runs_correlated_and_its_sde_is_refused():
    """usam draws one zeta per step, used at both of its points: zeta = F xi makes one step from a fixed start
    on an isotropic quadratic linear in xi, corr(x_1, x_2) = r (r dropped: rejected). Its SDE (noise through
    the Hessian) has no pair model: a one-line refusal."""
    model = NoiseModel.correlated(R, 2, SIGMA)
    common = dict(eta=0.05, sigma=None, steps=1, seed=5, landscape=quadratic([1.0, 1.0]), record=[0, 1])
    x0 = np.full((N, 2), 0.5)
    opt = run("optimizer", Combination("usam"), x0, keep=True, noise=model, **common).path[-1]
    assert _correlation_z(opt, R) < 4
    wrong = run("optimizer", Combination("usam"), x0, keep=True, noise=_dropped(model), **common).path[-1]
    assert _correlation_z(wrong, R) > 10
    with pytest.raises(SimulationInputError, match=r"usam_gaussian_paper_full: no SDE under correlated noise: .*hvp"):
        run("sde", Combination("usam"), x0[:4], noise=model, **common)


def test_adagrad_sde_starts_from_the_correlated_optimizer_step():
    """AdaGrad's SDE starts after the optimizer's first step (START_STEPS, s = 0 before): under a noise model
    that step takes the correlated draws, so the SDE's recorded start is the optimizer run's x after step 1,
    bit for bit (with independent draws there it would not be). Its coupled run stays refused (the clock)."""
    model = NoiseModel.correlated(R, 2, SIGMA)
    common = dict(eta=0.05, sigma=None, steps=2, seed=6, landscape=quadratic([1.0, 2.0]), record=[1, 2], noise=model)
    x0 = np.full((64, 2), 0.5)
    opt = run("optimizer", Combination("adagrad"), x0, keep=True, **common)
    sde = run("sde", Combination("adagrad"), x0, keep=True, **common)
    np.testing.assert_array_equal(sde.path[0], opt.path[0])
    independent = run("optimizer", Combination("adagrad"), x0, keep=True, **{**common, "noise": None, "sigma": SIGMA})
    assert not np.array_equal(independent.path[0], opt.path[0])
    with pytest.raises(SimulationInputError, match="no coupled run: its SDE runs on the clock"):
        run_coupled(Combination("adagrad"), x0, **common)
