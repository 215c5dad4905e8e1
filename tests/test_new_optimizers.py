"""The optimizers people train with (issue 19; reference sections 11 and 12): fast states, gradients
at another point, noise through the Hessian, step-count coefficients and clocks.

Each SDE comes from the general engine applied to the update rule (``derive_sde``); the tests
compare it with the reference's formulas, written out here, at random points: every symbol set to
a random value (seeded), the Hessian and the gradient field those of a quadratic where they appear
(g = lam x, hvp(u) = lam u, gradf(P) = lam P). Each comparison is also shown to fail on a wrong
formula (the mutants), so it can fail.
"""

from __future__ import annotations

import random
import textwrap

import pytest
import sympy as sp

from derive import derive_sde, load_spec
from derive import engine as E
from derive import symbols as S
from derive.cli import main
from derive.errors import NoLimitError, UnsupportedUpdateError
from derive.order2 import hvp, on_curvature
from derive.points import gradf
from derive.regimes import PAPER
from derive.sde import brownian
from derive.spec import Optimizer, State

g, sigma, eta, t = S.g, S.sigma, S.eta, S.t
x, m, z = (sp.Symbol(n, real=True) for n in "xmz")
v, s_ = sp.Symbol("v", positive=True), sp.Symbol("s", positive=True)
beta, beta1, r, eps = (sp.Symbol(n, positive=True) for n in ("beta", "beta1", "r", "eps"))
tau = sp.Symbol("tau", real=True)
rho2, gamma2 = sp.Symbol("rho2", positive=True), sp.Symbol("gamma2", positive=True)
lam = sp.Symbol("lam", positive=True)


def on_quadratic(expr: sp.Expr) -> sp.Expr:
    """``expr`` with the Hessian and gradient field of f = lam x^2/2: hvp(u) = lam u, gradf(P) = lam P."""
    expr = sp.sympify(expr).replace(lambda e: isinstance(e, hvp), lambda e: lam * e.args[0])
    return expr.replace(lambda e: isinstance(e, gradf), lambda e: lam * e.args[0])


def same(a: sp.Expr, b: sp.Expr, points: int = 6) -> bool:
    """a == b at random points (a fixed EMA factor in (0, 1), positive symbols positive)."""
    a, b = on_quadratic(a), on_quadratic(b)
    rng = random.Random(19)
    names = sorted({s.name for s in (a.free_symbols | b.free_symbols)})
    for _ in range(points):
        values = {
            n: sp.Rational(rng.randint(5, 95), 100) * (1 if rng.random() < 0.5 or n != "g" else -1) for n in names
        }
        va = a.xreplace({s: values[s.name] for s in a.free_symbols})
        vb = b.xreplace({s: values[s.name] for s in b.free_symbols})
        if abs(sp.N(va - vb, 30)) > 1e-12 * (1 + abs(sp.N(vb, 30))):
            return False
    return True


def same_covariance(sde, expected: sp.Matrix) -> bool:
    cov = sde.diffusion * sde.diffusion.T
    return all(same(cov[i, j], expected[i, j]) for i in range(cov.shape[0]) for j in range(cov.shape[1]))


# ---- section 11: fast states ----------------------------------------------------------------------
def test_pytorch_heavy_ball_is_sgd_with_a_larger_step():
    """SGD(momentum=beta, dampening=tau), beta fixed: SGD's SDE with learning rate a eta, a = (1 - tau)/(1 - beta)."""
    sde = derive_sde("sgd_momentum")
    a = (1 - tau) / (1 - beta)
    assert sde.state_names == ("x",) and set(sde.eliminated) == {"m"}
    assert same(sde.drift[0], -a * g)
    assert same_covariance(sde, sp.Matrix([[a**2 * eta * sigma**2]]))
    assert same(sde.state_map["x"], x - eta * beta / (1 - beta) * m)  # u = x - c m, c = eta alpha beta/(1 - beta)
    assert not same(sde.drift[0], -g / (1 - beta))  # mutant: dampening ignored


def test_nesterov_is_sgd_with_step_over_one_minus_beta():
    sde = derive_sde("nesterov")
    assert same(sde.drift[0], -g / (1 - beta))
    assert same_covariance(sde, sp.Matrix([[eta * sigma**2 / (1 - beta) ** 2]]))
    assert same(sde.state_map["x"], x - eta * beta**2 / (1 - beta) * m)  # alpha = beta, gamma = 1
    assert not same(sde.state_map["x"], x - eta * beta / (1 - beta) * m)  # mutant: heavy ball's c


