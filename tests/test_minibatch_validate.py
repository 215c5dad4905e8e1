"""validate --gradients minibatch (issue 18): derived SDEs driven by measured minibatch noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from derive.validate import ValidationInputError  # noqa: E402
from derive.validate.least_squares import (  # noqa: E402
    discrete_second_moment,
    rotated_least_squares,
    scheme_second_moment,
)
from derive.validate.minibatch import GradientSample, MeasuredNoise  # noqa: E402
from derive.validate.minibatch_sde import MinibatchSDEPath, NumericSDE, correlated_normals, derived_sde  # noqa: E402


def _values(optimizer, eta=0.1):
    from derive.simulate import hyperparameters

    return hyperparameters(optimizer, eta, 1.0, None)


def test_numeric_sde_is_the_derived_sde_with_per_coordinate_sigma():
    from derive import symbols as S

    values = _values("adam", 0.01)
    sde = derived_sde("adam")
    numeric = NumericSDE(sde, values)
    rng = np.random.default_rng(0)
    state = np.stack([rng.normal(size=4), rng.normal(size=4), rng.uniform(0.1, 1, size=4)])
    g, sigma, t = rng.normal(size=4), rng.uniform(0.1, 2, size=4), 0.37
    b, G = numeric.coefficients(state, g, t, sigma)
    subs = {p: values[p.name] for p in sde.parameters if p != S.sigma}
    published = derived_sde("adam", "published")
    for i in range(4):
        point = {**dict(zip(sde.state, state[:, i], strict=True)), S.g: g[i], S.t: t, S.sigma: sigma[i], **subs}
        for j, e in enumerate(sde.drift):
            assert b[j][i] == pytest.approx(float(sde.explicit(e).subs(point)), rel=1e-12, abs=1e-14)
        for j in range(3):
            for k in range(2):
                assert G[j][k][i] == pytest.approx(float(sde.explicit(sde.diffusion[j, k]).subs(point)), abs=1e-14)
        # the comparison can fail: the published form's x drift differs at the same point
        assert b[0][i] != pytest.approx(float(published.explicit(published.drift[0]).subs(point)), rel=1e-6)
    assert numeric.full_noise == "linear"
    assert NumericSDE(derived_sde("signsgd"), _values("signsgd")).full_noise == "sign"


def test_euler_scheme_second_moment_is_the_chain_at_the_optimizers_step():
    ls = rotated_least_squares(n=40, curvatures=(1.0, 0.3, 0.05))
    for eta, batch in ((0.1, 4), (0.3, 2)):
        chain = discrete_second_moment(ls, eta, batch)
        scheme = scheme_second_moment(ls, eta, batch, eta, "minibatch-full")
        assert np.abs(chain - scheme).max() < 1e-12 * np.abs(chain).max()
        # a smaller SDE step moves it by O(eta): the bias is real and not a rounding artefact
        fine = scheme_second_moment(ls, eta, batch, eta / 100, "minibatch-full")
        assert np.trace(scheme) - np.trace(fine) > 1e-3 * np.trace(fine)


def _noise_at_a_point(batch=4):
    ls = rotated_least_squares(n=48, curvatures=(1.0, 0.4, 0.1), noise=0.5, seed=3)
    problem = ls.problem()
    x = ls.minimum + np.array([0.8, -0.5, 0.6])
    return MeasuredNoise(problem, batch).at(x)


def _pair_sign_covariance(a_i, a_j, r):
    """Cov[sign(zeta_i + a_i), sign(zeta_j + a_j)] for standard normals of correlation r (section 9)."""
    import scipy.stats

    phi2 = scipy.stats.multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]]).cdf([-a_i, -a_j])
    return 4 * (phi2 - scipy.stats.norm.cdf(-a_i) * scipy.stats.norm.cdf(-a_j))


def _engine_sign_pair():
    """The engine's SignSGD pair covariance Cov[dx_i, dx_j]/dt (derive.pairs, section 9) as a numeric
    function of (eta, g_i, g_j, sigma_i, sigma_j, r)."""
    import sympy as sp

    from derive.bivariate import lambdify_modules
    from derive.pairs import derive_pairs

    pairs = derive_pairs("signsgd")
    entry = pairs.entries[("x", "x")]
    names = ("eta", "g_i", "g_j", "sigma_i", "sigma_j")
    symbols = {s.name: s for s in entry.free_symbols}
    assert set(symbols) == {*names, pairs.r.name}, symbols
    return sp.lambdify([*(symbols[n] for n in names), pairs.r], entry, modules=lambdify_modules())


def test_engine_sign_pair_covariance_is_the_bivariate_normal_one():
    """Two routes to the covariance the SignSGD increments must carry: the engine's derived pair
    covariance (derive.pairs) over eta against 4 [Phi2 - Phi Phi] by scipy's bivariate normal CDF,
    across r from -0.9 to 0.95; the mutant r = 0 (the diagonal model) differs by > 1e-2, 10^4 tolerances."""
    pair = _engine_sign_pair()
    for g_i, g_j, s_i, s_j in [(0.3, -0.8, 1.0, 0.5), (-1.2, 0.4, 0.6, 2.0), (0.0, 0.05, 0.2, 0.1)]:
        for r in (-0.9, -0.3, 0.0, 0.5, 0.95):
            want = _pair_sign_covariance(g_i / s_i, g_j / s_j, r)
            assert abs(pair(0.1, g_i, g_j, s_i, s_j, r) / 0.1 - want) < 1e-6, (g_i, g_j, r)
            if abs(r) >= 0.5:
                assert abs(pair(0.1, g_i, g_j, s_i, s_j, 0.0) / 0.1 - want) > 1e-2


def test_signsgd_moment_matched_increments_have_the_sign_covariance():
    pair = _engine_sign_pair()
    noise = _noise_at_a_point()
    g, var = noise.gradient, noise.variances
    sigma = np.sqrt(var)
    numeric = NumericSDE(derived_sde("signsgd"), _values("signsgd"))
    b, G = numeric.coefficients(np.zeros((1, 3)), g, 0.0, sigma)
    rng = np.random.default_rng(7)
    M = 200_000
    e = noise.draw(rng, M)
    u = correlated_normals("sign", e, g, sigma, 1, b[0])[0]  # [M, d]
    r = np.corrcoef(e.T)
    assert np.abs(r[np.triu_indices(3, 1)]).max() > 0.3  # correlations a diagonal model would miss
    assert np.abs(u.mean(axis=0)).max() < 4 * u.std(axis=0).max() / math.sqrt(M)
    for i in range(3):
        for j in range(3):
            prod = u[:, i] * u[:, j]
            se = prod.std() / math.sqrt(M)
            spread = math.sqrt((1 - b[0][i] ** 2) * (1 - b[0][j] ** 2))
            want = 1.0 if i == j else _pair_sign_covariance(g[i] / sigma[i], g[j] / sigma[j], r[i, j]) / spread
            assert abs(prod.mean() - want) < 4 * se, (i, j, prod.mean(), want)
            # the same through the engine's derived pair covariance: Cov[G_i u_i, G_j u_j] = Cov[dx_i, dx_j]
            scaled = G[0][0][i] * G[0][0][j] * prod
            engine = pair(0.1, g[i], g[j], sigma[i], sigma[j], r[i, j]) if i != j else 0.1 * (1 - b[0][i] ** 2)
            assert abs(scaled.mean() - engine) < 4 * scaled.std() / math.sqrt(M), (i, j, scaled.mean(), engine)
            if i != j:  # mutant: independent normals (the diagonal model) miss the pair covariance
                assert abs(want) > 8 * se
    # the increments' scale is the derived diffusion: G_1 u has variance eta (1 - b^2) per coordinate
    assert np.allclose((G[0][0] * u).var(axis=0), 0.1 * (1 - b[0] ** 2), rtol=0.02)


def test_adam_full_noise_scales_the_factor_as_the_derived_diffusion_says():
    noise = _noise_at_a_point()
    g, var = noise.gradient, noise.variances
    sigma = np.sqrt(var)
    values = _values("adam", 0.01)
    numeric = NumericSDE(derived_sde("adam"), values)
    _, G = numeric.coefficients(np.ones((3, 3)), g, 1.0, sigma)
    rng = np.random.default_rng(11)
    M = 200_000
    e = noise.draw(rng, M)
    dW = correlated_normals("linear", e, g, sigma, 2, None)
    m_noise = G[1][0] * dW[0]
    # the m noise is the measured noise itself through the low-rank factor, times sqrt(eta) rho1
    assert np.allclose(m_noise, math.sqrt(values["eta"]) * values["rho1"] * e, rtol=1e-12, atol=1e-15)
    # v's noise: across coordinates the section-9 covariance eta rho2^2 (4 g_i g_j S_ij + 2 S_ij^2)
    v_noise = G[2][0] * dW[0] + G[2][1] * dW[1]
    cov_e = noise.factor.numpy() @ noise.factor.numpy().T
    want = values["eta"] * values["rho2"] ** 2 * (4 * np.outer(g, g) * cov_e + 2 * cov_e**2)
    got = v_noise.T @ v_noise / M
    se = np.array([[(v_noise[:, i] * v_noise[:, j]).std() for j in range(3)] for i in range(3)]) / math.sqrt(M)
    assert np.all(np.abs(got - want) < 4 * se)
    mutant = G[2][0] * dW[0] + G[2][1] * np.random.default_rng(12).standard_normal((M, 3))
    assert np.any(np.abs(mutant.T @ mutant / M - want) > 4 * se)


def _control(**kw):
    from derive.validate.minibatch_control import least_squares_control

    ls = rotated_least_squares(n=64, curvatures=(1.0, 0.2))
    return least_squares_control(ls, eta=0.3, batch=2, seeds=range(32), steps=100, burn=25, n_boot=0, **kw)


def test_least_squares_control_resolves_full_against_isotropic_and_matches_the_closed_forms():
    control = _control()
    full, iso = control.estimates["minibatch-full"], control.estimates["isotropic"]
    for estimate in control.estimates.values():  # optimizer, full, isotropic: each its exact value
        assert estimate.agrees, control.text()
        assert estimate.bias != 0  # the O(eta) bias is printed beside, not hidden
    value, se, resolved = control.difference()
    assert resolved and value > 0, control.text()
    assert iso.exact / full.exact > 1.5  # the factor being resolved
    assert "bias" in control.text() and "resolved" in control.text()


def test_least_squares_control_fails_when_the_full_variant_gets_isotropic_noise(monkeypatch):
    original = MinibatchSDEPath._increments

    def isotropic_for_full(self, s, h, t):
        if self.variant != "minibatch-full":
            return original(self, s, h, t)
        if self.sigma_iso is None:
            self.sigma_iso = math.sqrt(float(self.noise.at(self.state[0, s]).variances.sum()) / self.problem.dim)
        self.variant = "isotropic"
        try:
            return original(self, s, h, t)
        finally:
            self.variant = "minibatch-full"

    monkeypatch.setattr(MinibatchSDEPath, "_increments", isotropic_for_full)
    control = _control(variants=("minibatch-full",))
    assert not control.estimates["minibatch-full"].agrees, control.text()


def test_mlp_minibatch_validation_names_variants_and_is_reproducible_per_seed():
    from derive.validate.minibatch_validation import VARIANTS, validate_minibatch

    both = validate_minibatch("mlp", "sgd", batch=8, eta=0.1, steps=3, seeds=[0, 1], n_boot=20)
    alone = validate_minibatch("mlp", "sgd", batch=8, eta=0.1, steps=3, seeds=[1], n_boot=20)
    for label, obs in both.observables.items():
        for name in ("loss", "distance"):
            assert np.array_equal(obs[name][1], alone.observables[label][name][0]), (label, name)
    data = both.to_json()
    assert data["variants"] == list(VARIANTS)
    observables = {"loss", "distance", "distance_top", "distance_rest"}
    assert set(data["fidelity"]) == observables
    assert set(data["fidelity"]["loss"]) == {*VARIANTS, "optimizer replicate"}
    assert {d["observable"] for d in data["differences"]} == observables
    assert data["projection"]["ranks"] == [10] * 4
    for obs in both.observables.values():
        parts = obs["distance_top"] + obs["distance_rest"]
        assert np.allclose(parts, obs["distance"], rtol=1e-12, atol=0)
        assert obs["distance_top"].min() >= 0 and obs["distance_rest"].min() >= -1e-12 * obs["distance"].max()
    assert "distance_top" in both.table() and "distance_rest" in both.table()
    assert all("resolved" in d for d in data["differences"])
    assert any("no exact coupling" in n for n in data["notes"])
    assert both.observables["minibatch-full"]["distance"][:, 1:].min() > 0


def test_distance_projections_use_the_top_eigenvectors_of_sigma():
    """U from the N x N Gram matrix spans the top eigenvectors of Sigma = Gc^T Gc / N (explicit d x d
    eigh); the projected distances are those of the explicit projector. Mutant: G not centred."""
    from derive.validate.minibatch_validation import projected_distances

    rng = np.random.default_rng(5)
    n, d, k = 12, 30, 4
    grads = rng.standard_normal((n, d)) * rng.uniform(0.2, 3.0, size=d) + rng.standard_normal(d)
    sample = GradientSample(np.zeros(d), torch.from_numpy(grads))
    u = sample.top_directions(k)
    centred = grads - grads.mean(axis=0)
    lam, v = np.linalg.eigh(centred.T @ centred / n)
    v = v[:, np.argsort(lam)[::-1][:k]]
    assert np.allclose(u.T @ u, np.eye(k), rtol=0, atol=1e-12)
    assert np.allclose(u @ u.T, v @ v.T, rtol=0, atol=1e-10)
    assert sample.top_directions(50).shape == (d, n - 1)  # at most the rank N - 1
    lam_raw, v_raw = np.linalg.eigh(grads.T @ grads / n)  # mutant: Sigma without g g^T subtracted
    v_raw = v_raw[:, np.argsort(lam_raw)[::-1][:k]]
    assert np.abs(u @ u.T - v_raw @ v_raw.T).max() > 1e-2
    params, reference = rng.standard_normal((3, 2, d)), rng.standard_normal((2, d))
    top, rest = projected_distances(params, reference, [u, u[:, :2]])
    for j, basis in enumerate([v, v[:, :2]]):
        diff = params[:, j] - reference[j]
        assert np.allclose(top[:, j], np.square(diff @ basis @ basis.T).sum(axis=1), rtol=1e-12, atol=0)
        assert np.allclose(rest[:, j], np.square(diff - diff @ basis @ basis.T).sum(axis=1), rtol=1e-10, atol=0)


@pytest.mark.parametrize(("model", "optimizer"), [("cnn", "signsgd"), ("mlp", "adam")])
def test_other_models_and_optimizers_run(model, optimizer):
    from derive.validate.minibatch_validation import validate_minibatch

    result = validate_minibatch(model, optimizer, batch=8, eta=0.01, steps=2, seeds=[0], replicate=False, n_boot=0)
    for obs in result.observables.values():
        assert np.all(np.isfinite(obs["loss"])) and np.all(np.isfinite(obs["distance"]))
    assert any("Gaussian closure" in n for n in result.notes)


def test_bad_input_is_one_line(capsys):
    from derive.cli import main
    from derive.validate.minibatch_validation import validate_minibatch

    base = ["validate", "--model", "mlp", "--optimizer", "sgd", "--format", "json", "--quiet"]
    cases = [
        (["--gradients", "minibatch", "--batch", "300"], "N = 256"),
        (["--gradients", "minibatch"], "needs --batch"),
        (["--gradients", "minibatch", "--batch", "8", "--sigma", "0.1"], "takes no --sigma"),
        (["--batch", "8"], "is for --gradients minibatch"),
        (["--form", "published"], "is for --gradients minibatch"),
        (["--gradients", "minibatch", "--batch", "8", "--variants", "full"], "unknown SDE variant"),
        (["--gradients", "minibatch", "--batch", "8", "--top", "-1"], "top must be an integer >= 0"),
        (["--top", "3"], "is for --gradients minibatch"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    quad = ["validate", "--model", "quadratic", "--optimizer", "sgd", "--gradients", "minibatch", "--batch", "4"]
    assert main(quad + ["--format", "json"]) == 2
    assert "with a dataset" in capsys.readouterr().err
    with pytest.raises(ValidationInputError, match="no minibatch model"):
        validate_minibatch("mlp", "lion", batch=8)
