"""Minibatch training runs (the real optimizers, SVAG) and the least-squares positive control
(issue 18): exact recursions, reproducible independent runs, closed forms against the chain."""

import numpy as np
import pytest

from derive.validate import ValidationInputError
from derive.validate.least_squares import (
    control_closed_forms,
    rotated_least_squares,
    sgd_chain_distance,
    stationary_covariance,
)

# ---- the positive control's closed forms and the discrete chain ------------------------------------


def test_lyapunov_route_is_the_engines_full_matrix_law():
    """The numeric solve (coefficients read off the engine's SGD SDE) equals sgd_full_matrix's
    symbolic covariance (the engine's own Lyapunov solve) on a 2-d full H."""
    import sympy as sp

    from derive import symbols as S
    from derive.theory.stationary import sgd_full_matrix

    H = np.array([[1.0, 0.3], [0.3, 0.2]])
    Sigma = np.array([[0.5, -0.1], [-0.1, 0.05]])
    eta = 0.07
    sym = sgd_full_matrix(2)
    subs = {S.eta: eta}
    for M, name in ((H, "h"), (Sigma, "Sigma")):
        subs.update({sp.Symbol(f"{name}_{i + 1}{j + 1}", real=True): M[i, j] for i in range(2) for j in range(i, 2)})
    expected = np.array(sym.covariance.subs(subs).evalf(), dtype=float)
    assert np.allclose(stationary_covariance(H, Sigma, eta), expected, rtol=1e-12, atol=0)
    # mutant: Sigma's off-diagonal dropped (the diagonal model) is far off
    assert not np.allclose(stationary_covariance(H, np.diag(np.diag(Sigma)), eta), expected, rtol=1e-2)


def test_control_closed_forms_separate_the_models_and_bias_is_order_eta():
    ls = rotated_least_squares()
    cf = control_closed_forms(ls, 0.1, 4)
    assert cf.ratio > 3  # the factor a validation must resolve (4.28 here)
    assert cf.trace_full < cf.trace_diag < cf.trace_isotropic  # the rotation separates all three
    assert cf.loss_full == pytest.approx(cf.loss_isotropic, rel=1e-12)  # E f sees only tr Sigma
    # Sigma* close to noise^2 H: the ratio close to tr H tr H^-1 / d^2
    H = ls.hessian
    assert cf.ratio == pytest.approx(np.trace(H) * np.trace(np.linalg.inv(H)) / 16, rel=0.1)
    # SGD's bias against the SDE is O(eta): relative bias halves with eta
    rel = [control_closed_forms(ls, eta, 4).bias / control_closed_forms(ls, eta, 4).trace_full for eta in (0.1, 0.05)]
    assert 1.8 < rel[0] / rel[1] < 2.3


def test_sgd_chain_matches_the_full_model_and_resolves_the_isotropic_one():
    """The minibatch SGD chain's stationary E|x - x*|^2 against the closed forms (eta 0.1, B 4)."""
    ls = rotated_least_squares()
    eta, batch = 0.1, 4
    cf = control_closed_forms(ls, eta, batch)
    mean, se = sgd_chain_distance(ls, eta, batch, paths=100, steps=8000, burn=1500, seed=0)
    gaps = {
        "exact discrete chain": mean - cf.trace_discrete,
        "full": mean - cf.trace_full,
        "diagonal": mean - cf.trace_diag,
        "isotropic": mean - cf.trace_isotropic,
    }
    print(f"E|x - x*|^2 = {mean:.5f} +- {se:.5f}; O(eta) bias of the full model (exact): {cf.bias:.5f}")
    for name, gap in gaps.items():
        print(f"  gap to {name}: {gap:+.5f} = {gap / se:+.1f} SE")
    assert abs(gaps["exact discrete chain"]) < 4 * se
    assert abs(gaps["full"]) < abs(cf.bias) + 4 * se
    # mutants: the isotropic and the diagonal model are resolved as wrong
    assert abs(gaps["isotropic"]) > 50 * se and abs(gaps["diagonal"]) > 50 * se


# ---- minibatch training: the real optimizers, exactly -----------------------------------------------

torch = pytest.importorskip("torch")

