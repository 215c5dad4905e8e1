"""Pair covariances: the published formulas of reference section 9, elliptical laws, refusals, the
source correlation of the SDE's Brownian motions, and `derive sde --correlated`."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import sympy as sp

from derive import derive_sde
from derive.bivariate import Phi2
from derive.cli import main
from derive.correlation import NoiseModel
from derive.errors import DeriveError
from derive.pairs import derive_pairs, source_correlation, suffixed
from derive.parsing import sde_expression
from derive.runtime.bvn import phi2_ufunc

eta, rho, eps = sp.Symbol("eta", positive=True), sp.Symbol("rho", positive=True), sp.Symbol("eps", nonnegative=True)
r = sp.Symbol("r", real=True)
g_i, g_j = sp.Symbol("g_i", real=True), sp.Symbol("g_j", real=True)
s_i, s_j = sp.Symbol("sigma_i", positive=True), sp.Symbol("sigma_j", positive=True)
v_i, v_j = sp.Symbol("v_i", positive=True), sp.Symbol("v_j", positive=True)


def Phi(x):
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


# ---- the published formulas (reference section 9) ---------------------------------------------
def test_sgd_and_rmsprop_published_pairs():
    assert sp.simplify(derive_pairs("sgd").entries[("x", "x")] - eta * s_i * s_j * r) == 0
    pairs = derive_pairs("rmsprop").entries
    P_i, P_j = sp.sqrt(v_i) + eps, sp.sqrt(v_j) + eps
    published = {
        ("x", "x"): eta * s_i * s_j * r / (P_i * P_j),
        ("v", "v"): eta * rho**2 * (4 * g_i * g_j * s_i * s_j * r + 2 * s_i**2 * s_j**2 * r**2),
        ("x", "v"): -eta * rho * 2 * g_j * s_i * s_j * r / P_i,
        ("v", "x"): -eta * rho * 2 * g_i * s_i * s_j * r / P_j,
    }
    for key, formula in published.items():
        assert sp.simplify(pairs[key] - formula) == 0, key


def test_signsgd_published_pair():
    """eta 4 [Phi2(-g_i/sigma_i, -g_j/sigma_j; r) - Phi(-g_i/sigma_i) Phi(-g_j/sigma_j)]; at g = 0 the
    arcsine law eta (2/pi) asin(r) (Sheppard), exactly."""
    entry = derive_pairs("signsgd").entries[("x", "x")]
    a, b = -g_i / s_i, -g_j / s_j
    published = eta * 4 * (Phi2(a, b, r) - Phi(a) * Phi(b))
    free = [eta, g_i, g_j, s_i, s_j, r]
    derived_f, published_f = (sp.lambdify(free, e, modules=[{"Phi2": phi2_ufunc}, "scipy"]) for e in (entry, published))
    for point in [
        (0.01, 0.3, -0.8, 1.0, 0.5, 0.7),
        (0.02, -1.2, 0.4, 0.6, 2.0, -0.95),
        (0.01, 2.0, 1.5, 1.0, 1.0, 0.2),
    ]:
        assert derived_f(*point) == pytest.approx(published_f(*point), rel=1e-12)
    assert sp.simplify(entry.subs({g_i: 0, g_j: 0}) - eta * 2 * sp.asin(r) / sp.pi) == 0


def test_noise_dominated_signsgd_is_its_linear_phase():
    """sigma = sigma0/eta: the thresholds -eta g/sigma0 tend to 0 and the pair is the arcsine law."""
    entry = derive_pairs("signsgd", regime="noise-dominated").entries[("x", "x")]
    assert sp.simplify(entry - eta * 2 * sp.asin(r) / sp.pi) == 0


# ---- elliptical laws --------------------------------------------------------------------------
def test_fourth_cross_moment_under_student_t():
    """Reference section 9: for t(6) at r = 0.7, E[zeta_i^2 zeta_j^2] / E[zeta^2]^2 is 3.96, not the
    Gaussian's 1 + 2 r^2 = 1.98 (read off RMSprop's v,v pair at g = 0: eta rho^2 sigma_i^2 sigma_j^2
    Cov[zeta_i^2, zeta_j^2])."""
    for law, nu, m2, want in (
        ("student-t", 6, sp.Rational(3, 2), sp.Rational(396, 100)),
        ("gaussian", None, 1, sp.Rational(198, 100)),
    ):
        vv = derive_pairs("rmsprop", law, nu=nu).entries[("v", "v")]
        cov = sp.simplify(vv.subs({g_i: 0, g_j: 0, r: sp.Rational(7, 10)}) / (eta * rho**2 * s_i**2 * s_j**2))
        assert (cov + m2**2) / m2**2 == want


@pytest.mark.parametrize("law,nu", [("student-t", 5), ("laplace", None)])
def test_elliptical_pairs_against_monte_carlo(law, nu):
    """Multivariate Student-t and Laplace noise (one mixing W per draw), r = -0.6: SGD's x,x pair, the
    arcsine law of SignSGD at g = 0, Lion's x,m pair at g = m = 0 (r E|zeta|), against sample moments of
    the model's own draws, within 4 standard errors."""
    rc, n = -0.6, 100_000  # the Gaussian pairs in their place miss SGD's and Lion's by 25 to 55 SE
    noise = NoiseModel.correlated(rc, 2, sigma=[1.0, 1.0], law=law, nu=nu).draw(n, seed=3)
    zi, zj = noise[:, 0], noise[:, 1]
    checks = [
        (derive_pairs("sgd", law, nu=nu).entries[("x", "x")], zi * zj),
        (derive_pairs("signsgd", law, nu=nu, at={"g": 0}).entries[("x", "x")], np.sign(zi) * np.sign(zj)),
        (
            -derive_pairs("lion", law, nu=nu, at={"g": 0, "m": 0}).entries[("x", "m")]
            / sp.Symbol("rho2", positive=True),
            np.sign(zi) * zj,
        ),
    ]
    for entry, samples in checks:
        want = float(entry.subs({eta: 1, r: rc, s_i: 1, s_j: 1}))
        assert abs(samples.mean() - want) <= 4 * samples.std() / np.sqrt(n), (entry, samples.mean(), want)
    assert float(checks[1][0].subs({eta: 1, r: rc})) == pytest.approx(2 / np.pi * np.arcsin(rc))


