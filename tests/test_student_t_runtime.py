"""The Numba Student-t CDF of derive.runtime.student_t against scipy.special.stdtr (and mpmath where
scipy itself loses digits), and the printed SDE kernels of a real nu calling it."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.special as ss
import sympy as sp

from derive.codegen.printer import code
from derive.codegen.student_t_fit import half_beta_fit, kernel_source
from derive.runtime import student_t as T

GRID = np.concatenate([-np.logspace(-2, 30, 160), np.logspace(-2, 30, 160)])
TOL = 1e-12


def _rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))


@pytest.mark.parametrize("nu", [1.5, 2.5, 3.0, 4.5, 10.0, 30.0])
def test_against_scipy_stdtr(nu):
    s = np.array([T.sign_mean(y, nu) for y in GRID])
    tail = np.array([T.tail(y, nu) for y in GRID])
    sd = np.array([T.sign_sd(y, nu) for y in GRID])
    F = np.array([T.cdf(y, nu) for y in GRID])
    ref_tail = 2 * ss.stdtr(nu, -np.abs(GRID))
    keep = ref_tail > 1e-300  # beyond, both underflow
    assert ref_tail[keep].min() < 1e-30  # the grid reaches far into the tails
    assert _rel(tail[keep], ref_tail[keep]).max() <= TOL
    assert _rel(s, 2 * ss.stdtr(nu, GRID) - 1).max() <= TOL
    assert _rel(sd[keep], 2 * np.sqrt(ss.stdtr(nu, GRID[keep]) * ss.stdtr(nu, -GRID[keep]))).max() <= TOL
    assert _rel(F[keep], ss.stdtr(nu, GRID[keep])).max() <= TOL


def test_tail_by_cancellation_would_fail():
    """The resolution of the tail check: 1 - |s| formed by subtraction loses every digit out there."""
    y, nu = 1e6, 2.5
    naive = 1.0 - abs(T.sign_mean(y, nu))
    assert _rel(naive, 2 * ss.stdtr(nu, -y)) > 1e-3 and _rel(T.tail(y, nu), 2 * ss.stdtr(nu, -y)) <= TOL


@pytest.mark.parametrize("nu", [0.5, 1.0, 2.5, 200.0])
@pytest.mark.parametrize("y", [1e-9, -3e-5, 0.02, -1.7, 40.0, -3e12])
def test_against_mpmath(nu, y):
    """Near 0 (where 2 stdtr - 1 cancels) and for small nu (where scipy loses digits): 50-digit mpmath."""
    with mpmath.workdps(50):
        yy = mpmath.mpf(y)
        x = nu / (nu + yy**2)
        tail = mpmath.betainc(nu / 2, 0.5, 0, x, regularized=True)
        s = mpmath.sign(yy) * mpmath.betainc(0.5, nu / 2, 0, 1 - x, regularized=True)
        assert _rel(T.sign_mean(y, nu), float(s)) <= TOL
        if tail > 1e-300:  # beyond, the double result underflows to 0 as it should
            assert _rel(T.tail(y, nu), float(tail)) <= TOL
            assert _rel(T.sign_sd(y, nu), float(mpmath.sqrt(tail * (2 - tail)))) <= TOL
        else:
            assert T.tail(y, nu) == 0.0


@pytest.mark.parametrize("a,b", [(1.25, 0.5), (1.5, 0.25), (2.0, 3.5), (0.5, 1.25)])
def test_incomplete_beta(a, b):
    x = np.linspace(0.0, 1.0, 41)
    reg = np.array([T.betainc_reg(a, b, v, 1 - v) for v in x])
    full = np.array([T.betainc(a, b, v, 1 - v) for v in x])
    np.testing.assert_allclose(reg, ss.betainc(a, b, x), rtol=TOL, atol=1e-300)
    np.testing.assert_allclose(full, ss.beta(a, b) * ss.betainc(a, b, x), rtol=TOL, atol=1e-300)


def _kernel(nu):
    """The straight-line tail function a generated module holds for this nu."""
    import math

    from numba import njit

    fit = half_beta_fit(nu / 2)

    def uncached(**options):  # source compiled from a string has no file for Numba's cache
        return njit(**{k: v for k, v in options.items() if k != "cache"})

    namespace = dict(_njit=uncached, _math=math, _exp_neg=T.exp_neg, _log_unit=T.log_unit)
    exec(kernel_source(fit), namespace)  # noqa: S102 - the generated source under test
    return namespace[fit.name]


@pytest.mark.parametrize("nu", [0.5, 1.0, 1.5, 2.5, 3.0, 4.5, 7.3, 10.0])
def test_straight_line_kernel_function(nu):
    """The branch-free function of the SDE kernels: T = 1 - |s| relative to 1e-12 against scipy on
    the grid (tails included), and 1 - T = |s| relative to 1e-12 where |s| is not tiny."""
    f = _kernel(nu)
    y = np.abs(GRID)
    r2 = (y / np.sqrt(nu)) ** 2
    tail = np.array([f(1 / (1 + v), v / (1 + v)) for v in r2])
    ref = 2 * ss.stdtr(nu, -y)
    keep = ref > 1e-300
    assert _rel(tail[keep], ref[keep]).max() <= TOL
    body = (1 - tail)[y > 0.05]
    assert _rel(body, 1 - ref[y > 0.05]).max() <= TOL


def test_log_and_exp_without_library_calls():
    x = np.concatenate([np.logspace(-307, 0, 2000), np.linspace(0.5, 1, 1001)])
    np.testing.assert_allclose([T.log_unit(v) for v in x], np.log(x), rtol=4e-16, atol=1e-300)  # 2 ulp
    r = np.concatenate([-np.logspace(-12, np.log10(700), 2000), [0.0]])
    np.testing.assert_allclose([T.exp_neg(v) for v in r], np.exp(r), rtol=4e-16)
    assert T.exp_neg(-800.0) == 0.0 and 0 < T.exp_neg(-740.0) < 1e-320


def test_large_nu_falls_back_to_the_continued_fraction():
    """nu = 40: T(x = 1/2) is below 1e-4, so the kernel calls betainc_reg instead of a polynomial."""
    assert half_beta_fit(20.0) is None and half_beta_fit(1.25) is not None
    g = sp.Symbol("g", real=True)
    assert code(sp.betainc_regularized(20, sp.Rational(1, 2), 0, 40 / (40 + g**2))).startswith("_T(_betainc_reg(")
    assert code(
        sp.betainc_regularized(sp.Rational(5, 4), sp.Rational(1, 2), 0, sp.Rational(5, 2) / (sp.Rational(5, 2) + g**2))
    ).startswith("_T(_student_t_tail_1p25(")


def test_printer_passes_the_complement():
    g, sigma = sp.Symbol("g", real=True), sp.Symbol("sigma", positive=True)
    x = sp.Rational(5, 2) / (sp.Rational(5, 2) + g**2 / sigma**2)
    text = code(sp.betainc_regularized(sp.Rational(5, 4), sp.Rational(3, 2), 0, x))
    assert text.startswith("_T(_betainc_reg(_T(1.25), _T(1.5), ")
    assert "_T(1) -" not in text and "- _T(1)" not in text  # 1 - x is simplified, never subtracted
    text = code(sp.betainc(sp.Rational(3, 2), sp.Rational(1, 4), 0, g**2 / (g**2 + 1)))
    assert text.startswith("_T(_betainc(_T(1.5), _T(0.25), ")
    with pytest.raises(Exception, match="numeric a, b > 0 only"):
        code(sp.betainc(2, sp.Rational(-1, 4), 0, g**2 / (g**2 + 1)))


def test_generated_signsgd_kernel_with_real_nu():
    """The generated SignSGD module under Student-t nu = 2.5: drift -s(g/sigma) and diffusion
    sqrt(eta (1 - s^2)) evaluated through the runtime, against scipy, far into the tail."""
    from derive.combination import Combination
    from derive.simulate import load_module

    m = load_module(Combination("signsgd", "student-t", "paper", "full", nu=2.5))
    assert m.SDE_UNAVAILABLE is None
    names = list(m.SDE_PARAMS)
    p = np.zeros(len(names))
    p[names.index("eta")], p[names.index("sigma")] = 0.01, 2.0
    for g in (1e-3, -0.7, 5.0, -4e7):
        (drift,) = m.drift(0.0, g, 1.0, p)
        (diffusion,) = m.diffusion(0.0, g, 1.0, p)
        F = ss.stdtr(2.5, g / 2.0)
        assert abs(drift + (2 * F - 1)) <= 1e-14
        want = np.sqrt(0.01) * 2 * np.sqrt(F * ss.stdtr(2.5, -g / 2.0))
        assert _rel(diffusion, want) <= 1e-11
