"""Partial moments and piecewise functions of the noise against numerical integration (scipy quad).

K_n(u) = int_0^u z^n p(z) dz and M_n(u) = E[zeta^n; zeta < u] of every law at several points, and
means of piecewise functions of affine noise terms (clip, sign times zeta, products of two such
terms of one draw, two draws) averaged by the engine's own stages 3 to 5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
import sympy as sp

from derive import engine as E
from derive.errors import DeriveError, InfiniteMomentError
from derive.noise import get_noise
from derive.regimes import PAPER
from derive.spec import Optimizer

u = sp.Symbol("u", real=True)
nu = sp.Symbol("nu", positive=True)
POINTS = (-2.7, -0.6, 0.0, 0.3, 1.9, 6.0)

# (law, nu, scipy law, value substituted for a symbolic nu or None)
LAWS = [
    ("gaussian", None, st.norm(), None),
    ("student-t", "5/2", st.t(2.5), None),
    ("student-t", 3, st.t(3), None),
    ("student-t", "nu", st.t(2.5), 2.5),
    ("student-t", "nu", st.t(7), 7),
    ("cauchy", None, st.cauchy(), None),
    ("laplace", None, st.laplace(), None),
    ("uniform", None, st.uniform(-1, 2), None),
    ("cdf:1/(1 + exp(-y))", None, st.logistic(), None),
    ("cdf:1/2 + atan(y)/pi", None, st.cauchy(), None),
]


def _number(expr: sp.Expr, nu_value) -> float:
    if nu_value is not None:
        expr = expr.subs(nu, nu_value)
    return float(sp.N(expr, 30))


def _quad(f, a, b) -> float:
    value, _ = si.quad(f, a, b, limit=400, epsabs=1e-13, epsrel=1e-11)
    return value


@pytest.mark.parametrize("law,nu_arg,ref,nu_value", LAWS)
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_partial_moment_against_quad(law, nu_arg, ref, nu_value, n):
    noise = get_noise(law, nu_arg)
    try:
        K = noise.partial(n, u)
    except DeriveError as exc:  # a user law whose z^n p(z) has no closed-form integral: a clear refusal
        assert law.startswith("cdf:") and f"cannot integrate z^{n} p(z) in closed form" in str(exc)
        return
    for point in POINTS:
        want = _quad(lambda z: z**n * ref.pdf(z), 0.0, point)
        got = _number(K.subs(u, point), nu_value)
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-11), (point, got, want)
    half, condition = noise.half_moment(n)
    df = nu_value or (float(sp.sympify(nu_arg)) if law == "student-t" else None)
    finite = not (law in ("cauchy", "cdf:1/2 + atan(y)/pi") and n >= 1) and not (df is not None and n >= df)
    if nu_value is not None:  # symbolic nu: the value carries its condition
        assert condition == (f"nu > {n}" if n else None)
    if not finite:
        if nu_value is None:
            assert half == sp.oo
            assert noise.partial_moment(n, sp.Float(0.3)) in (sp.oo, -sp.oo)
        return
    want_half = _quad(lambda z: z**n * ref.pdf(z), 0.0, np.inf)
    assert math.isclose(_number(half, nu_value), want_half, rel_tol=1e-9), (half, want_half)
    for point in POINTS[:3]:  # M_n(u) = E[zeta^n; zeta < u]
        want = _quad(lambda z: z**n * ref.pdf(z), -np.inf, point)
        got = _number(noise.partial_moment(n, sp.Float(point)), nu_value)
        assert math.isclose(got, want, rel_tol=1e-8, abs_tol=1e-11), (point, got, want)


def test_user_cdf_moments_are_exact():
    logistic = get_noise("cdf:1/(1 + exp(-y))")
    assert logistic.moment(2)[0] == sp.pi**2 / 3
    assert logistic.moment(4)[0] == 7 * sp.pi**4 / 15
    assert logistic.abs_moment(1)[0] == 2 * sp.log(2)


# ---- means of piecewise functions of the noise, through the engine's stages -------------------
_X = Optimizer(name="probe", hyper={"eta": "lr"}, update=[("x", "x - eta*grad")])
z, z1 = sp.Symbol("zeta", real=True), sp.Symbol("zeta_1", real=True)


def engine_mean(expr: sp.Expr, law: str, nu_arg=None) -> sp.Expr:
    """E[expr] over the draws, by isolate_signs -> expand -> average (as Delta of x at order eta^1)."""
    units = E.Units(PAPER, {"x": 0}, {}, {})
    sub = E.Substituted(_X, units, {"x": sp.Symbol("eta", positive=True) * expr})
    exp = E.expand(E.isolate_signs(sub))
    avg = E.average(E.Averaging(exp, get_noise(law, nu_arg), covariance=False))
    return E.explicit(avg.mean["x"].get(1, sp.Integer(0)))


def clip(a, lo, hi):
    return sp.Min(sp.Max(a, lo), hi)


CASES = [
    # (name, expression of zeta (and zeta_1), numpy integrand of one draw or None, needs E|zeta|)
    ("clip", clip(sp.Rational(3, 10) + z, -1, 1), lambda x: np.clip(0.3 + x, -1, 1), False),
    ("zeta sign", z * sp.sign(sp.Rational(3, 10) + z), lambda x: x * np.sign(0.3 + x), True),
    (
        "sign x clip",
        sp.sign(sp.Rational(3, 10) + z) * clip(sp.Rational(1, 2) + 2 * z, -1, 1),
        lambda x: np.sign(0.3 + x) * np.clip(0.5 + 2 * x, -1, 1),
        False,
    ),
    (
        "clip squared",
        clip(sp.Rational(1, 5) - z, -1, sp.Rational(3, 2)) ** 2,
        lambda x: np.clip(0.2 - x, -1, 1.5) ** 2,
        False,
    ),
    ("Abs below", sp.Abs(sp.Rational(3, 10) + z) * sp.Heaviside(1 - z), lambda x: abs(0.3 + x) * (x < 1), True),
    ("Max", sp.Max(z, sp.Rational(-1, 5)) * sp.sign(z - 1), lambda x: max(x, -0.2) * np.sign(x - 1), True),
]


@pytest.mark.parametrize("law,nu_arg,ref,nu_value", [c for c in LAWS if not c[0].startswith("cdf:1/(1")])
@pytest.mark.parametrize("name,expr,integrand,unbounded", CASES, ids=[c[0] for c in CASES])
def test_piecewise_means_against_quad(law, nu_arg, ref, nu_value, name, expr, integrand, unbounded):
    heavy = law in ("cauchy", "cdf:1/2 + atan(y)/pi")
    if unbounded and heavy:
        with pytest.raises(InfiniteMomentError) as info:
            engine_mean(expr, law, nu_arg)
        assert "E[|zeta|^1] (for the term" in str(info.value) and "infinite under the" in str(info.value)
        return
    got = _number(engine_mean(expr, law, nu_arg), nu_value)
    lo, hi = ref.support()
    breaks = [b for b in (-1.3, -0.3, -0.75, -0.25, 0.0, 1.0, 1.2, -1.0) if lo < b < hi]
    want = sum(
        _quad(lambda x: integrand(x) * ref.pdf(x), a, b) for a, b in zip([lo, *sorted(breaks)], [*sorted(breaks), hi])
    )
    assert math.isclose(got, want, rel_tol=1e-8, abs_tol=1e-11), (got, want)


def test_clip_under_cauchy_reference_value():
    """Reference section 2b: E clip(0.3 + zeta, -1, 1) = 0.1486 under Cauchy noise."""
    assert round(_number(engine_mean(clip(sp.Rational(3, 10) + z, -1, 1), "cauchy"), None), 4) == 0.1486


def test_two_draws_are_independent():
    expr = sp.sign(sp.Rational(3, 10) + z) * sp.sign(sp.Rational(3, 10) + z1)
    for law, ref in (("gaussian", st.norm()), ("laplace", st.laplace()), ("cauchy", st.cauchy())):
        s = 2 * ref.cdf(0.3) - 1
        assert math.isclose(_number(engine_mean(expr, law), None), s * s, rel_tol=1e-12)


def test_injected_gaussian_draw():
    xi = sp.Symbol("xi", real=True)
    got = _number(engine_mean(clip(xi, -1, 1) ** 2 + sp.sign(xi - sp.Rational(1, 2)), "cauchy"), None)
    want = _quad(lambda x: np.clip(x, -1, 1) ** 2 * st.norm.pdf(x), -np.inf, np.inf) + (1 - 2 * st.norm.cdf(0.5))
    assert math.isclose(got, want, rel_tol=1e-10)
