"""Each stage of the engine run alone, table-driven: a list of (input, expected) cases per stage.

Inputs and expected values are written as strings in the engine's symbols (see ``NS``); the
expected values are worked out by hand from the stage's definition (derive.engine docstring).
"""

from __future__ import annotations

import pytest
import sympy as sp

from derive import engine as E
from derive import symbols as S
from derive.codegen.printer import cse_lines, hoist
from derive.errors import NoLimitError, UnsupportedUpdateError
from derive.expectation import Indicator, expect, shown
from derive.noise import get_noise
from derive.regimes import NOISE_DOMINATED, PAPER
from derive.spec import Optimizer, State

_POS = "eta sigma sigma_0 rho rho_0 t v v_0 gamma nu a b c s zeta_moment_2 zeta_moment_4 zeta_abs_moment_1".split()
_REAL = "x m g zeta zeta_1 xi grad k H_0 H_1 H_2 H_3 m_next y c0 c1 c3".split()
NS: dict[str, object] = {n: sp.Symbol(n, positive=True) for n in _POS}
NS.update({n: sp.Symbol(n, real=True) for n in _REAL})
NS.update(
    eps=sp.Symbol("eps", nonnegative=True),
    eps_0=sp.Symbol("eps_0", nonnegative=True),
    theta=sp.Symbol("theta", nonnegative=True),
    theta_0=sp.Symbol("theta_0", nonnegative=True),
    beta=sp.Symbol("beta", positive=True),
    K_0=sp.Function("K_0"),
    K_1=sp.Function("K_1"),
    K_2=sp.Function("K_2"),
)
NS.update({sym.name: sym for sym in (S.eta, S.sigma, S.g, S.t, S.zeta, S.nu, S.grad, S.k)})


def P(text) -> sp.Expr:
    """Parse a case's string in the engine's symbols."""
    return sp.sympify(text, locals=NS)


def M(rows) -> sp.Matrix:
    """A matrix of parsed strings."""
    return sp.Matrix([[P(e) for e in row] for row in rows])


def same(a, b) -> bool:
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


def spec(update, states=(), hyper=None) -> Optimizer:
    return Optimizer(
        name="case",
        hyper=hyper or {"eta": "lr", "beta": "decay"},
        update=update,
        state=[State(n, positive=(n == "v")) for n in states],
    )


HEAVY_BALL = [("m", "beta*m + (1 - beta)*grad"), ("x", "x - eta*m")]
BIAS = [("m", "beta*m + (1 - beta)*grad"), ("mhat", "m/(1 - beta**k)"), ("x", "x - eta*mhat")]

# ---- stage 1: one_step ------------------------------------------------------------------------
ONE_STEP = [
    # (update, states, hold, expected S' per state, expected held values)
    ([("x", "x - eta*grad")], (), (), {"x": "x - eta*grad"}, {}),
    (HEAVY_BALL, ("m",), (), {"m": "beta*m + (1 - beta)*grad", "x": "x - eta*(beta*m + (1 - beta)*grad)"}, {}),
    (
        HEAVY_BALL,
        ("m",),
        ("m",),
        {"m": "beta*m + (1 - beta)*grad", "x": "x - eta*m_next"},
        {"m": "beta*m + (1 - beta)*grad"},
    ),
    (BIAS, ("m",), (), {"x": "x - eta*(beta*m + (1 - beta)*grad)/(1 - beta**k)"}, {}),
    ([("x", "x*(1 - eta)"), ("x", "x - eta*grad")], (), (), {"x": "x*(1 - eta) - eta*grad"}, {}),
]


@pytest.mark.parametrize("update,states,hold,new,held", ONE_STEP)
def test_one_step(update, states, hold, new, held):
    out = E.one_step(E.Update(spec(update, states), PAPER, frozenset(hold)))
    for name, text in new.items():
        assert same(out.new[name], P(text)), (name, out.new[name])
    assert set(out.held) == set(held)
    for name, text in held.items():
        assert same(out.held[name], P(text))


