"""The Numba Student-t CDF of derive.runtime.student_t against scipy.special.stdtr (and mpmath where
scipy itself loses digits), and the printed SDE kernels of a real nu calling it."""
from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.special as ss
import sympy as sp

from derive.codegen.printer import code
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


def test_printer_passes_the_complement():
    g, sigma = sp.Symbol("g", real=True), sp.Symbol("sigma", positive=True)
    x = sp.Rational(5, 2) / (sp.Rational(5, 2) + g**2 / sigma**2)
    text = code(sp.betainc_regularized(sp.Rational(5, 4), sp.Rational(1, 2), 0, x))
    assert text.startswith("_T(_betainc_reg(_T(1.25), _T(0.5), ")
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