def test_adam_with_beta1_fixed_is_rmsprop_with_v_over_gamma2():
    """Section 11: RMSprop's x-SDE with V replaced by V/gamma2(t); the full (X, V) covariance of section 4."""
    sde = derive_sde("adam_fixed")
    assert sde.state_names == ("x", "v") and set(sde.eliminated) == {"m"}
    p = sp.sqrt(v / gamma2) + eps
    assert same(sde.drift[0], -g / p)
    assert same(sde.drift[1], rho2 * (g**2 + sigma**2 - v))
    expected = eta * sp.Matrix(
        [
            [sigma**2 / p**2, -2 * rho2 * g * sigma**2 / p],
            [-2 * rho2 * g * sigma**2 / p, rho2**2 * (4 * g**2 * sigma**2 + 2 * sigma**4)],
        ]
    )
    assert same_covariance(sde, expected)
    assert sde.time_functions[gamma2] == 1 - sp.exp(-rho2 * t)
    assert not same(sde.drift[0], -g / (sp.sqrt(v) + eps))  # mutant: without the bias correction of v


def test_adam_fixed_noise_dominated_is_rmsprops():
    sde = derive_sde("adam_fixed", regime="noise-dominated")
    p = sp.sqrt(v / gamma2) + eps
    assert same(sde.drift[0], -g / p) and same(sde.drift[1], rho2 * (sigma**2 - v))
    assert same_covariance(sde, sp.Matrix([[eta * sigma**2 / p**2, 0], [0, 0]]))


# ---- section 12: gradients at another point, Hessian noise, 1/t, clocks ----------------------------
def test_usam_drift_and_hessian_noise():
    """dX = -(g + r H g) dt + sqrt(eta) (I + r H) sigma dW: H g in the drift, r H sigma dW one HVP of dW1."""
    sde = derive_sde("usam")
    assert same(sde.drift[0], -g - r * hvp(g)) and sde.drift[0].has(hvp)
    assert same(sde.diffusion[0, 0], sp.sqrt(eta) * sigma)
    noise = sde.hessian_noise
    assert noise.vector == brownian(1) and same(noise.coefficients[0], sp.sqrt(eta) * r * sigma)
    quadratic = on_curvature(sde, lam)  # total diffusion sqrt(eta) (1 + r lam) sigma: exact on the quadratic
    assert same(quadratic.diffusion[0, 0], sp.sqrt(eta) * (1 + r * lam) * sigma)
    assert same(quadratic.drift[0], -lam * x * (1 + r * lam))
    assert not same(quadratic.diffusion[0, 0], sp.sqrt(eta) * sigma)  # mutant: r H dropped from the diffusion


def test_usam_with_an_independent_batch_puts_h_on_another_brownian_motion():
    sde = derive_sde("examples/sam_family.py:usam_two_batches")
    assert sde.noise_sources == 2 and sde.diffusion[0, 1] == 0
    assert sde.hessian_noise.vector in (brownian(2), -brownian(2))
    assert same(sde.hessian_noise.coefficients[0] ** 2, eta * r**2 * sigma**2)


def test_schedulefree_sgd():
    """dZ = -grad f(Y) dt + sqrt(eta) sigma dW, dX = (Z - X)/t dt, Y = (1 - beta) Z + beta X."""
    sde = derive_sde("schedulefree_sgd")
    assert sde.state_names == ("x", "z")
    assert same(sde.drift[0], (z - x) / t)
    assert same(sde.drift[1], -gradf((1 - beta) * z + beta * x)) and sde.drift[1].has(gradf)
    assert same_covariance(sde, sp.Matrix([[0, 0], [0, eta * sigma**2]]))
    assert sde.defined_for == "t > 0" and sde.start.time == 0 and sde.start.reason
    assert sde.initial == {"z": "x"}
    assert not same(sde.drift[1], -gradf(z))  # mutant: gradient at z