# ---- stage 2: substitute ----------------------------------------------------------------------
SUBSTITUTE = [
    # (update, states, hyper, regime, expected Delta per state, expected gammas)
    ([("x", "x - eta*grad")], (), {"eta": "lr"}, PAPER, {"x": "-eta*(g + sigma*zeta)"}, {}),
    ([("x", "x - eta*grad")], (), {"eta": "lr"}, NOISE_DOMINATED, {"x": "-eta*g - sigma_0*zeta"}, {}),
    (
        HEAVY_BALL,
        ("m",),
        None,
        PAPER,
        {"m": "eta*rho*(g + sigma*zeta - m)", "x": "-eta*(m + eta*rho*(g + sigma*zeta - m))"},
        {},
    ),
    (
        [("v", "beta*v + (1 - beta)*grad**2"), ("x", "x - eta*grad/sqrt(v)")],
        ("v",),
        None,
        NOISE_DOMINATED,
        {"v": "eta**2*rho_0*((eta*g + sigma_0*zeta)**2 - v_0)"},
        {},
    ),
    (BIAS, ("m",), None, PAPER, {"x": "-eta*(m + eta*rho*(g + sigma*zeta - m))/gamma"}, {"gamma": "1 - exp(-rho*t)"}),
    (
        [("x", "x*(1 - eta*theta) - eta*grad")],
        (),
        {"eta": "lr", "theta": "weight_decay"},
        NOISE_DOMINATED,
        {"x": "-eta**2*theta_0*x - eta*g - sigma_0*zeta"},
        {},
    ),
]


@pytest.mark.parametrize("update,states,hyper,regime,delta,gammas", SUBSTITUTE)
def test_substitute(update, states, hyper, regime, delta, gammas):
    sp_ = spec(update, states, hyper)
    out = E.substitute(E.one_step(E.Update(sp_, regime)))
    for name, text in delta.items():
        assert same(out.delta[name], P(text)), (name, out.delta[name])
    assert {k.name for k in out.units.gammas} == set(gammas)
    for gamma, value in out.units.gammas.items():
        assert same(value, P(gammas[gamma.name]))


# ---- stage 3: isolate_signs ------------------------------------------------------------------
H_PLUS = "Heaviside(zeta + g/sigma)"  # 1[zeta > -g/sigma]
ISOLATE = [
    # (Delta of x, expected with each indicator shown as Heaviside(draw - threshold)) or (Delta, error)
    ("-eta*sign(g + sigma*zeta)", f"-eta*(2*{H_PLUS} - 1)"),
    ("sign(g - sigma*zeta)", "1 - 2*Heaviside(zeta - g/sigma)"),  # negative noise coefficient: 1 - H
    ("sign(g + sigma*zeta) + sign(2*g + 2*sigma*zeta)", f"2*(2*{H_PLUS} - 1)"),  # one indicator for both
    ("sign(x + zeta) - sign(m + zeta)", "2*Heaviside(zeta + x) - 2*Heaviside(zeta + m)"),
    ("zeta*sign(m)", "zeta*sign(m)"),  # a sign free of the noise stays
    ("Abs(g + sigma*zeta)", f"(g + sigma*zeta)*(2*{H_PLUS} - 1)"),
    ("Heaviside(g + sigma*zeta)", H_PLUS),
    ("Max(m, g + sigma*zeta)", "g + sigma*zeta + (m - g - sigma*zeta)*(1 - Heaviside(zeta - (m - g)/sigma))"),
    # clip(f, -c, c) = -c + (f + c) 1[f > -c] + (c - f) 1[f > -c] 1[f > c]
    (
        "Min(Max(g + sigma*zeta, -c), c)",
        "-c + (g + c + sigma*zeta)*Heaviside(zeta + (g + c)/sigma)"
        " + (c - g - sigma*zeta)*Heaviside(zeta + (g + c)/sigma)*Heaviside(zeta + (g - c)/sigma)",
    ),
    ("sqrt(Max(zeta, 0))", "sqrt(zeta)*Heaviside(zeta)"),  # any function of an indicator splits on it
    # the threshold -m/(eta rho sigma) diverges: the sign tends to the sign of the leading term
    ("sign(m + eta*rho*sigma*zeta)", "sign(m)"),
    ("sign(m + eta*rho*(g - m) + eta*rho*sigma*zeta)", "sign(m)"),
    ("sign(zeta**2 - 1)", UnsupportedUpdateError("a piecewise function of a non-affine function of the noise zeta")),
    ("sign(x*zeta)", UnsupportedUpdateError("the sign of the noise coefficient x is unknown")),
    (
        "sign(zeta + zeta_1)",
        UnsupportedUpdateError("a piecewise function of several noise draws together (zeta, zeta_1)"),
    ),
]