def test_refusals_name_the_missing_pair_expectation():
    with pytest.raises(DeriveError) as info:
        derive_pairs("signsgd", "student-t", nu=5)
    message = str(info.value)
    assert "\n" not in message and "E[zeta_i^0 zeta_j^0; zeta_i > -g_i/sigma_i, zeta_j > -g_j/sigma_j]" in message
    assert "bivariate CDF" in message
    for law in ("uniform", "cdf:1/(1 + exp(-y))"):
        with pytest.raises(DeriveError, match="correlated noise is Gaussian or elliptical"):
            derive_pairs("sgd", law)
    with pytest.raises(DeriveError, match=r"zeta_i > -\(c \+ g_i\)/sigma_i.*under the cauchy law"):
        derive_pairs("clipsgd", "cauchy")  # clip x clip: thresholds +-c, not 0, even at g = 0
    with pytest.raises(DeriveError, match=r"zeta_i > -\(beta1\*m_i \+ g_i\*\(1 - beta1\)\)/\(sigma_i\*\(1 - beta1\)\)"):
        derive_pairs("lion", "student-t", nu=5)  # the thresholds in the user's symbols, not the regime's


# ---- the built-ins of issue 19 -----------------------------------------------------------------
def one_coordinate(pairs, sde, r_value) -> sp.Matrix:
    """The pair matrix at correlation ``r_value`` with coordinate j equal to coordinate i (g_j = g_i,
    sigma_j = sigma_i, the same states), written in the per-coordinate SDE's symbols."""
    own = (sp.Symbol("g", real=True), sp.Symbol("sigma", positive=True), *sde.state)
    same = {suffixed(s, c): s for s in own for c in "ij"}
    return pairs.matrix().xreplace({pairs.r: r_value}).xreplace(same).xreplace(dict(pairs.time_functions))


#: the built-ins of issue 19
ISSUE19 = ("sgd_momentum", "nesterov", "adam_fixed", "usam", "schedulefree_sgd", "adagrad")


def test_issue19_builtins_correlated_or_refused():
    """Every built-in of issue 19 derives its pairs or is refused in one line: at r = 1 with two equal
    coordinates the pair matrix is the per-coordinate covariance G G^T (the engine's own, by another
    path: the clock, eliminated fast states and bias corrections included), at r = 0 it vanishes. USAM's
    noise reaches x through hvp(zeta), H times the whole noise vector: refused, naming it."""
    derived = []
    for name in ISSUE19:
        if name == "usam":
            with pytest.raises(DeriveError) as info:
                derive_pairs(name)
            assert "\n" not in str(info.value) and "enters through hvp(zeta)" in str(info.value)
            continue
        sde, pairs = derive_sde(name), derive_pairs(name)
        assert pairs.states == tuple(s.name for s in sde.state), name
        G = sp.Matrix(sde.diffusion).xreplace(dict(sde.time_functions))
        at_one = one_coordinate(pairs, sde, 1) - G * G.T
        point = {s: sp.Rational(3 + 2 * n, 7) for n, s in enumerate(sorted(at_one.free_symbols, key=str))}
        assert max(abs(e.xreplace(point).evalf(30)) for e in at_one) < 1e-25, (name, at_one)
        assert one_coordinate(pairs, sde, 0).is_zero_matrix, name
        derived.append(name)
    assert set(derived) == set(ISSUE19) - {"usam"}


