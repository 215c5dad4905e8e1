"""The correlated noise model (reference section 9) and the linearised d-dimensional SDE built from the
pair covariances."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derive.correlation import Mixing, NoiseModel, NoiseModelError
from derive.errors import InfiniteMomentError
from derive.linearised import linearised


# ---- the model --------------------------------------------------------------------------------
def test_correlated_model_and_its_pieces():
    model = NoiseModel.correlated(0.3, 3, sigma=[1.0, 2.0, 0.5])
    Sigma = model.covariance
    assert np.allclose(model.scales, [1.0, 2.0, 0.5]) and np.allclose(np.diag(Sigma), [1.0, 4.0, 0.25])
    R = model.correlation
    assert np.allclose(R, 0.7 * np.eye(3) + 0.3)
    S = model.factor
    assert np.allclose(S @ S.T, Sigma)
    n = 50_000
    draws = model.draw(n, seed=5)
    assert np.array_equal(draws, model.draw(n, seed=5))  # the same seed, the same numbers
    se = np.sqrt((np.outer(np.diag(Sigma), np.diag(Sigma)) + Sigma**2) / n)  # of a Gaussian sample covariance
    assert np.all(np.abs(np.cov(draws.T) - Sigma) <= 4 * se)  # draws with r = 0 miss by 64 SE


def test_semidefinite_covariance_has_an_eigen_factor():
    model = NoiseModel.correlated(-0.5, 3)  # r = -1/(d - 1): singular, allowed
    S = model.factor
    assert np.allclose(S @ S.T, model.covariance) and np.linalg.matrix_rank(model.covariance) == 2


@pytest.mark.parametrize(
    "r,d,message",
    [
        (-0.6, 3, r"-1/\(d - 1\) = -0\.5 <= r <= 1 with d = 3"),
        (1.2, 4, r"-1/\(d - 1\) = -0\.333333 <= r <= 1 with d = 4"),
    ],
)
def test_correlation_range_says_what_is_allowed(r, d, message):
    with pytest.raises(NoiseModelError, match=message):
        NoiseModel.correlated(r, d)


def test_covariance_file_errors(tmp_path):
    def saved(array, name="c.npy"):
        path = tmp_path / name
        np.save(path, array, allow_pickle=True)
        return path

    good = np.array([[2.0, 0.5], [0.5, 1.0]])
    model = NoiseModel.load(saved(good), dim=2, curvatures=[1.0, 3.0])
    assert np.allclose(model.covariance, good) and np.allclose(model.correlation[0, 1], 0.5 / np.sqrt(2))
    cases = [
        (np.array([[1.0, 0.5], [0.4, 1.0]]), r"not symmetric: \[0, 1\] = 0\.5 but \[1, 0\] = 0\.4"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), r"not positive semidefinite: its smallest eigenvalue is -1"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), r"non-finite entry: \[0, 1\] = nan"),
        (np.ones((2, 3)), r"square d x d array, got shape \(2, 3\)"),
        (np.array([[0.0, 0.0], [0.0, 1.0]]), r"coordinate 0 has noise variance \[0, 0\] = 0\.0"),
        (np.array([[1, None], [None, 1]], dtype=object), "not a readable .npy array"),  # pickled: refused
    ]
    for n, (array, message) in enumerate(cases):
        with pytest.raises(NoiseModelError, match=message):
            NoiseModel.load(saved(array, f"bad{n}.npy"), dim=2)
    with pytest.raises(NoiseModelError, match=r"is 2 x 2 but --dim is 3"):
        NoiseModel.load(saved(good), dim=3)
    with pytest.raises(NoiseModelError, match=r"is 2 x 2 but 3 curvatures were given"):
        NoiseModel.load(saved(good), curvatures=[1, 2, 3])
    with pytest.raises(NoiseModelError, match="no such file"):
        NoiseModel.load(tmp_path / "missing.npy")


def test_elliptical_mixing():
    """E[W^m | zeta = z] against its defining integral, and the laws without a model refused."""
    z = sp.Rational(7, 10)
    t = Mixing("student-t", sp.Integer(5))
    value, _ = t.conditional_moment(1, z, "test")
    w = sp.Symbol("w", positive=True)
    nu = 5
    prior = w ** (-nu / sp.Integer(2) - 1) * sp.exp(-nu / (2 * w))  # W = nu / chi2_nu, up to a constant
    like = w ** sp.Rational(-1, 2) * sp.exp(-(z**2) / (2 * w))
    ratio = sp.Integral(w * prior * like, (w, 0, sp.oo)).evalf(20) / sp.Integral(prior * like, (w, 0, sp.oo)).evalf(20)
    assert float(value) == pytest.approx(float(ratio), rel=1e-12)
    lap, _ = Mixing("laplace").conditional_moment(2, z, "test")
    prior = sp.exp(-w / 2)
    ratio = sp.Integral(w**2 * prior * like, (w, 0, sp.oo)).evalf(20) / sp.Integral(prior * like, (w, 0, sp.oo)).evalf(
        20
    )
    assert float(lap) == pytest.approx(float(ratio), rel=1e-12)
    with pytest.raises(InfiniteMomentError, match="nu > 1"):
        Mixing("student-t", sp.Integer(1)).conditional_moment(1, z, "test")
    with pytest.raises(NoiseModelError, match="the uniform law"):
        _ = NoiseModel.correlated(0.2, 2, law="uniform").mixing


def test_student_t_draws_have_t_marginals():
    draws = NoiseModel.correlated(0.7, 2, law="student-t", nu=6).draw(20_000, seed=2)
    from scipy import stats

    assert stats.kstest(draws[:, 1], stats.t(6).cdf).pvalue > 1e-3


# ---- the linearised system --------------------------------------------------------------------
H = sp.Matrix([[2, 1], [1, 3]])
eta = sp.Symbol("eta", positive=True)


def test_sgd_linearised_is_eta_sigma():
    model = NoiseModel.symbolic(2)
    system = linearised("sgd", model, H)
    assert system.A == -H
    assert sp.simplify(system.B - eta * model.covariance) == sp.zeros(2, 2)


def test_signsgd_linearised_follows_the_arcsine_law():
    """B's off-diagonal entries: eta (2/pi) asin(r_ij), derived through Phi2 at g = 0, for a symbolic Sigma
    and for numbers; A = -sqrt(2/pi) diag(1/sigma) H."""
    model = NoiseModel.symbolic(2)
    system = linearised("signsgd", model, H)
    s = model.scales
    r12 = model.covariance[0, 1] / (s[0] * s[1])
    assert sp.simplify(system.B[0, 1] - eta * 2 / sp.pi * sp.asin(r12)) == 0
    assert sp.simplify(system.A - (-sp.sqrt(2 / sp.pi) * sp.diag(1 / s[0], 1 / s[1]) * H)) == sp.zeros(2, 2)
    numeric = NoiseModel.correlated(0.7, 3, sigma=[1.0, 0.5, 2.0], law="student-t", nu=5)
    A, B = linearised("signsgd", numeric, np.diag([1.0, 3.0, 2.0]), values={"eta": 0.01}).numeric()
    off = ~np.eye(3, dtype=bool)
    assert np.allclose(B[off], 0.01 * 2 / np.pi * np.arcsin(0.7)) and np.allclose(np.diag(B), 0.01)


def test_rmsprop_linearised_x_block():
    """A = -(D H + theta I), B = eta D Sigma D with D = diag(1/(sigma_i + eps)) (v_i = sigma_i^2)."""
    model = NoiseModel.correlated(-0.4, 2, sigma=[1.0, 0.5])
    values = {"eta": 0.01, "rho": 2.0, "eps": 0.1, "theta": 0.3}
    system = linearised("rmspropw", model, np.array([[2.0, 1.0], [1.0, 3.0]]), values)
    A, B = system.numeric()
    D = np.diag(1 / (model.scales + 0.1))
    assert system.names == ["x_1", "x_2", "v_1", "v_2"]
    assert np.allclose(A[:2, :2], -(D @ np.array([[2.0, 1.0], [1.0, 3.0]]) + 0.3 * np.eye(2)))
    assert np.allclose(B[:2, :2], 0.01 * D @ model.covariance @ D)
    C = system.stationary_covariance()
    assert np.allclose(A @ C + C @ A.T + B, 0, atol=1e-15)


# ---- the command-line options ------------------------------------------------------------------
def test_noise_options_build_the_model_and_refuse_bad_input(tmp_path):
    import argparse

    from derive.cli.noise_options import add_noise_options, noise_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--noise", default="gaussian")
    parser.add_argument("--nu", default=None)
    add_noise_options(parser)
    assert noise_model(parser.parse_args([]), 3, None) is None
    model = noise_model(parser.parse_args(["--correlation", "0.5"]), 3, 2.0)
    assert np.allclose(model.covariance, 4.0 * (0.5 * np.eye(3) + 0.5))
    with pytest.raises(NoiseModelError, match=r"-1/\(d - 1\) = -0.5 <= r <= 1"):
        noise_model(parser.parse_args(["--correlation", "-0.6"]), 3, None)
    path = tmp_path / "cov.npy"
    np.save(path, np.array([[2.0, 0.5], [0.5, 1.0]]))
    model = noise_model(parser.parse_args(["--noise-cov", str(path)]), 2, None, curvatures=[1.0, 3.0])
    assert np.allclose(model.scales, [np.sqrt(2.0), 1.0])
    with pytest.raises(NoiseModelError, match="drop --sigma"):
        noise_model(parser.parse_args(["--noise-cov", str(path)]), 2, 1.0)
    with pytest.raises(NoiseModelError, match="but 3 curvatures were given"):
        noise_model(parser.parse_args(["--noise-cov", str(path)]), 2, None, curvatures=[1.0, 2.0, 3.0])
    with pytest.raises(SystemExit):  # argparse: not both
        parser.parse_args(["--correlation", "0.1", "--noise-cov", str(path)])