def _units(regime=PAPER, **exponents) -> E.Units:
    return E.Units(regime, {"x": 0, **exponents}, {}, {})


@pytest.mark.parametrize("delta,expected", ISOLATE)
def test_isolate_signs(delta, expected):
    sub = E.Substituted(spec([("x", "x - eta*grad")], hyper={"eta": "lr"}), _units(), {"x": P(delta)})
    if isinstance(expected, Exception):
        with pytest.raises(type(expected), match=None) as info:
            E.isolate_signs(sub)
        assert str(expected) in str(info.value)
        return
    out = E.isolate_signs(sub)
    got = shown(out.delta["x"], out.indicators)
    assert same(got, P(expected)), got


# ---- stage 4: expand --------------------------------------------------------------------------
EXPAND = [
    # (Delta of x, regime, expected {power of eta: coefficient}) or (Delta, regime, error text)
    ("-eta*(g + sigma*zeta)", PAPER, {1: "-g - sigma*zeta"}),
    ("eta*x/(1 + eta)", PAPER, {1: "x", 2: "-x"}),
    ("eta*exp(eta*x)", PAPER, {1: "1", 2: "x"}),
    ("-eta*g - sigma_0*zeta", NOISE_DOMINATED, {0: "-sigma_0*zeta", 1: "-g"}),
    (
        "eta**2*rho_0*((eta*g + sigma_0*zeta)**2 - v_0)",
        NOISE_DOMINATED,
        {2: "rho_0*(sigma_0**2*zeta**2 - v_0)", 3: "2*rho_0*g*sigma_0*zeta"},
    ),
    ("x/eta", PAPER, {-1: "x"}),
    ("sqrt(eta)*zeta", PAPER, UnsupportedUpdateError("fractional power")),
]


@pytest.mark.parametrize("delta,regime,expected", EXPAND)
def test_expand(delta, regime, expected):
    iso = E.Isolated(spec([("x", "x - eta*grad")], hyper={"eta": "lr"}), _units(regime), {"x": P(delta)}, {})
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)) as info:
            E.expand(iso)
        assert str(expected) in str(info.value)
        return
    series = E.expand(iso).series["x"]
    assert set(series) == set(expected), series
    for n, text in expected.items():
        assert same(series[n], P(text)), (n, series[n])


