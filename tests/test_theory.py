"""Closed-form results derived from the SDEs, compared with the formulas of reference section 5-6."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derive import symbols as S
from derive.theory.phases import signsgd_phases
from derive.theory.quadratic import NoStationaryLawError, curvature
from derive.theory.scaling import NoScalingRuleError, ScalingUndecidedError, scaling_rule
from derive.theory.stationary import sgd_full_matrix, stationary

lam, eta, sigma = curvature, S.eta, S.sigma
eps = sp.Symbol("eps", nonnegative=True)
theta = sp.Symbol("theta", nonnegative=True)
rho1 = sp.Symbol("rho1", positive=True)


def same(a, b):
    return sp.simplify(a - b) == 0


def test_sgd_stationary():
    r = stationary("sgd")
    assert same(r.var_x, eta * sigma**2 / (2 * lam)) and same(r.expected_loss, eta * sigma**2 / 4)
    assert r.fokker_planck is True


def test_sgd_full_matrix_loss():
    r = sgd_full_matrix(2)
    H, Sigma, C = r.H, r.Sigma, r.covariance
    assert (H * C + C * H - eta * Sigma).applyfunc(sp.simplify) == sp.zeros(2, 2)
    assert same(r.expected_loss, eta * Sigma.trace() / 4)


@pytest.mark.parametrize(
    "law,nu,p0",
    [
        ("gaussian", None, 1 / sp.sqrt(2 * sp.pi)),
        ("laplace", None, sp.Rational(1, 2)),
        ("student-t", 3, 2 / (sp.sqrt(3) * sp.pi)),
        ("cauchy", None, 1 / sp.pi),
    ],
)
def test_signsgd_stationary_linear_in_sigma(law, nu, p0):
    r = stationary("signsgd", law, nu=nu)
    assert same(r.var_x, eta * sigma / (4 * p0 * lam))
    assert same(r.expected_loss, eta * sigma / (8 * p0))
    e = r.expansion  # series of the SDE about the minimum: b = -a x + c2 x|x| + c3 x^3, D = B0 + d2 x^2
    assert same(e.a, 2 * p0 * lam / sigma) and same(e.b0, eta) and same(e.d2, -eta * (2 * p0 * lam / sigma) ** 2)
    if law == "laplace":  # s(y) = y - y|y|/2 + ...: a second-order drift term c2 x|x|
        assert same(e.c2, lam**2 / (2 * sigma**2)) and not e.smooth
    else:
        assert e.c2 == 0 and e.smooth


def test_rmspropw_stationary_and_bounded_loss():
    r = stationary("rmspropw")
    assert same(r.var_x, eta * sigma**2 / (2 * (sigma + eps) * (lam + theta * (sigma + eps))))
    no_eps = r.expected_loss.subs(eps, 0)
    assert same(no_eps, eta * lam * sigma / (4 * (lam + theta * sigma)))
    assert same(sp.limit(no_eps, sigma, sp.oo), eta * lam / (4 * theta))  # bounded as sigma grows


def test_adam_and_adamw_momentum_factor():
    adam = stationary("adam")
    assert same(adam.var_x.subs(eps, 0), eta * sigma / (2 * lam))
    r = stationary("adamw")
    kept = eta * rho1 * sigma / (2 * (rho1 + theta) * (lam + theta * sigma))
    assert same(r.var_x.subs(eps, 0), kept)
    m = r.momentum
    assert m.rate == rho1 and same(m.full_over_lemma, rho1 / (rho1 + theta))
    assert same(m.lemma.subs(eps, 0), eta / (2 * (lam / sigma + theta)))  # (eta/2)(H Sigma^-1/2 + theta)^-1


@pytest.mark.parametrize("args", [("sgd", "cauchy"), ("rmsprop", "student-t", "full", 2)])
def test_no_stationary_law_with_infinite_variance(args):
    with pytest.raises(NoStationaryLawError, match="no stationary law with finite variance"):
        stationary(*args)


def test_non_convex_has_no_stationary_law():
    with pytest.raises(NoStationaryLawError, match="not convex"):
        stationary("sgd", lam=-1)


@pytest.mark.parametrize(
    "opt,regime,criterion,expected",
    [
        ("sgd", "paper", "sde", {"eta": 1}),
        (
            "adam",
            "noise-dominated",
            "sde",
            {
                "eta": sp.Rational(1, 2),
                "rho1": sp.Rational(1, 2),
                "rho2": sp.Rational(1, 2),
                "eps": sp.Rational(-1, 2),
                "v": -1,
            },
        ),
        (
            "rmsprop",
            "noise-dominated",
            "sde",
            {"eta": sp.Rational(1, 2), "rho": sp.Rational(1, 2), "eps": sp.Rational(-1, 2)},
        ),
        (
            "adamw",
            "paper",
            "stationary",
            {
                "eta": sp.Rational(1, 2),
                "rho1": sp.Rational(1, 2),
                "rho2": sp.Rational(1, 2),
                "theta": sp.Rational(1, 2),
                "eps": sp.Rational(-1, 2),
            },
        ),
        (
            "rmspropw",
            "paper",
            "stationary",
            {"eta": sp.Rational(1, 2), "rho": sp.Rational(1, 2), "theta": sp.Rational(1, 2), "eps": sp.Rational(-1, 2)},
        ),
        ("signsgd", "paper", "stationary", {"eta": sp.Rational(1, 2)}),
    ],
)
def test_scaling_rules(opt, regime, criterion, expected):
    rule = scaling_rule(opt, regime, criterion)
    for name, value in expected.items():
        assert rule.exponents[name] == value, (name, rule.exponents)
    text = rule.to_text()
    if "rho1" in expected:  # 1 - beta scales by kappa: the square-root rule
        assert "1 - beta1 -> kappa^(1) (1 - beta1)" in text


@pytest.mark.parametrize(
    "opt,regime,criterion,needle",
    [
        ("adamw", "paper", "sde", "drift of v"),
        ("signsgd", "paper", "sde", "drift of x"),
        ("rmspropw", "paper", "sde", "drift of v"),
    ],
)
def test_no_exact_rule(opt, regime, criterion, needle):
    with pytest.raises(NoScalingRuleError, match=f"no scaling rule under criterion 'sde'.*{needle}"):
        scaling_rule(opt, regime, criterion)


def test_an_undecided_condition_is_not_called_a_missing_rule():
    """Lion under Student-t nu = 2.5: SymPy cannot evaluate d/dg of I_x(5/4, 1/2) at sample points, so
    whether a rule exists is undecided (it used to say "has no scaling rule")."""
    with pytest.raises(ScalingUndecidedError, match="is not decided: SymPy cannot evaluate") as info:
        scaling_rule("lion", "paper", "sde", noise="student-t", nu=2.5)
    assert not isinstance(info.value, NoScalingRuleError)


def test_signsgd_phases_gaussian():
    ph = signsgd_phases()
    assert ph.sign_phase == (-sp.sign(S.g), 0)
    assert same(ph.linear_phase[0], -sp.sqrt(2 / sp.pi) * S.g / sigma) and ph.linear_phase[1] == sp.sqrt(eta)
    assert abs(ph.s_at[1] - 0.9661) < 1e-4  # erf(3/2)
    ys = np.linspace(ph.boundaries[0], ph.boundaries[1], 101)
    s = np.array([float(sp.erf(y / np.sqrt(2))) for y in ys])
    m, lo, hi, _ = ph.bounds
    assert np.all(m * ys + lo <= s + 1e-12) and np.all(s <= m * ys + hi + 1e-12)
    assert hi - lo < 0.05  # the bracket is tight
