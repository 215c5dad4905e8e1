"""`derive stationary OPT --correlation R / --noise-cov FILE [--hessian FILE]`: the linearised stationary
covariance under correlated noise (reference section 9), against independent computations: the
Lyapunov equation written out by hand for each optimizer and solved by vectorisation (Kronecker sums),
not by the engine or scipy's Lyapunov solver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from derive.cli import main


def _json(capsys, *argv: str) -> dict:
    assert main(["stationary", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _lyapunov(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """C with A C + C A^T + B = 0, by (I (x) A + A (x) I) vec C = -vec B (row-major vec; C symmetric)."""
    n = A.shape[0]
    K = np.kron(np.eye(n), A) + np.kron(A, np.eye(n))
    return np.linalg.solve(K, -B.reshape(-1)).reshape(n, n).T


def _agrees(computed, expected) -> bool:
    return bool(np.allclose(computed, expected, rtol=1e-9, atol=0.0))


# ---- the acceptance command ------------------------------------------------------------------
def test_signsgd_off_diagonal_follows_the_arcsine_law(capsys):
    """`derive stationary signsgd --correlation 0.7 --curvature 1,3 --eta 0.01 --sigma 1`: with H diagonal,
    A = -sqrt(2/pi) H / sigma and B = eta [[1, (2/pi) asin r], [., 1]] give C_ij = B_ij / (a_i + a_j); the
    mutant with r in place of (2/pi) asin(r) (22% larger at r = 0.7) must not agree."""
    out = _json(capsys, "signsgd", "--correlation", "0.7", "--curvature", "1,3", "--eta", "0.01", "--sigma", "1")
    cov = np.array(out["covariance"])
    eta, r, a = 0.01, 0.7, np.sqrt(2 / np.pi) * np.array([1.0, 3.0])

    def predicted(pair: float) -> np.ndarray:
        B = eta * np.array([[1.0, pair], [pair, 1.0]])
        return B / (a[:, None] + a[None, :])

    assert cov.shape == (2, 2)
    assert _agrees(cov, predicted(2 / np.pi * np.arcsin(r)))
    assert not _agrees(cov, predicted(r))  # the mutant: r in place of (2/pi) asin(r)
    assert out["expected_loss"] == pytest.approx((1.0 * cov[0, 0] + 3.0 * cov[1, 1]) / 2, rel=1e-12)


def test_signsgd_arcsine_law_holds_for_an_elliptical_law(capsys):
    """Student-t (nu = 5): A = -2 p(0) H / sigma with the law's p(0), and the pair covariance at the minimum is
    still eta (2/pi) asin(r) (Sheppard's formula holds for every elliptical law)."""
    from scipy import stats

    argv = ["signsgd", "--correlation", "0.7", "--curvature", "1,3", "--eta", "0.01", "--noise", "student-t"]
    cov = np.array(_json(capsys, *argv, "--nu", "5")["covariance"])
    a = 2 * stats.t(5).pdf(0.0) * np.array([1.0, 3.0])
    assert _agrees(
        cov,
        0.01
        * np.array([[1.0, 2 / np.pi * np.arcsin(0.7)], [2 / np.pi * np.arcsin(0.7), 1.0]])
        / (a[:, None] + a[None, :]),
    )
    assert not _agrees(cov[0, 1], 0.01 * 0.7 / (a[0] + a[1]))


# ---- full H and a covariance file --------------------------------------------------------------
H = np.array([[2.0, 0.8], [0.8, 1.0]])
SIGMA = np.array([[1.0, -0.6], [-0.6, 2.25]])  # sigma = (1, 1.5), r = -0.4


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "H.npy", H)
    np.save(tmp_path / "Sigma.npy", SIGMA)
    return tmp_path


def test_sgd_and_signsgd_full_hessian(capsys, files):
    """SGD: H C + C H = eta Sigma. SignSGD: A = -sqrt(2/pi) diag(1/sigma) H, B = eta (2/pi) asin(R). The
    diagonal of Sigma only (independent noise) must not agree."""
    h, s = str(files / "H.npy"), str(files / "Sigma.npy")
    sgd = np.array(_json(capsys, "sgd", "--noise-cov", s, "--hessian", h, "--eta", "0.01")["covariance"])
    assert _agrees(sgd, _lyapunov(-H, 0.01 * SIGMA))
    assert not _agrees(sgd, _lyapunov(-H, 0.01 * np.diag(np.diag(SIGMA))))
    out = _json(capsys, "signsgd", "--noise-cov", s, "--hessian", h, "--eta", "0.01")
    scales = np.sqrt(np.diag(SIGMA))
    R = SIGMA / np.outer(scales, scales)
    A = -np.sqrt(2 / np.pi) * np.diag(1 / scales) @ H
    assert _agrees(out["covariance"], _lyapunov(A, 0.01 * 2 / np.pi * np.arcsin(R)))
    assert not _agrees(out["covariance"], _lyapunov(A, 0.01 * R))  # r in place of (2/pi) asin(r)
    assert out["expected_loss"] == pytest.approx(np.trace(H @ np.array(out["covariance"])) / 2, rel=1e-12)