# ---- stage 5: average -------------------------------------------------------------------------
SGD = {"x": {1: "-g - sigma*zeta"}}
RMS = {"x": {1: "-(g + sigma*zeta)"}, "v": {1: "rho*((g + sigma*zeta)**2 - v)"}}
RMS_COV = [["sigma**2", "-2*rho*g*sigma**2"], ["-2*rho*g*sigma**2", "rho**2*(4*g**2*sigma**2 + 2*sigma**4)"]]
ERF = "erf(sqrt(2)*g/(2*sigma))"
SIGN = {"x": {1: "-(2*H_0 - 1)"}}  # -sign(g + sigma*zeta)
AT = {"H_0": ("zeta", "-g/sigma")}
# Lion-like: x moves by -sign(g + sigma*zeta), m by rho (g + sigma*zeta - m): Cov = -rho sigma E[zeta sign(.)]
LION = {"x": {1: "-(2*H_0 - 1)"}, "m": {1: "rho*(g + sigma*zeta - m)"}}
PHI = "exp(-g**2/(2*sigma**2))/sqrt(2*pi)"
AVERAGE = [
    # (series, indicators, law, nu, regime, dropped, expected mean, expected cov (None: not computed), lead, conditions)
    (SGD, {}, "gaussian", None, PAPER, (), {"x": {1: "-g"}}, [["sigma**2"]], 2, ()),
    (SGD, {}, "laplace", None, PAPER, (), {"x": {1: "-g"}}, [["2*sigma**2"]], 2, ()),
    (SGD, {}, "uniform", None, PAPER, (), {"x": {1: "-g"}}, [["sigma**2/3"]], 2, ()),
    (SGD, {}, "student-t", "nu", PAPER, (), {"x": {1: "-g"}}, [["nu*sigma**2/(nu - 2)"]], 2, ("nu > 2",)),
    (SIGN, AT, "gaussian", None, PAPER, (), {"x": {1: f"-{ERF}"}}, [[f"1 - {ERF}**2"]], 2, ()),
    (SIGN, AT, "cauchy", None, PAPER, (), {"x": {1: "-2*atan(g/sigma)/pi"}}, [["1 - 4*atan(g/sigma)**2/pi**2"]], 2, ()),
    (
        LION,
        AT,
        "gaussian",
        None,
        PAPER,
        (),
        {"x": {1: f"-{ERF}"}, "m": {1: "rho*(g - m)"}},
        [[f"1 - {ERF}**2", f"-2*rho*sigma*{PHI}"], [f"-2*rho*sigma*{PHI}", "rho**2*sigma**2"]],
        2,
        (),
    ),
    (
        LION,
        AT,
        "laplace",
        None,
        PAPER,
        (),
        {"m": {1: "rho*(g - m)"}},  # E[zeta sign(y + zeta)] = (1 + |y|) exp(-|y|)
        [
            ["1 - (1 - exp(-Abs(g)/sigma))**2", "-rho*sigma*(1 + Abs(g)/sigma)*exp(-Abs(g)/sigma)"],
            ["-rho*sigma*(1 + Abs(g)/sigma)*exp(-Abs(g)/sigma)", "2*rho**2*sigma**2"],
        ],
        2,
        (),
    ),
    (RMS, {}, "gaussian", None, PAPER, (), {"x": {1: "-g"}, "v": {1: "rho*(g**2 + sigma**2 - v)"}}, RMS_COV, 2, ()),
    (
        RMS,
        {},
        "gaussian",
        None,
        PAPER,
        ("v",),
        {"x": {1: "-g"}, "v": {1: "rho*(g**2 + sigma**2 - v)"}},
        [["sigma**2", "0"], ["0", "0"]],
        2,
        (),
    ),
    # two independent draws: Var of the mean of two signs is (1 - s^2)/2
    (
        {"x": {1: "-(2*H_0 - 1 + 2*H_1 - 1)/2"}},
        {"H_0": ("zeta", "-g/sigma"), "H_1": ("zeta_1", "-g/sigma")},
        "gaussian",
        None,
        PAPER,
        (),
        {"x": {1: f"-{ERF}"}},
        [[f"(1 - {ERF}**2)/2"]],
        2,
        (),
    ),
    # injected Gaussian noise xi with scale c on top of the gradient noise
    (
        {"x": {1: "-g - sigma*zeta - c*xi"}},
        {},
        "laplace",
        None,
        PAPER,
        (),
        {"x": {1: "-g"}},
        [["2*sigma**2 + c**2"]],
        2,
        (),
    ),
    # noise-dominated SignSGD: s(eta g / sigma_0) = 2 p(0) eta g / sigma_0 + O(eta^3)
    (
        SIGN,
        {"H_0": ("zeta", "-eta*g/sigma_0")},
        "gaussian",
        None,
        NOISE_DOMINATED,
        (),
        {"x": {2: "-sqrt(2)*g/(sqrt(pi)*sigma_0)"}},
        "skip",
        2,
        (),
    ),
    # noise-dominated SGD: the mean diverges (order eta^1 < dt = 2); the covariance is not averaged
    ({"x": {0: "-sigma_0*zeta", 1: "-g"}}, {}, "cauchy", None, NOISE_DOMINATED, (), {"x": {1: "-g"}}, None, None, ()),
    # Delta random at order eta^0: Cov is of order eta^0 < dt = 2 and is not averaged (leading reports it)
    ({"x": {0: "-sigma_0*zeta", 2: "-g"}}, {}, "cauchy", None, NOISE_DOMINATED, (), {"x": {2: "-g"}}, None, 0, ()),
]


def _table(indicators) -> dict:
    return {NS[k]: Indicator(NS[k], NS[d], P(u)) for k, (d, u) in indicators.items()}


def _expansion(series, indicators, regime=PAPER) -> E.Expansion:
    names = list(series)
    units = _units(regime, **{n: 0 for n in names if n != "x"})
    coeffs = {n: {o: P(c) for o, c in series[n].items()} for n in names}
    return E.Expansion(spec([("x", "x - eta*grad")], hyper={"eta": "lr"}), units, coeffs, _table(indicators))


