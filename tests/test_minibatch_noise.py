"""Real minibatch noise (issue 18): Sigma(x) from per-sample gradients against closed forms, the
law of the noise against built known answers, the noise model's draws, the CLI."""

import json

import numpy as np
import pytest

from derive.validate import ValidationInputError
from derive.validate.least_squares import rotated_least_squares
from derive.validate.noise_law import design_effect, fit_law, t_fit

torch = pytest.importorskip("torch")

from derive.validate.minibatch import (  # noqa: E402 - after the torch skip
    BatchSampler,
    GradientSample,
    MeasuredNoise,
    per_sample_gradients,
)
from derive.validate.noise_measure import exact_kurtosis, standardised_draws  # noqa: E402


def _sample(G: np.ndarray) -> GradientSample:
    return GradientSample(np.zeros(G.shape[1]), torch.from_numpy(np.ascontiguousarray(G, dtype=np.float64)))


# ---- Sigma(x): the estimate against least squares' closed form ------------------------------------


@pytest.fixture(scope="module")
def least_squares_point():
    ls = rotated_least_squares(n=64, curvatures=(1.0, 0.2, 0.05), noise=0.7, seed=3)
    x = ls.minimum + np.array([0.3, -0.5, 0.8])  # away from x*: g != 0, so g g^T matters
    return ls, x, GradientSample.at(ls.problem(), x)


def test_sigma_matches_the_least_squares_closed_form(least_squares_point):
    ls, x, s = least_squares_point
    closed = ls.sigma(x)
    scale = np.abs(closed).max()
    assert np.allclose(s.gradient, ls.gradient(x), rtol=0, atol=1e-12)
    assert abs(s.trace - np.trace(closed)) < 1e-10 * scale
    assert np.allclose(s.variances, np.diag(closed), rtol=0, atol=1e-10 * scale)
    lam = np.sort(np.linalg.eigvalsh(closed))[::-1]
    assert s.eigenvalues().size == ls.dim  # rank d: the Gram's other N - d eigenvalues are zero
    assert np.allclose(s.eigenvalues(), lam, rtol=0, atol=1e-10 * scale)
    v = np.random.default_rng(0).standard_normal((ls.dim, 4))
    assert np.allclose(s.apply(v), closed @ v, rtol=0, atol=1e-10 * scale)
    r_eff = np.trace(closed) ** 2 / np.trace(closed @ closed)
    assert abs(s.effective_rank() - r_eff) < 1e-10 * r_eff
    # mutant: the closed form without g g^T subtracted differs by |g|^2 in the trace, far beyond 1e-10
    g = ls.gradient(x)
    mutant = closed + np.outer(g, g)
    assert abs(s.trace - np.trace(mutant)) > 1e4 * 1e-10 * scale
    assert np.abs(s.apply(v) - mutant @ v).max() > 1e4 * 1e-10 * scale


def test_noise_factor_and_draws_have_the_minibatch_covariance(least_squares_point):
    ls, x, s = least_squares_point
    problem = ls.problem()
    for sampling, c in (("replacement", 1.0), ("epoch", (64 - 8) / 63)):
        noise = MeasuredNoise(problem, 8, sampling).at(x)
        F = noise.factor.numpy()  # d x N
        target = c * ls.sigma(x) / 8
        assert F.shape == (ls.dim, ls.n)
        assert np.allclose(F @ F.T, target, rtol=0, atol=1e-12)
        assert np.allclose(noise.variances, np.diag(target), rtol=0, atol=1e-13)
    # draws e = F xi: covariance c Sigma / B within 4 standard errors entrywise (20000 draws)
    e = noise.draw(np.random.default_rng(1), 20000)
    emp = e.T @ e / e.shape[0]
    se = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target**2) / e.shape[0])
    assert np.all(np.abs(emp - target) < 4 * se)
    # mutant: the factor without the finite-population factor is resolved as wrong on the diagonal
    assert np.any(np.abs(np.diag(emp) - np.diag(ls.sigma(x) / 8)) > 4 * np.diag(se))
    assert np.array_equal(noise.draw(np.random.default_rng(1), 3), e[:3])  # seeded: same numbers