def test_adam_full_hessian_keeps_the_momentum(capsys, files):
    """Adam at eps = 0 about the minimum (v = sigma^2, bias corrections 1): x' = -D m, m' = rho1 (H x - m)
    with m's noise sqrt(eta) rho1 S dW; v decouples at linear order. The (x, m) Lyapunov equation:
    A = [[0, -D], [rho1 H, -rho1 I]], B = diag(0, eta rho1^2 Sigma), D = diag(1/sigma)."""
    out = _json(
        capsys, "adam", "--noise-cov", str(files / "Sigma.npy"), "--hessian", str(files / "H.npy"),
        "--eta", "0.01", "--hyper", "beta1=0.95", "--hyper", "eps=0",
    )  # fmt: skip
    eta, rho1 = 0.01, 0.05 / 0.01
    D = np.diag(1 / np.sqrt(np.diag(SIGMA)))
    A = np.block([[np.zeros((2, 2)), -D], [rho1 * H, -rho1 * np.eye(2)]])
    B = np.block([[np.zeros((2, 2)), np.zeros((2, 2))], [np.zeros((2, 2)), eta * rho1**2 * SIGMA]])
    assert out["states"][:4] == ["x_1", "x_2", "m_1", "m_2"]
    assert _agrees(out["covariance"], _lyapunov(A, B)[:2, :2])
    B_diagonal = B.copy()
    B_diagonal[2, 3] = B_diagonal[3, 2] = 0.0
    assert not _agrees(out["covariance"], _lyapunov(A, B_diagonal)[:2, :2])


def test_rmspropw_diagonal_h_independent_noise_matches_the_per_coordinate_law(capsys):
    """With H diagonal and r = 0 the d-dim result is the per-coordinate one of `derive stationary`."""
    args = ["rmspropw", "--curvature", "1,4", "--eta", "0.01", "--sigma", "2", "--hyper", "theta=0.5"]
    per = _json(capsys, *args)
    joint = _json(capsys, *args, "--correlation", "0")
    assert joint["expected_loss"] == pytest.approx(per["expected_loss"], rel=1e-9)
    assert joint["covariance"][0][1] == 0.0


def test_text_prints_the_matrix(capsys):
    assert main(["stationary", "sgd", "--correlation", "0.5", "--curvature", "1,2", "--eta", "0.01"]) == 0
    text = capsys.readouterr().out
    assert "Cov(x) at stationarity:" in text and "E f = tr(H Cov(x))/2 = 0.005" in text


# ---- one-line refusals -------------------------------------------------------------------------
def _refused(capsys, *argv: str) -> str:
    assert main(["stationary", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_hessian_files_are_one_line_errors(capsys, tmp_path):
    cases = {
        "nonsym.npy": (np.array([[2.0, 1.0], [0.9, 3.0]]), r"not symmetric: [0, 1] = 1.0 but [1, 0] = 0.9"),
        "indef.npy": (np.array([[1.0, 2.0], [2.0, 1.0]]), "not positive definite: its smallest eigenvalue is -1"),
        "nan.npy": (np.array([[1.0, np.nan], [np.nan, 1.0]]), "non-finite entry"),
        "three.npy": (np.eye(3), "is 3 x 3 but the noise covariance is 2 x 2"),
        "pickled.npy": (np.array([[1, None], [None, 1]], dtype=object), "not a readable .npy array"),
        "vector.npy": (np.ones(2), "square d x d array, got shape (2,)"),
    }
    np.save(tmp_path / "Sigma.npy", SIGMA)
    for name, (array, message) in cases.items():
        np.save(tmp_path / name, array, allow_pickle=True)
        err = _refused(
            capsys, "sgd", "--noise-cov", str(tmp_path / "Sigma.npy"), "--hessian", str(tmp_path / name), "--eta", "0.1"
        )
        assert message in err, (name, err)
    assert "no such file" in _refused(capsys, "sgd", "--hessian", str(tmp_path / "missing.npy"), "--eta", "0.1")


def test_refusals_name_what_is_missing(capsys):
    err = _refused(capsys, "lion", "--correlation", "0.5", "--curvature", "1,2", "--eta", "0.01")
    assert "derived for sgd, signsgd, rmsprop, rmspropw, adam, adamw, not lion" in err
    err = _refused(
        capsys, "signsgd", "--correlation", "0.5", "--curvature", "1,2", "--eta", "0.01", "--noise", "uniform"
    )
    assert "under the uniform law" in err and "gaussian, student-t, cauchy and laplace" in err
    err = _refused(
        capsys, "rmsprop", "--correlation", "0.5", "--curvature", "1,2", "--eta", "0.01", "--noise", "cauchy"
    )
    assert "needs E[zeta^2], which is infinite under the cauchy law" in err
    err = _refused(
        capsys, "signsgd", "--correlation", "0.5", "--curvature", "1,2", "--eta", "0.01", "--noise", "student-t"
    )
    assert "needs a number for nu (--nu)" in err
    err = _refused(capsys, "sgd", "--correlation", "-0.7", "--curvature", "1,2,3", "--eta", "0.01")
    assert "-1/(d - 1) = -0.5 <= r <= 1" in err
    assert "use one" in _refused(
        capsys, "sgd", "--correlation", "0.5", "--curvature", "1,2", "--eta", "1", "--full-matrix", "2"
    )
    assert "give --eta" in _refused(capsys, "sgd", "--correlation", "0.5", "--curvature", "1,2")