@pytest.mark.parametrize("series,indicators,law,nu,regime,dropped,mean,cov,lead,conditions", AVERAGE)
def test_average(series, indicators, law, nu, regime, dropped, mean, cov, lead, conditions):
    out = E.average(E.Averaging(_expansion(series, indicators, regime), get_noise(law, nu), frozenset(dropped)))
    for name, orders in mean.items():
        assert set(out.mean[name]) == set(orders), out.mean[name]
        for n, text in orders.items():  # the law's arguments are symbols until written out (E.explicit)
            assert same(E.explicit(out.mean[name][n]), P(text)), (name, n, out.mean[name][n])
    assert out.lead == lead
    assert sorted(out.conditions) == list(conditions)
    if cov is None:
        assert out.cov is None
    elif cov != "skip":
        assert (out.cov.applyfunc(E.explicit) - M(cov)).applyfunc(sp.simplify) == sp.zeros(*out.cov.shape), out.cov


# ---- stage 6: leading -------------------------------------------------------------------------
LEADING = [
    # (mean, cov (None: not computed), lead, regime, expected drift, expected cov) or (..., error text)
    ({"x": {1: "-g"}}, [["sigma**2"]], 2, PAPER, {"x": "-g"}, [["sigma**2"]]),
    ({"x": {1: "-g", 2: "g**2"}}, [["sigma**2"]], 2, PAPER, {"x": "-g"}, [["sigma**2"]]),
    ({"x": {2: "-g/sigma_0", 3: "g"}}, [["1"]], 2, NOISE_DOMINATED, {"x": "-g/sigma_0"}, [["1"]]),
    ({"x": {}}, [["0"]], 0, PAPER, {"x": "0"}, [["0"]]),
    ({"x": {1: "-g"}}, None, None, PAPER, {"x": "-g"}, None),
    (
        {"x": {1: "-g"}},
        None,
        None,
        NOISE_DOMINATED,
        NoLimitError("E[Delta x]/dt is of order eta^-1, which diverges"),
        None,
    ),
    ({"x": {2: "-g"}}, None, 0, NOISE_DOMINATED, NoLimitError("Cov[Delta]/dt is of order eta^-2"), None),
]


@pytest.mark.parametrize("mean,cov,lead,regime,drift,expected_cov", LEADING)
def test_leading(mean, cov, lead, regime, drift, expected_cov):
    exp = _expansion({n: {} for n in mean}, {}, regime)
    avg = E.Averaged(
        exp,
        get_noise("gaussian"),
        {n: {o: P(c) for o, c in m.items()} for n, m in mean.items()},
        None if cov is None else sp.ImmutableMatrix(M(cov)),
        lead,
    )
    if isinstance(drift, Exception):
        with pytest.raises(type(drift)) as info:
            E.leading(avg)
        assert str(drift) in str(info.value)
        return
    out = E.leading(avg)
    for name, text in drift.items():
        assert same(out.drift[name], P(text))
    if expected_cov is None:
        assert out.cov is None
    else:
        assert (out.cov - M(expected_cov)).applyfunc(sp.simplify) == sp.zeros(*out.cov.shape)


# ---- stage 7: map_back ------------------------------------------------------------------------
MAP_BACK = [
    # (regime, exponents, to_user, drift (regime units), cov, lead, expected user drift, expected G)
    (PAPER, {}, {}, {"x": "-g"}, [["sigma**2"]], 2, ["-g"], [["sqrt(eta)*sigma"]]),
    (NOISE_DOMINATED, {}, {"sigma_0": "sigma*eta"}, {"x": "-g/sigma_0"}, [["1"]], 2, ["-g/sigma"], [["sqrt(eta)"]]),
    (
        NOISE_DOMINATED,
        {"v": 2},
        {"sigma_0": "sigma*eta", "v_0": "v*eta**2", "rho_0": "rho/eta", "eps_0": "eps*eta"},
        {"x": "-g/(sqrt(v_0) + eps_0)", "v": "rho_0*(sigma_0**2 - v_0)"},
        [["sigma_0**2/(sqrt(v_0) + eps_0)**2", "0"], ["0", "0"]],
        2,
        ["-g/(sqrt(v) + eps)", "rho*(sigma**2 - v)"],
        [["sqrt(eta)*sigma/(sqrt(v) + eps)"], ["0"]],
    ),
    (
        PAPER,
        {"v": 0},
        {},
        {"x": "-g", "v": "rho*(g**2 + sigma**2 - v)"},
        [["sigma**2", "2*g*sigma**2"], ["2*g*sigma**2", "4*g**2*sigma**2 + 2*sigma**4"]],
        2,
        ["-g", "rho*(g**2 + sigma**2 - v)"],
        [["sqrt(eta)*sigma", "0"], ["2*sqrt(eta)*g*sigma", "sqrt(2*eta)*sigma**2"]],
    ),
    (PAPER, {}, {}, {"x": "-g"}, None, None, ["-g"], []),
]