# ---- the source correlation and the simulators' noise across coordinates ---------------------
def test_source_correlation_is_derived_from_the_pairs():
    """RMSprop, Gaussian: C = diag(r, r^2) (the zeta-linear source like R, the zeta^2 - 1 source like
    R o R); Student-t(6): constant, but the squared source stays correlated at r = 0; SignSGD: none."""
    for optimizer in ("rmsprop", "adam"):  # Adam: m and v carry the two sources, x none
        C = source_correlation(derive_sde(optimizer), derive_pairs(optimizer))
        assert sp.simplify(C - sp.diag(r, r**2)) == sp.zeros(2, 2), optimizer
    Ct = source_correlation(derive_sde("rmsprop", "student-t", nu=6), derive_pairs("rmsprop", "student-t", nu=6))
    assert Ct is not None and Ct[0, 0] == r and Ct[1, 1].subs(r, 0) == sp.Rational(1, 5)
    assert source_correlation(derive_sde("signsgd"), derive_pairs("signsgd")) is None
    model = NoiseModel.correlated(0.5, 3, sigma=[1.0, 2.0, 0.5])
    M = model.source_covariance(C, r)
    R = model.correlation
    assert np.allclose(M[:3, :3], R) and np.allclose(M[3:, 3:], R * R) and np.allclose(M[:3, 3:], 0)


# ---- the command line -------------------------------------------------------------------------
NAMES = set("eta rho rho1 rho2 eps theta beta1 c t nu r g_i g_j sigma_i sigma_j x_i x_j m_i m_j v_i v_j".split())


def plain(expr: sp.Expr) -> sp.Expr:
    """expr with assumption-free symbols, as the JSON's strings read back."""
    return expr.xreplace({s: sp.Symbol(s.name) for s in expr.free_symbols})


def test_cli_correlated_json_reads_back_with_the_documented_names(capsys):
    """Every pair_covariance string reads back through the tool's parser (Phi2 the engine's function,
    which evaluates), in the names README lists, as the derived entry."""
    assert main(["sde", "lion", "--correlated", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["correlation"] == "r"
    assert set(data["pair_covariance"]) == {"x_i,x_j", "x_i,m_j", "m_i,x_j", "m_i,m_j"}
    pairs = derive_pairs("lion")
    for key, text in data["pair_covariance"].items():
        parsed = sde_expression(text)
        assert {s.name for s in parsed.free_symbols} <= NAMES
        a, b = key.split(",")
        assert sp.simplify(parsed - plain(pairs.explicit(pairs.entries[(a[:-2], b[:-2])]))) == 0
    assert any(e.has(Phi2) for e in map(sde_expression, data["pair_covariance"].values()))


def test_cli_correlation_value(capsys):
    """--correlation R: the pairs at that r (exact: 0.7 read as 7/10); at g = 0 SignSGD's pair is the
    arcsine law's number."""
    assert main(["sde", "signsgd", "--correlation", "0.7", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["correlation"] == "7/10"
    entry = sde_expression(data["pair_covariance"]["x_i,x_j"])
    value = entry.subs({sp.Symbol("g_i"): 0, sp.Symbol("g_j"): 0, sp.Symbol("eta"): 1})
    assert float(value) == pytest.approx(2 / np.pi * np.arcsin(0.7), rel=1e-12)
    assert main(["sde", "rmsprop", "--correlation=-0.9"]) == 0
    assert "v_i,v_j: 9*eta*rho**2*sigma_i*sigma_j*(-20*g_i*g_j + 9*sigma_i*sigma_j)/50" in capsys.readouterr().out


def test_cli_correlated_text_and_refusal(capsys):
    assert main(["sde", "rmsprop", "--correlated"]) == 0
    out = capsys.readouterr().out
    assert "dv = " in out and "v_i,v_j: 2*eta*r*rho**2*sigma_i*sigma_j*(2*g_i*g_j + r*sigma_i*sigma_j)" in out
    refused = [
        (["sgd", "--correlated", "--order", "2"], "not combined with --order 2"),
        (["signsgd", "--correlated", "--noise", "student-t"], "needs the pair expectation"),
        (
            ["sgd", "--correlated", "--noise", "uniform"],
            "under the uniform law: correlated noise is Gaussian or elliptical",
        ),
        (["usam", "--correlated"], "the noise of x enters through hvp(zeta)"),
        (["sgd", "--correlation", "abc"], "correlation 'abc' is not a number (unknown name 'abc'"),
        (["sgd", "--correlation", "1.5"], "correlation '1.5' is not a number in [-1, 1]"),
    ]
    for argv, message in refused:
        assert main(["sde", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)


def test_a_correlation_where_an_entry_is_a_limit_is_refused():
    """Clipping's truncated moments divide by sqrt(1 - r^2): at r = 1 an entry is a limit (0/0), refused
    by name rather than printed as nan (shown here on such a term, without the 3 s clip x clip derivation)."""
    pairs = derive_pairs("sgd")
    limit = replace(pairs, entries={("x", "x"): eta * sp.exp(-1 / (1 - r**2)) / sp.sqrt(1 - r**2)})
    assert limit.at_correlation("1/2").entries[("x", "x")] == eta * sp.exp(-sp.Rational(4, 3)) * 2 / sp.sqrt(3)
    with pytest.raises(DeriveError, match=r"^at correlation 1 the pair x_i,x_j is a limit"):
        limit.at_correlation(1)
    assert pairs.at_correlation(1).entries[("x", "x")] == eta * s_i * s_j  # SGD's is a value there
