"""The derived SDEs equal the forms of reference section 4, as exact symbolic identities.

The reference formulas below are typed from the reference; the SDEs come from the general
engine (update rule -> regime -> series -> expectation), never from these formulas.
"""

from __future__ import annotations

import pytest
import sympy as sp

from derive import derive_sde
from derive import symbols as S
from tests.conftest import identical

g, eta, sigma, t, nu = S.g, S.eta, S.sigma, S.t, S.nu
x = sp.Symbol("x", real=True)
m = sp.Symbol("m", real=True)
v = sp.Symbol("v", positive=True)
eps = sp.Symbol("eps", nonnegative=True)
theta = sp.Symbol("theta", nonnegative=True)
rho, rho1, rho2 = (sp.Symbol(n, positive=True) for n in ("rho", "rho1", "rho2"))
y = g / sigma

# s(y) = E[sign(y + zeta)] from the reference table (section 1)
REFERENCE_S = {
    ("gaussian", None): sp.erf(y / sp.sqrt(2)),
    ("cauchy", None): 2 / sp.pi * sp.atan(y),
    ("student-t", 1): 2 / sp.pi * sp.atan(y),
    ("student-t", 2): y / sp.sqrt(y**2 + 2),
    ("student-t", 3): 2 / sp.pi * (sp.atan(y / sp.sqrt(3)) + sp.sqrt(3) * y / (y**2 + 3)),
    ("student-t", "nu"): sp.sign(y) * (1 - sp.betainc_regularized(nu / 2, sp.Rational(1, 2), 0, nu / (nu + y**2))),
    ("laplace", None): sp.sign(y) * (1 - sp.exp(-sp.Abs(y))),
    ("uniform", None): sp.Max(-1, sp.Min(1, y)),
}


def explicit(sde, expr):
    return sde.explicit(expr)


def test_sgd():
    sde = derive_sde("sgd", "gaussian")
    assert sde.drift == (-g,)
    assert identical(sde.diffusion[0, 0], sp.sqrt(eta) * sigma)
    # Laplace: E[zeta^2] = 2 enters the diffusion
    assert identical(derive_sde("sgd", "laplace").covariance()[0, 0], 2 * eta * sigma**2)


@pytest.mark.parametrize("law,nu", [key for key in REFERENCE_S if key[0] != "uniform"])
def test_signsgd_every_law(law, nu):
    sde = derive_sde("signsgd", law, nu=nu)
    s = REFERENCE_S[(law, nu)]
    assert identical(sde.drift[0], -s), sde.drift[0]
    assert identical(sde.covariance()[0, 0], eta * (1 - s**2))
    if isinstance(nu, int) or law == "cauchy":
        assert not sde.drift[0].has(sp.betainc_regularized)  # integer nu: elementary closed form


def test_signsgd_uniform_is_clip_in_each_region():
    """s(y) = clip(y, -1, 1): compared in |y| < 1, y > 1 and y < -1 (q > 0 parametrizes each)."""
    sde = derive_sde("signsgd", "uniform")
    q = sp.Symbol("q", positive=True)
    clip = REFERENCE_S[("uniform", None)]
    for value in (sigma * q / (1 + q), -sigma * q / (1 + q), sigma * (1 + q), -sigma * (1 + q)):
        s = clip.subs(g, value)
        assert sp.simplify(sde.drift[0].subs(g, value) + s) == 0
        assert sp.simplify(sde.covariance()[0, 0].subs(g, value) - eta * (1 - s**2)) == 0


def _rmspropw_reference(theta_value, v_drift):
    P = sp.sqrt(v) + eps
    drift_x = -(g / P + theta_value * x)
    cov = eta * sp.Matrix(
        [
            [sigma**2 / P**2, -2 * rho * g * sigma**2 / P],
            [-2 * rho * g * sigma**2 / P, rho**2 * (4 * g**2 * sigma**2 + 2 * sigma**4)],
        ]
    )
    return drift_x, v_drift, cov


@pytest.mark.parametrize("name,th", [("rmsprop", 0), ("rmspropw", theta)])
def test_rmsprop_full(name, th):
    sde = derive_sde(name, "gaussian", form="full")
    drift_x, drift_v, cov = _rmspropw_reference(th, rho * (g**2 + sigma**2 - v))
    assert identical(sde.drift[0], drift_x)
    assert identical(sde.drift[1], drift_v)
    assert sde.noise_sources == 2
    assert (sde.covariance() - cov).applyfunc(sp.simplify) == sp.zeros(2, 2)


@pytest.mark.parametrize("name,th", [("rmsprop", 0), ("rmspropw", theta)])
def test_rmsprop_published_drops_v_noise(name, th):
    sde = derive_sde(name, "gaussian", form="published")
    drift_x, drift_v, cov = _rmspropw_reference(th, rho * (g**2 + sigma**2 - v))
    assert identical(sde.drift[0], drift_x) and identical(sde.drift[1], drift_v)
    assert sde.noise_sources == 1
    assert identical(sde.diffusion[0, 0], sp.sqrt(eta) * sigma / (sp.sqrt(v) + eps))
    assert sde.diffusion[1, 0] == 0


