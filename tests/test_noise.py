"""Noise laws: s(y) from the CDF against scipy's CDFs, moments against direct integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import sympy as sp

from derive import DeriveError, get_noise

y = sp.Symbol("y", real=True)
POINTS = np.array([-3.1, -1.2, -0.4, 0.0, 0.3, 0.9, 2.5])

SCIPY = {
    ("gaussian", None): st.norm(),
    ("cauchy", None): st.cauchy(),
    ("laplace", None): st.laplace(),
    ("uniform", None): st.uniform(loc=-1, scale=2),
    ("student-t", 1): st.t(1),
    ("student-t", 1.5): st.t(1.5),
    ("student-t", 3): st.t(3),
    ("student-t", 4): st.t(4),
    ("student-t", 7): st.t(7),
}


@pytest.mark.parametrize("law,nu", list(SCIPY))
def test_sign_function_matches_scipy_cdf(law, nu):
    noise = get_noise(law, nu)
    f = sp.lambdify(y, noise.s(y), modules=["scipy", "numpy"])
    got = np.array([float(f(p)) for p in POINTS])
    np.testing.assert_allclose(got, 2 * SCIPY[(law, nu)].cdf(POINTS) - 1, atol=1e-12)
    assert math.isclose(float(noise.p0), SCIPY[(law, nu)].pdf(0.0), rel_tol=1e-12)


def test_symbolic_nu_matches_integer_forms():
    general = get_noise("student-t", "nu")
    for nu in (3, 5):
        specific = get_noise("student-t", nu).s(y)
        for p in (-2.0, 0.7):
            a = sp.N(general.s(y).subs({sp.Symbol("nu", positive=True): nu, y: p}), 30)
            b = sp.N(specific.subs(y, p), 30)
            assert abs(a - b) < 1e-14  # SymPy evaluates betainc_regularized in double precision


@pytest.mark.parametrize(
    "law,nu,m2,m4",
    [
        ("gaussian", None, 1, 3),
        ("laplace", None, 2, 24),
        ("uniform", None, sp.Rational(1, 3), sp.Rational(1, 5)),
        ("student-t", 5, sp.Rational(5, 3), 25),
        ("student-t", 3, 3, sp.oo),
        ("cauchy", None, sp.oo, sp.oo),
    ],
)
def test_moments(law, nu, m2, m4):
    noise = get_noise(law, nu)
    assert noise.moment(2)[0] == m2 and noise.moment(4)[0] == m4
    assert noise.moment(3)[0] == 0


def test_student_t_moment_formula_equals_integral():
    u = sp.Symbol("u", real=True)
    noise = get_noise("student-t", 7)
    for n in (2, 4, 6):
        direct = sp.integrate(u**n * noise.density(u), (u, -sp.oo, sp.oo))
        assert sp.simplify(direct - noise.moment(n)[0]) == 0
    assert noise.moment(8)[0] == sp.oo


def test_cdf_law_from_user_cdf():
    law = get_noise("cdf:1/2 + atan(y)/pi")  # the Cauchy CDF
    assert sp.simplify(law.s(y) - 2 * sp.atan(y) / sp.pi) == 0
    assert law.moment(2)[0] == sp.oo and sp.simplify(law.p0 - 1 / sp.pi) == 0
    logistic = get_noise("cdf:1/(1 + exp(-y))")
    assert abs(logistic.moment(2)[0] - sp.pi**2 / 3) < 1e-12  # no closed form found: quadrature


@pytest.mark.parametrize(
    "name,nu,needle",
    [
        ("poisson", None, "unknown noise law 'poisson'; allowed: gaussian"),
        ("student-t", -1, "nu must be a positive finite number or 'nu'"),
        ("student-t", "abc", "nu must be a positive finite number"),
        ("gaussian", 3, "--nu is only meaningful for the student-t law"),
        ("cdf:y**2", None, "is not symmetric"),
        ("cdf:1/2 + y/4", None, "is not a CDF"),
        ("cdf:1/2 + atan(z)/pi", None, "may depend on y only"),
    ],
)
def test_bad_laws(name, nu, needle):
    with pytest.raises(DeriveError, match=None) as info:
        get_noise(name, nu)
    assert needle in str(info.value)