@pytest.mark.parametrize("model", ["mlp", "transformer"])
def test_per_sample_gradients_average_to_the_full_batch_gradient(model):
    from derive.validate.torch_adapter import Problem

    p = Problem.builtin(model, n_data=32)
    x = p.initial()
    G = per_sample_gradients(p, x, chunk=7)  # chunks that do not divide N
    full = torch.zeros(p.dim, dtype=torch.float64)
    p.loss_grad(torch.from_numpy(x.copy()), full)
    assert G.shape == (32, p.dim)
    assert torch.allclose(G.mean(dim=0), full, rtol=0, atol=1e-13)
    one = torch.zeros(p.dim, dtype=torch.float64)  # sample 5 alone, by plain autograd
    p.minibatch_loss_grad(torch.from_numpy(x.copy()), [5], one)
    assert torch.allclose(G[5], one, rtol=0, atol=1e-13)


def test_measurement_does_not_depend_on_the_thread_count():
    from derive.validate.minibatch import torch_threads
    from derive.validate.torch_adapter import Problem

    p = Problem.builtin("cnn", n_data=24)
    x = p.initial()
    runs = []
    for threads in (1, 2):
        with torch_threads(threads):
            noise = MeasuredNoise(p, 4).at(x)
            runs.append((noise.sample.grads.numpy().copy(), noise.draw(np.random.default_rng(0), 3)))
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))


def test_batch_sampler_draws_epochs_without_replacement():
    s = BatchSampler(10, 3, "epoch", np.random.default_rng(0))
    epoch = np.concatenate([s() for _ in range(3)])
    assert len(set(epoch.tolist())) == 9  # three batches of one epoch: distinct samples (one left over)
    assert len(set(np.concatenate([s() for _ in range(3)]).tolist())) == 9
    with pytest.raises(ValidationInputError, match="batch size"):
        BatchSampler(10, 11, "epoch", np.random.default_rng(0))
    with pytest.raises(ValidationInputError, match="sampling"):
        BatchSampler(10, 2, "shuffle", np.random.default_rng(0))


# ---- the law of the noise ---------------------------------------------------------------------------


def test_t_fit_is_the_maximum_likelihood_estimate():
    import scipy.stats

    z = 1.7 * np.random.default_rng(0).standard_t(3, 4000)
    nu, scale, ll = t_fit(z**2)
    ref_nu, _, ref_scale = scipy.stats.t.fit(z, floc=0)
    assert ll >= scipy.stats.t.logpdf(z, ref_nu, 0, ref_scale).sum() - 1e-6
    assert abs(nu - ref_nu) < 1e-3 * ref_nu and abs(scale - ref_scale) < 1e-3 * ref_scale


def test_student_t_noise_gives_an_interval_containing_3_and_rejects_the_gaussian():
    """Built so that the *minibatch* gradient coordinate is t(3): B = 1, and each coordinate's
    per-sample gradients are the same 20000 t(3) values in its own order."""
    rng = np.random.default_rng(2)
    values = rng.standard_t(3, 20000)
    G = np.stack([rng.permutation(values) for _ in range(8)], axis=1)
    z, coords, corr = standardised_draws(_sample(G), 1, draws=500, coordinates=8, rng=rng)
    law = fit_law(z, corr, n_boot=200, seed=0)
    assert law.nu_ci[0] < 3 < law.nu_ci[1] and law.nu_ci[1] - law.nu_ci[0] < 1.5
    # mutant: the Gaussian fit on these data is rejected by the likelihood comparison
    assert law.law == "student-t" and law.p_value < 1e-10
    assert law.loglik_student_t - law.loglik_gaussian > 100
    # the mean of B = 8 such per-sample draws is not t(3): its interval lies far above 3
    z8, _, corr8 = standardised_draws(_sample(G), 8, draws=500, coordinates=8, rng=rng)
    law8 = fit_law(z8, corr8, n_boot=100, seed=0)
    assert law8.nu_ci[0] > 4