def _adam_reference(th, published):
    gamma1, gamma2 = 1 - sp.exp(-rho1 * t), 1 - sp.exp(-rho2 * t)
    mom = m + eta * rho1 * (g - m) if published else m
    drift_x = -(sp.sqrt(gamma2) / gamma1) * mom / (sp.sqrt(v) + eps * sp.sqrt(gamma2)) - th * x
    return drift_x, rho1 * (g - m), rho2 * (g**2 + sigma**2 - v)


@pytest.mark.parametrize("name,th", [("adam", 0), ("adamw", theta)])
@pytest.mark.parametrize("form", ["full", "published"])
def test_adam(name, th, form):
    sde = derive_sde(name, "gaussian", form=form)
    drift_x, drift_m, drift_v = _adam_reference(th, form == "published")
    assert identical(explicit(sde, sde.drift[0]), drift_x)
    assert identical(sde.drift[1], drift_m)
    assert identical(sde.drift[2], drift_v)
    cov = sde.covariance()
    assert cov.row(0) == sp.zeros(1, 3)  # X has no noise of its own: O(eta^3) against O(eta)
    assert identical(cov[1, 1], eta * rho1**2 * sigma**2)
    if form == "full":
        assert sde.noise_sources == 2
        assert identical(cov[1, 2], 2 * eta * rho1 * rho2 * g * sigma**2)
        assert identical(cov[2, 2], eta * rho2**2 * (4 * g**2 * sigma**2 + 2 * sigma**4))
    else:
        assert sde.noise_sources == 1
        assert cov[2, 2] == 0 and cov[1, 2] == 0


@pytest.mark.parametrize("name", ["rmsprop", "rmspropw", "adam", "adamw"])
def test_noise_dominated_v_loses_g_squared(name):
    sde = derive_sde(name, "gaussian", regime="noise-dominated")
    drift_v = sde.drift_of("v")
    rate = rho if name.startswith("rms") else rho2
    assert identical(drift_v, rate * (sigma**2 - v))
    cov = sde.covariance()
    iv = sde.state_names.index("v")
    assert cov.row(iv) == sp.zeros(1, len(sde.state))  # no V noise
    if name.startswith("adam"):
        th = theta if name == "adamw" else 0
        assert identical(sde.explicit(sde.drift[0]), _adam_reference(th, published=False)[0])  # no O(eta) term
        assert identical(cov[1, 1], eta * rho1**2 * sigma**2)
    else:
        assert identical(sde.diffusion[0, 0], sp.sqrt(eta) * sigma / (sp.sqrt(v) + eps))


def test_noise_dominated_published_equals_full():
    for name in ("rmsprop", "adam"):
        a = derive_sde(name, regime="noise-dominated", form="full")
        b = derive_sde(name, regime="noise-dominated", form="published")
        assert a.drift == b.drift and a.diffusion == b.diffusion


def test_general_law_moments_enter_full_covariance():
    # Laplace: m2 = 2, m4 = 24. Var(g~^2) = 4 g^2 sigma^2 m2 + sigma^4 (m4 - m2^2)
    sde = derive_sde("rmsprop", "laplace")
    assert identical(sde.drift_of("v"), rho * (g**2 + 2 * sigma**2 - v))
    assert identical(sde.covariance()[1, 1], eta * rho**2 * (8 * g**2 * sigma**2 + 20 * sigma**4))


def test_symbolic_nu_conditions():
    full = derive_sde("adam", "student-t", nu="nu")
    published = derive_sde("adam", "student-t", form="published")
    assert "nu > 4" in full.conditions and "nu > 2" in full.conditions
    assert published.conditions == ("nu > 2",)
    assert identical(published.drift_of("v"), rho2 * (g**2 + sigma**2 * nu / (nu - 2) - v))


def test_signsgd_noise_dominated_is_linear_phase():
    # sigma = sigma0/eta makes y = g/sigma small: s(y) ~ 2 p(0) y
    for law, p0 in (("gaussian", 1 / sp.sqrt(2 * sp.pi)), ("laplace", sp.Rational(1, 2)), ("cauchy", 1 / sp.pi)):
        sde = derive_sde("signsgd", law, regime="noise-dominated")
        assert identical(sde.drift[0], -2 * p0 * g / sigma)
        assert identical(sde.diffusion[0, 0], sp.sqrt(eta))


def test_published_form_declares_its_same_step_states():
    assert derive_sde("adamw", form="published").same_step == ("m",)
    assert derive_sde("adamw", form="full").same_step == ()
    assert derive_sde("rmsprop", form="published").same_step == ()  # no momentum state