@pytest.mark.parametrize("regime,exponents,to_user,drift,cov,lead,user_drift,diffusion", MAP_BACK)
def test_map_back(regime, exponents, to_user, drift, cov, lead, user_drift, diffusion):
    exp = _expansion({n: {} for n in drift}, {}, regime)
    units = E.Units(regime, {"x": 0, **exponents}, {NS[k]: P(v) for k, v in to_user.items()}, {})
    exp = E.Expansion(exp.spec, units, exp.series, exp.indicators)
    lead_ = E.Leading(
        exp, {n: P(d) for n, d in drift.items()}, None if cov is None else sp.ImmutableMatrix(M(cov)), lead
    )
    out = E.map_back(lead_)
    assert len(out.drift) == len(user_drift)
    assert all(same(a, P(b)) for a, b in zip(out.drift, user_drift)), out.drift
    want = M(diffusion) if diffusion else sp.zeros(len(drift), 0)
    assert out.diffusion.shape == want.shape
    assert (out.diffusion - want).applyfunc(sp.simplify) == sp.zeros(*want.shape)


# ---- the expectation rules (derive.expectation.expect) ----------------------------------------
INDICATORS = {"H_0": ("zeta", "-g/sigma"), "H_1": ("zeta", "x"), "H_2": ("zeta_1", "x"), "H_3": ("xi", "x")}
EXPECT = [
    # (expression, expected E over the draws) or (expression, error text); K_n(u) = int_0^u z^n p
    ("zeta**2", "zeta_moment_2"),
    ("3*x*zeta**3 + 2", "2"),
    ("x*(1 + zeta)**2", "x + x*zeta_moment_2"),
    ("H_0", "1/2 + K_0(g/sigma)"),  # P(zeta > -y) = 1/2 - K_0(-y) = 1/2 + K_0(y)
    ("2*H_0 - 1", "2*K_0(g/sigma)"),  # E sign(y + zeta) = s(y) = 2 K_0(y)
    ("H_0**3*x", "x*(1/2 + K_0(g/sigma))"),  # H^3 = H
    ("zeta*H_1", "zeta_abs_moment_1/2 - K_1(x)"),
    ("zeta**2*H_1", "zeta_moment_2/2 - K_2(x)"),
    ("H_0*H_1", "1/2 - K_0(Max(x, -g/sigma))"),  # two thresholds of one draw: the larger one
    ("H_1*H_2", "(1/2 - K_0(x))**2"),  # independent draws: the product of the means
    ("zeta*zeta_1", "0"),
    ("zeta**2*zeta_1**2", "zeta_moment_2**2"),
    ("xi**4 + xi**2", "4"),  # injected Gaussian: moments 1 and 3
    ("xi*H_3", "exp(-x**2/2)/sqrt(2*pi)"),  # E[xi; xi > x] = phi(x)
    ("exp(zeta)", UnsupportedUpdateError("is not polynomial in the noise")),
    ("sqrt(zeta**2 + 1)", UnsupportedUpdateError("is not polynomial in the noise")),
    ("x*zeta**(1/2)", UnsupportedUpdateError("non-integer power of the noise zeta")),
]


@pytest.mark.parametrize("expr,expected", EXPECT)
def test_expect(expr, expected):
    table = _table(INDICATORS)
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)) as info:
            expect(P(expr), table, "case")
        assert str(expected) in str(info.value)
        return
    assert same(expect(P(expr), table, "case"), P(expected)), expect(P(expr), table, "case")


# ---- the Cholesky factor of map_back ----------------------------------------------------------
CHOLESKY = [
    # (covariance, expected G: lower triangular, one column per non-zero pivot)
    ([["4"]], [["2"]]),
    ([["a**2", "a*b"], ["a*b", "b**2 + c**2"]], [["a", "0"], ["b", "c"]]),
    ([["0", "0"], ["0", "rho**2"]], [["0"], ["rho"]]),
    ([["1", "1"], ["1", "1"]], [["1"], ["1"]]),
    (
        [["rho**2", "0", "rho*a"], ["0", "0", "0"], ["rho*a", "0", "a**2 + b**2"]],
        [["rho", "0"], ["0", "0"], ["a", "b"]],
    ),
    ([["0", "0"], ["0", "0"]], []),
]