def test_adagrad_on_its_clock():
    """t = k eta^2, V = eta^2 s: dX = -(g dt + eta sigma dW)/(sqrt(V) + eta eps), dV = (g^2 + sigma^2) dt + eta dN."""
    sde = derive_sde("adagrad")
    p = sp.sqrt(s_) + eta * eps
    assert sde.clock == S.k * eta**2 and same(sde.state_map["s"], eta**2 * s_)
    assert same(sde.drift[0], -g / p) and same(sde.drift[1], g**2 + sigma**2)
    expected = eta**2 * sp.Matrix(
        [[sigma**2 / p**2, -2 * g * sigma**2 / p], [-2 * g * sigma**2 / p, 4 * g**2 * sigma**2 + 2 * sigma**4]]
    )
    assert same_covariance(sde, expected)
    assert sde.start.time == eta**2 and sde.start.steps == 1  # V(0) = 0: x's noise variance ~ 1/t
    assert not same_covariance(sde, expected.applyfunc(lambda e: e / eta))  # mutant: the k*eta clock's noise


def test_adagrad_from_a_positive_accumulator_starts_at_zero():
    spec = Optimizer(
        name="adagrad_v0",
        hyper={"eta": "lr", "eps": "eps"},
        state=[State("s", init=0.1, positive=True)],
        update=[("s", "s + grad**2"), ("x", "x - eta*grad/(sqrt(s) + eps)")],
    )
    assert derive_sde(spec).start.time == 0


def test_adagrad_noise_dominated_drops_g_squared():
    """Not in the reference: derived here. sigma = sigma0/eta, eps = eps0/eta put AdaGrad on t = k eta^4
    with s = s_0/eta^6 (regime units), which is the paper's clock k eta^2 in the user's units; V loses g^2
    and its noise, as Malladi et al.'s SDEs do."""
    sde = derive_sde("adagrad", regime="noise-dominated")
    p = sp.sqrt(s_) + eta * eps
    assert sde.clock == S.k * eta**2
    assert same(sde.drift[0], -g / p) and same(sde.drift[1], sigma**2)
    assert same_covariance(sde, sp.Matrix([[eta**2 * sigma**2 / p**2, 0], [0, 0]]))


# ---- user specs, as users write them ------------------------------------------------------------
def test_user_heavy_ball_with_dampening():
    sde = derive_sde("examples/pytorch_momentum.py:damped_heavy_ball")
    assert same(sde.drift[0], -g * sp.Rational(1, 2) / (1 - beta))


def test_user_lookahead_gradient_is_nesterov_at_order_one():
    user, builtin = derive_sde("examples/pytorch_momentum.py:lookahead_momentum"), derive_sde("nesterov")
    assert same(user.drift[0], builtin.drift[0]) and same(user.diffusion[0, 0], builtin.diffusion[0, 0])


def test_user_usam_equals_builtin():
    user, builtin = derive_sde("examples/sam_family.py:usam_user"), derive_sde("usam")
    assert user.drift == builtin.drift and user.hessian_noise == builtin.hessian_noise


def test_nested_gradients_at_nearby_points_keep_order_one():
    """grad(x + r*grad(x + r*grad)) adds only r**2 terms (order eta with r = r0 sqrt(eta)): USAM's SDE."""
    nested = Optimizer(
        name="nested", hyper={"eta": "lr", "r": "radius"}, update=[("x", "x - eta*grad(x + r*grad(x + r*grad))")]
    )
    sde, usam = derive_sde(nested), derive_sde("usam")
    assert sde.drift == usam.drift and sde.hessian_noise == usam.hessian_noise


def test_two_fast_states_refuse_the_nonlinear_one_by_name():
    both = Optimizer(
        name="adam_both_fixed",
        hyper={"eta": "lr", "beta1": "fixed_decay", "beta2": "fixed_decay", "eps": "eps"},
        state=[State("m"), State("v", positive=True)],
        update=[
            ("m", "beta1*m + (1 - beta1)*grad"),
            ("v", "beta2*v + (1 - beta2)*grad**2"),
            ("x", "x - eta*m/(sqrt(v) + eps)"),
        ],
    )
    with pytest.raises(UnsupportedUpdateError, match=r"sqrt\(v\) is a nonlinear function of the fast state v"):
        derive_sde(both)


def test_leading_order_reads_powers_at_random_points():
    from derive.fast import leading_order

    a = sp.Symbol("a", positive=True)
    assert leading_order(eta**2 * (a + 1) + eta**3) == 2
    assert leading_order(sp.sqrt(a + eta * g**2) - sp.sqrt(a)) == 1
    assert leading_order((sp.sqrt(a) + eta) ** 2 - a - 2 * eta * sp.sqrt(a) - eta**2) is None  # zero as an expression
    assert leading_order(eta / (eta + t)) == 1 and leading_order(sp.sqrt(eta) * g) == sp.Rational(1, 2)


