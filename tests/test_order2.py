"""Order-2 SDEs: the derivation's interface, its published anchor, refusals, the curvature
substitution and the stationary diffusion correction (reference section 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy as sp

from derive import derive_sde
from derive import symbols as S
from derive.cli import main
from derive.noise import cdf_law, get_noise
from derive.order2 import CURVATURE, NoOrder2Error, _smooth_density, hvp, on_curvature
from derive.symbols import plain

G, ETA, SIGMA = S.g, S.eta, S.sigma
JSON_NAMES = {n: sp.Symbol(n) for n in "x m v g sigma eta rho rho1 rho2 eps theta t nu".split()}
JSON_FUNCS = {f.__name__: f for f in (sp.erf, sp.atan, sp.exp, sp.sqrt, sp.sign, sp.betainc_regularized)}


def _parse(text: str) -> sp.Expr:
    return sp.sympify(text, locals={**JSON_NAMES, **JSON_FUNCS, "hvp": sp.Function("hvp")})


def _json_form(expr: sp.Expr) -> sp.Expr:
    """An SDE expression as the JSON parser reads it back (plain symbols, hvp undefined)."""
    return plain(expr).replace(lambda e: isinstance(e, hvp), lambda e: sp.Function("hvp")(plain(e.args[0])))


def test_sgd_is_li_tai_e_sme2():
    """Li, Tai, E: dX = -grad(f + (eta/4)|grad f|^2) dt + sqrt(eta) sigma dW, i.e. -g - (eta/2) H g."""
    sde = derive_sde("sgd", order=2)
    assert sp.simplify(sde.drift[0] - (-G - ETA / 2 * hvp(G))) == 0
    assert sde.diffusion == derive_sde("sgd").diffusion
    assert sde.order == 2 and sp.simplify(sde.correction[0] + hvp(G) / 2) == 0


def test_cli_json_sgd(capsys):
    assert main(["sde", "sgd", "--order", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    hvp_ = sp.Function("hvp")
    g, eta = JSON_NAMES["g"], JSON_NAMES["eta"]
    assert sp.simplify(_parse(data["drift"]["x"]) - (-g - eta * hvp_(g) / 2)) == 0
    assert data["order"] == 2 and any("Li, Tai, E" in line for line in data["provenance"])


@pytest.mark.parametrize("name", ["sgd", "signsgd", "rmsprop", "rmspropw", "adam", "adamw"])
def test_every_builtin_is_b0_plus_eta_b1(name):
    """The order-2 SDE keeps the order-1 full form's drift b0 and diffusion and adds eta b1; b1
    has exactly one Hessian-vector product, H applied to the x drift."""
    first, second = derive_sde(name), derive_sde(name, order=2)
    assert second.diffusion == first.diffusion
    for b0, b, b1 in zip(first.drift, second.drift, second.correction):
        assert sp.simplify(b - b0 - ETA * b1) == 0
        assert all(
            sp.simplify(h.args[0] + first.drift[0]) == 0 or sp.simplify(h.args[0] - first.drift[0]) == 0
            for h in b1.atoms(hvp)
        )
    assert len(set().union(*(b.atoms(hvp) for b in second.drift))) == 1


@pytest.mark.parametrize("name", ["adamw", "rmsprop", "signsgd"])
def test_json_round_trip(name, capsys):
    assert main(["sde", name, "--order", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    sde = derive_sde(name, order=2)
    for i, state in enumerate(data["state"]):
        assert sp.simplify(_parse(data["drift"][state]) - _json_form(sde.explicit(sde.drift[i]))) == 0
        assert sp.simplify(_parse(data["correction"][state]) - _json_form(sde.explicit(sde.correction[i]))) == 0


def test_text_and_latex(capsys):
    assert main(["sde", "adam", "--order", "2"]) == 0
    out = capsys.readouterr().out
    assert "| order 2" in out and "hvp(" in out and "hvp(u) = H u" in out
    assert main(["sde", "rmsprop", "--order", "2", "--format", "latex"]) == 0
    assert "\\operatorname{hvp}" in capsys.readouterr().out


def test_adam_c1_holds_the_same_step_momentum_and_the_bias_terms():
    """c1 of x contains the published form's same-step momentum eta rho1 (g - m) and the O(eta)
    parts of the bias powers (explicit t); the correction b1 of m is rho1^2 (g - m)/2 + (rho1/2) H u."""
    sde = derive_sde("adam", order=2)
    b1_m = sde.correction[1]
    u = -sde.drift[0].subs(ETA, 0)
    rho1 = sp.Symbol("rho1", positive=True)
    assert sp.simplify(b1_m - (rho1**2 * (G - sde.state[1]) / 2 + rho1 * hvp(u) / 2)) == 0
    assert sde.correction[0].has(S.t)
    # with rho2 = 0 (v frozen) and the bias corrections gone (gamma -> 1, t -> oo in the explicit
    # t terms, which come multiplied by 1 - gamma), c1 of x is exactly the published same-step term
    c1 = _parse(next(line for line in sde.provenance if line.startswith("c1 of x: "))[len("c1 of x: ") :])
    published = plain(derive_sde("adam", form="published").drift[0]).diff(JSON_NAMES["eta"])
    frozen = {sp.Symbol("rho2"): 0, sp.Symbol("gamma1"): 1, sp.Symbol("gamma2"): 1}
    assert sp.simplify(c1.xreplace(frozen) - published.xreplace(frozen)) == 0


REFUSALS = [
    (["sgd", "--form", "published"], "no published form is order 2"),
    (["adam", "--regime", "noise-dominated"], "paper regime (dt = eta) only"),
    (["signsgd", "--noise", "laplace"], "is not smooth"),
    (["signsgd", "--noise", "uniform"], "is not smooth"),
]


@pytest.mark.parametrize("args,needle", REFUSALS)
def test_refusals_are_one_line(args, needle, capsys):
    assert main(["sde", *args, "--order", "2"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_non_differentiable_drift_is_refused(tmp_path: Path, capsys):
    """A drift with sign(state) (L1 subgradient here; Signum's -sign(m) alike) has no order-2 SDE."""
    spec = tmp_path / "l1.py"
    spec.write_text(
        "from derive import Optimizer\n"
        'l1sgd = Optimizer(name="l1sgd", hyper={"eta": "lr", "c": "const"}, '
        'update=[("x", "x - eta*(grad + c*sign(x))")])\n'
    )
    assert main(["sde", f"{spec}:l1sgd"]) == 0  # order 1 is fine
    capsys.readouterr()
    assert main(["sde", f"{spec}:l1sgd", "--order", "2"]) == 2
    err = capsys.readouterr().err
    assert "not differentiable" in err and "sign(x)" in err


def test_api_refuses_other_orders():
    with pytest.raises(NoOrder2Error, match="order 3"):
        derive_sde("sgd", order=3)


@pytest.mark.parametrize(
    "law,smooth", [("gaussian", True), ("cauchy", True), ("student-t", True), ("laplace", False), ("uniform", False)]
)
def test_smooth_density(law, smooth):
    assert (_smooth_density(get_noise(law)) is not None) == smooth


def test_logistic_cdf_law_is_smooth():
    law = cdf_law("1/(1 + exp(-y))")
    assert _smooth_density(law) is not None
    sde = derive_sde("signsgd", law, order=2)
    assert len(sde.drift[0].atoms(hvp)) == 1


def test_user_spec_with_momentum():
    """EMA heavy ball: b1_x = -rho (g - m)/2 (c1 = -rho (g - m), transport -(1/2)(-1) rho (g - m))."""
    sde = derive_sde("examples/heavy_ball.py:heavy_ball", order=2)
    rho, m = sp.Symbol("rho", positive=True), sde.state[1]
    assert sp.simplify(sde.correction[0] + rho * (G - m) / 2) == 0


def test_curvature_substitution(capsys):
    sde = on_curvature(derive_sde("sgd", order=2), CURVATURE)
    x = sde.state[0]
    assert sp.simplify(sde.drift[0] + CURVATURE * x * (1 + ETA * CURVATURE / 2)) == 0
    assert main(["sde", "sgd", "--order", "2", "--curvature", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sp.simplify(_parse(data["drift"]["x"]) + 2 * JSON_NAMES["x"] * (1 + JSON_NAMES["eta"])) == 0
    assert data["curvature"] == "2"
    assert main(["sde", "rmsprop", "--curvature", "lambda"]) == 0  # order 1 too
    assert "hvp" not in capsys.readouterr().out
    assert main(["sde", "sgd", "--order", "2", "--curvature", "abc"]) == 2
    assert "curvature must be a real number" in capsys.readouterr().err


# -- stationary laws ----------------------------------------------------------------------------
def test_sgd_stationary_variances_and_correction():
    from derive.theory.stationary_order2 import stationary_comparison

    lam = CURVATURE
    r = stationary_comparison("sgd")
    expected = {
        "chain": ETA * SIGMA**2 / (lam * (2 - ETA * lam)),
        "order 1": ETA * SIGMA**2 / (2 * lam),
        "order 2 (order-1 diffusion)": ETA * SIGMA**2 / (lam * (2 + ETA * lam)),
    }
    for name, value in expected.items():
        assert sp.simplify(r.variances[name] - value) == 0, name
    assert sp.simplify(r.stationary[0, 0] - ETA * SIGMA**2 * (1 + ETA * lam)) == 0
    assert sp.simplify(r.relative_error("order 1") + ETA * lam / 2) == 0
    assert sp.simplify(r.relative_error("order 2 (order-1 diffusion)") + ETA * lam) == 0
    assert r.relative_error("order 2 + stationary diffusion") == 0 and r.admissible


def test_stationary_correction_refusals_and_heavy_ball(capsys):
    from derive.theory.stationary_order2 import stationary_comparison

    assert not stationary_comparison("examples/heavy_ball.py:heavy_ball").admissible  # D_xx = 0, D_xm != 0
    assert main(["sde", "rmsprop", "--order", "2", "--diffusion", "stationary"]) == 2
    assert "not linear with additive noise" in capsys.readouterr().err
    assert main(["sde", "sgd", "--diffusion", "stationary"]) == 2
    assert main(["sde", "sgd", "--order", "2", "--diffusion", "stationary", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["variance"]) == {
        "chain",
        "order 1",
        "order 2 (order-1 diffusion)",
        "order 2 + stationary diffusion",
    }


def test_order2_stationary_check_rows():
    """The `derive check` rows: the simulated chain matches the chain's formula and the corrected
    SDE and rejects order 1 and order 2 (4 SE is about 2.4 per cent of the variance at these sizes,
    against gaps of 5 and 9.5 per cent)."""
    from derive.theory.checks import CHECKS, Sim

    rows = CHECKS["order2-stationary"](Sim(paths=8000))
    assert len(rows) == 4 and all(r.ok for r in rows), [(r.name, r.gap_in_se) for r in rows]
    assert [r.expect_equal for r in rows] == [True, False, False, True]


def test_callisti_romito_triggiano_rmsprop():
    """Callisti, Romito, Triggiano (arXiv 2509.21614) derive the order-2 SDE of RMSprop by hand for
    the variant whose x step reads the old v (their code, LucaCallisti/SME_for_Adam_and_RMSProp,
    Algorithms/Balistic_regime_RMSProp.py, ballistic regime = our paper regime with c = rho):
        b_x = -g D - (eta/2) [D (H (g D)) + (c/2) D^3 (g^2 + Sigma - v) g],   D = 1/(sqrt(v) + eps)
        b_v = c (g^2 + Sigma - v) + (eta/2) [2 c g (H (g D)) + c^2 (g^2 + Sigma - v)].
    The engine, given that update rule, reproduces b_v, and b_x at eps = 0; for eps > 0 their x
    term has D^3 where d/dv of -g D gives D^2 / (2 sqrt(v)) (negligible at their eps = 1e-6)."""
    from derive import Optimizer, State

    spec = Optimizer(
        name="rmsprop_old_v",
        hyper={"eta": "lr", "beta": "decay", "eps": "eps"},
        state=[State("v", positive=True)],
        update=[("x", "x - eta*grad/(sqrt(v) + eps)"), ("v", "beta*v + (1 - beta)*grad**2")],
    )
    sde = derive_sde(spec, order=2)
    v = sde.state[1]
    rho, eps = sp.Symbol("rho", positive=True), sp.Symbol("eps", nonnegative=True)
    D = 1 / (sp.sqrt(v) + eps)
    excess = G**2 + SIGMA**2 - v
    theirs_x = -G * D - ETA / 2 * (D * hvp(G * D) + rho / 2 * D**3 * excess * G)
    theirs_v = rho * excess + ETA / 2 * (2 * rho * G * hvp(G * D) + rho**2 * excess)
    assert sp.simplify(sde.drift[1] - theirs_v) == 0
    assert sp.simplify((sde.drift[0] - theirs_x).subs(eps, 0)) == 0
    difference = sp.simplify(sde.drift[0] - theirs_x - ETA * rho * G * excess * D**2 * (D - 1 / sp.sqrt(v)) / 4)
    assert difference == 0