def test_gaussian_noise_gives_the_gaussian_law():
    """Per-sample gradients Gaussian with a rank-6 covariance (coordinates strongly correlated),
    B = 8: the minibatch gradient is Gaussian and the test keeps the Gaussian."""
    rng = np.random.default_rng(3)
    G = rng.standard_normal((4000, 6)) @ rng.standard_normal((6, 60))
    z, coords, corr = standardised_draws(_sample(G), 8, draws=300, coordinates=60, rng=rng)
    law = fit_law(z, corr, n_boot=50, seed=0)
    assert law.law == "gaussian" and law.p_value > 0.01
    assert law.design_effect > 3  # the correlation is real, and the test accounts for it
    assert abs(law.kurtosis) < 4 * law.kurtosis_se + 0.05


def test_design_effect_keeps_the_false_alarm_rate_at_its_level():
    """Exactly Gaussian rows with rank-3 correlation, 200 data sets at level 0.05: with the design
    effect the false-alarm rate is within 4 binomial standard errors of 0.05; without it (the
    mutant: points treated as independent) it is not (measured: 0.045 against 0.235)."""
    rng0 = np.random.default_rng(5)
    L = rng0.standard_normal((3, 60))
    cov = L.T @ L
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    assert design_effect(np.eye(5)) == 1.0
    alarms, mutant_alarms, runs = 0, 0, 200
    for s in range(runs):
        z = (np.random.default_rng([s, 1]).standard_normal((100, 3)) @ L) / sd
        alarms += fit_law(z, corr, n_boot=0, level=0.05).law == "student-t"
        mutant_alarms += fit_law(z, None, n_boot=0, level=0.05).law == "student-t"
    bound = 0.05 + 4 * np.sqrt(0.05 * 0.95 / runs)
    assert alarms / runs < bound < mutant_alarms / runs


def test_pooled_kurtosis_matches_its_exact_value():
    """Laplace per-sample gradients (excess kurtosis 3), B = 8 with replacement: the pooled
    estimate over drawn minibatches agrees with mean_i kappa_1i / B (about 0.375) within 4 SE;
    the mutant kappa_1 (B = 1's value) is resolved as wrong."""
    rng = np.random.default_rng(4)
    G = rng.laplace(size=(5000, 20))
    s = _sample(G)
    z, coords, corr = standardised_draws(s, 8, draws=4000, coordinates=20, rng=rng)
    law = fit_law(z, corr, n_boot=0, kurtosis_exact=exact_kurtosis(s, coords, 8))
    assert abs(law.kurtosis - law.kurtosis_exact) < 4 * law.kurtosis_se
    assert abs(law.kurtosis - 8 * law.kurtosis_exact) > 4 * law.kurtosis_se


# ---- the command ------------------------------------------------------------------------------------


def test_noise_command_prints_the_keys(capsys, tmp_path):
    from derive.cli import main

    argv = ["noise", "--model", "mlp", "--batch", "8", "--format", "json", "--quiet"]
    small = ["--at", "0,20", "--draws", "64", "--coordinates", "64", "--boot", "20"]
    assert main(argv + small + ["--plot", str(tmp_path / "noise.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["step"] for p in out["points"]] == [0, 20]
    for point in out["points"]:
        assert {"trace", "top_eigenvalues", "effective_rank", "kurtosis", "nu", "nu_ci", "law"} <= set(point)
        assert point["law"] in ("gaussian", "student-t") and len(point["nu_ci"]) == 2
    assert (tmp_path / "noise.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "vgg", "--batch", "8"], "unknown model"),
        (["--model", "mlp", "--batch", "0"], "batch size"),
        (["--model", "mlp", "--batch", "257"], "batch size"),
        (["--model", "mlp", "--batch", "8", "--at", "0,-5"], "--at"),
    ],
)
def test_noise_command_refuses_bad_input_in_one_line(capsys, args, message):
    from derive.cli import main

    assert main(["noise", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