# ---- stages -------------------------------------------------------------------------------------
def test_at_points_expands_small_displacements_and_keeps_far_points():
    spec = Optimizer(
        name="case",
        hyper={"eta": "lr", "r": "radius", "b": "const"},
        state=[State("z")],
        update=[("z", "z - eta*grad(b*z + (1 - b)*x)"), ("x", "x - eta*grad(x + r*grad)")],
    )
    out = E.at_points(E.one_step(E.Update(spec, PAPER)))
    b = sp.Symbol("b", real=True)
    assert sp.expand(out.new["x"] - (x - eta * (S.grad + hvp(r * S.grad)))) == 0
    assert sp.expand(out.new["z"] - (z - eta * (S.grad - g + gradf(b * z + (1 - b) * x)))) == 0


def test_clock_follows_the_update_rule():
    assert E.clocked(load_spec("examples/heavy_ball.py:heavy_ball"), PAPER) is PAPER
    reg = E.clocked(derive_sde.__globals__["get_optimizer"]("adagrad"), PAPER)
    assert (reg.dt, reg.clock, reg.accumulators, reg.eps) == (2, 2, (("s", 2, 2),), 1)


def test_json_has_clock_and_parses():
    names = {n: sp.Symbol(n) for n in "x z v s g sigma eta rho2 eps beta r t k dW1 gamma2".split()}
    functions = {"gradf": gradf, "hvp": hvp, "sqrt": sp.sqrt, "exp": sp.exp}
    assert derive_sde("sgd").to_dict()["clock"] == "k*eta"
    assert derive_sde("adagrad").to_dict()["clock"] == "k*eta**2"
    usam, sf = derive_sde("usam").to_dict(), derive_sde("schedulefree_sgd").to_dict()
    for text in (usam["drift"]["x"], usam["hessian_noise"]["vector"], usam["hessian_noise"]["coefficients"]["x"]):
        sp.sympify(text, locals={**names, **functions})
    assert sp.sympify(sf["drift"]["z"], locals={**names, **functions}).has(gradf)
    assert "clock t = k*eta**2" in derive_sde("adagrad").to_text().splitlines()[0]


# ---- refusals, one line each (CLI, exit 2) --------------------------------------------------------
SPEC_FILE = textwrap.dedent(
    """
    from derive import Optimizer, State

    signum_fixed = Optimizer(
        name="signum_fixed", hyper={"eta": "lr", "beta": "fixed_decay"}, state=[State("m")],
        update=[("m", "beta*m + (1 - beta)*grad"), ("x", "x - eta*sign(m)")],
    )
    sam_fixed_radius = Optimizer(
        name="sam_fixed_radius", hyper={"eta": "lr", "r": "const"}, update=[("x", "x - eta*grad(x + r*grad)")]
    )
    """
)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["SPEC:signum_fixed"], "sign(m) is a nonlinear function of the fast state m"),
        (["examples/sam_family.py:sam_normalised"], "norm(grad) is the Euclidean norm over all coordinates"),
        (["SPEC:sam_fixed_radius"], "depends on the noise; the gradient at a random point"),
        (["usam", "--regime", "noise-dominated"], "is of order eta^0 and depends on the noise"),
        (["sgd_momentum", "--regime", "noise-dominated"], "has no SDE: the fast state m is of order eta^-1"),
        (["schedulefree_sgd", "--regime", "noise-dominated"], "E[Delta z]/dt is of order eta^-1"),
        (["adagrad", "--order", "2"], "its order-1 SDE has the clock t = k*eta**2"),
    ],
)
def test_refusals_are_one_line(args, needle, tmp_path, capsys):
    spec = tmp_path / "specs.py"
    spec.write_text(SPEC_FILE)
    args = [a.replace("SPEC", str(spec)) for a in args]
    assert main(["sde", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_refusal_errors_are_typed():
    with pytest.raises(NoLimitError):
        derive_sde("nesterov", regime="noise-dominated")
    with pytest.raises(UnsupportedUpdateError):
        derive_sde("examples/sam_family.py:sam_normalised")