from derive.validate.minibatch import BatchSampler  # noqa: E402
from derive.validate.minibatch_runs import MINIBATCH_STREAM, SVAG_STREAM, minibatch_training  # noqa: E402


def _indices(seed, stream, n, batch, sampling):
    return BatchSampler(n, batch, sampling, np.random.default_rng([seed, stream, 17]))


@pytest.fixture(scope="module")
def small_ls():
    return rotated_least_squares(n=40, curvatures=(1.0, 0.3, 0.1), noise=0.5, seed=1)


@pytest.mark.parametrize("optimizer, sampling", [("sgd", "replacement"), ("sgd", "epoch"), ("signsgd", "replacement")])
def test_minibatch_optimizer_is_the_update_rule_on_the_drawn_batches(small_ls, optimizer, sampling):
    ls, eta, batch, seed = small_ls, 0.05, 6, 7
    run = minibatch_training(
        ls.problem(), optimizer, batch=batch, eta=eta, steps=25, seeds=[seed], sampling=sampling, record=[0, 10, 25]
    )
    draw, x, xs = _indices(seed, MINIBATCH_STREAM, ls.n, batch, sampling), np.zeros(ls.dim), {0: np.zeros(ls.dim)}
    for k in range(1, 26):
        idx = draw()
        grad = ls.a[idx].T @ (ls.a[idx] @ x - ls.y[idx]) / batch
        x = x - eta * (grad if optimizer == "sgd" else np.sign(grad))
        xs[k] = x
    for j, k in enumerate(run.record):
        assert np.allclose(run.params[0, j], xs[k], rtol=0, atol=1e-12)
        assert run.trajectory.loss[0, j] == pytest.approx(0.5 * np.mean((ls.a @ xs[k] - ls.y) ** 2), rel=1e-12)


def test_svag_is_its_recursion_and_matches_horizons(small_ls):
    ls, eta, batch, seed, ell = small_ls, 0.05, 6, 2, 4  # SVAG's l
    run = minibatch_training(ls.problem(), "sgd", batch=batch, eta=eta, steps=3, seeds=[seed], svag=ell)
    draw, x = _indices(seed, SVAG_STREAM, ls.n, batch, "replacement"), np.zeros(ls.dim)
    a, b = (1 + np.sqrt(2 * ell - 1)) / 2, (1 - np.sqrt(2 * ell - 1)) / 2
    for _ in range(3 * ell):  # 3 recorded steps of eta = 3 l SVAG steps of eta / l
        i1, i2 = draw(), draw()
        g1 = ls.a[i1].T @ (ls.a[i1] @ x - ls.y[i1]) / batch
        g2 = ls.a[i2].T @ (ls.a[i2] @ x - ls.y[i2]) / batch
        x = x - eta / ell * (a * g1 + b * g2)
    assert np.allclose(run.params[0, -1], x, rtol=0, atol=1e-12)
    with pytest.raises(ValidationInputError, match="SVAG"):
        minibatch_training(ls.problem(), "adam", batch=batch, eta=eta, steps=3, svag=4)


def test_runs_are_reproducible_and_independent_of_the_other_runs():
    from derive.validate.torch_adapter import Problem

    problem = Problem.builtin("mlp", n_data=64)
    kw = dict(batch=8, eta=0.001, steps=6, record=[0, 6])
    alone = minibatch_training(problem, "adam", seeds=[3], **kw)
    together = minibatch_training(problem, "adam", seeds=[1, 3], **kw)
    assert np.array_equal(alone.params[0], together.params[1])
    assert not np.array_equal(together.params[0, -1], together.params[1, -1])
    assert np.all(np.isfinite(together.trajectory.loss)) and together.params.shape == (2, 2, problem.dim)


def test_minibatch_training_refuses_bad_input(small_ls):
    p = small_ls.problem()
    for kw, message in (
        (dict(batch=0), "batch size"),
        (dict(batch=41), "batch size"),
        (dict(batch=4, sampling="shuffled"), "sampling"),
        (dict(batch=4, steps=-1), "steps"),
        (dict(batch=4, record=[0, 99]), "recorded steps"),
    ):
        with pytest.raises(ValidationInputError, match=message):
            minibatch_training(p, "sgd", **{"eta": 0.1, "steps": 5, **kw})