@pytest.mark.parametrize("cov,expected", CHOLESKY)
def test_cholesky(cov, expected):
    c = M(cov)
    G = E._cholesky(c)
    want = M(expected) if expected else sp.zeros(c.shape[0], 0)
    assert G.shape == want.shape
    assert (G - want).applyfunc(sp.simplify) == sp.zeros(*G.shape)
    assert (G * G.T - c).applyfunc(sp.simplify) == sp.zeros(*c.shape)


# ---- the code printer's hoist and cse_lines ---------------------------------------------------
HOIST = [
    # (expressions, element symbols, start, expected per-step constants, expected rewritten expressions)
    (["x*a*b"], "x", 0, [("c0", "a*b")], ["c0*x"]),
    (["x + a", "y*(a + 1)"], "x y", 0, [("c0", "a + 1")], ["x + a", "c0*y"]),  # bare symbols stay
    (["x*exp(a)", "y + exp(a)"], "x y", 0, [("c0", "exp(a)")], ["c0*x", "c0 + y"]),  # shared constant
    (["x*a*b"], "x", 3, [("c3", "a*b")], ["c3*x"]),
    (["sqrt(a**2 + b)*x + a*b*y"], "x y", 0, [("c0", "sqrt(a**2 + b)"), ("c1", "a*b")], ["c0*x + c1*y"]),
    (["x*Piecewise((a*b, x > 0), (b, True))"], "x", 0, [("c0", "a*b")], ["x*Piecewise((c0, x > 0), (b, True))"]),
    (["x*Piecewise((a, a > 0), (0, True))"], "x", 0, [], ["x*Piecewise((a, a > 0), (0, True))"]),
    (["a*b"], "x", 0, [("c0", "a*b")], ["c0"]),
]


@pytest.mark.parametrize("exprs,element,start,consts,rewritten", HOIST)
def test_hoist(exprs, element, start, consts, rewritten):
    got_consts, got = hoist([P(e) for e in exprs], {NS[n] for n in element.split()}, "c", start=start)
    assert [c.name for c, _ in got_consts] == [n for n, _ in consts]
    assert all(same(e, P(v)) for (_, e), (_, v) in zip(got_consts, consts))
    assert len(got) == len(rewritten)
    for g_, want in zip(got, rewritten):
        if g_.has(sp.Piecewise):
            assert g_ == P(want)
        else:
            assert same(g_, P(want)), g_


CSE = [
    # (expressions, prefix, expected assignment lines, expected printed results)
    (["(a + b)*x + exp(a + b)"], "_e", ["_e0 = a + b"], ["_e0*x + _math.exp(_e0)"]),
    (
        ["sign(x)*exp(x)", "exp(x)"],
        "_a",
        ["_a0 = _math.exp(x)"],
        ["_a0*(_T(1) if x > 0 else (_T(-1) if x < 0 else _T(0)))", "_a0"],
    ),
    (["sqrt(a + b) + sqrt(v)"], "_e", [], ["_math.sqrt(v) + _math.sqrt(max(_T(0), a + b))"]),
    (["x/2"], "_e", [], ["(_T(0.5))*x"]),
    (["x**2 + 1/x"], "_e", [], ["x*x + (_T(1)/(x))"]),
]


@pytest.mark.parametrize("exprs,prefix,lines,out", CSE)
def test_cse_lines(exprs, prefix, lines, out):
    got_lines, got_out = cse_lines([P(e) for e in exprs], prefix)
    assert got_lines == lines
    assert got_out == out


def test_derive_sde_runs_the_stages_in_order():
    """The stages chained by hand give derive_sde's result (SGD, Laplace noise, paper regime)."""
    spec_ = spec([("x", "x - eta*grad")], hyper={"eta": "lr"})
    exp = E.expand(E.isolate_signs(E.substitute(E.one_step(E.Update(spec_, PAPER)))))
    user = E.map_back(E.leading(E.average(E.Averaging(exp, get_noise("laplace")))))
    sde = E.derive_sde(spec_, "laplace")
    assert user.drift == sde.drift and user.diffusion == sde.diffusion
    assert same(user.diffusion[0, 0], sp.sqrt(2 * S.eta) * S.sigma)
