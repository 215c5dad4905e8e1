"""Specs as update rules, user spec files, and the errors for bad input."""

from __future__ import annotations

import textwrap

import pytest
import sympy as sp

from derive import DeriveError, Optimizer, State, derive_sde, load_spec
from derive import symbols as S
from derive.errors import InfiniteMomentError, NoLimitError, SpecError, UnknownNameError, UnsupportedUpdateError
from tests.conftest import identical

EXAMPLE = "examples/heavy_ball.py:heavy_ball"


def test_user_spec_file_heavy_ball():
    sde = derive_sde(EXAMPLE)
    m, rho = sp.Symbol("m", real=True), sp.Symbol("rho", positive=True)
    assert sde.state_names == ("x", "m")
    assert sde.drift[0] == -m
    assert identical(sde.drift[1], rho * (S.g - m))
    assert identical(sde.covariance()[1, 1], S.eta * rho**2 * S.sigma**2)
    published = derive_sde(EXAMPLE, form="published")  # the same-step momentum kept
    assert identical(published.drift[0], -(m + S.eta * rho * (S.g - m)))


def test_later_assignments_see_new_values():
    spec = load_spec(EXAMPLE)
    step = spec.step_map()
    assert sp.expand(step["x"] - (step["m"] * -S.eta + sp.Symbol("x", real=True))) == 0


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (
            dict(optimizer="lamb"),
            "unknown optimizer 'lamb'; allowed: sgd, signsgd, rmsprop, rmspropw, adam, adamw, lion, signum, clipsgd, sgdm, "
            "sgd_momentum, nesterov, adam_fixed, usam, schedulefree_sgd, adagrad",
        ),
        (dict(optimizer="sgd", noise="poisson"), "unknown noise law 'poisson'"),
        (dict(optimizer="sgd", regime="fast"), "unknown regime 'fast'; allowed: paper, noise-dominated"),
        (dict(optimizer="sgd", form="short"), "unknown form 'short'; allowed: full, published"),
    ],
)
def test_unknown_names(kwargs, needle):
    with pytest.raises(UnknownNameError) as info:
        derive_sde(**kwargs)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "opt,law,nu,form,order",
    [
        ("rmsprop", "cauchy", None, "full", 2),
        ("adamw", "cauchy", None, "published", 2),
        ("adam", "student-t", 2, "published", 2),
        ("rmspropw", "student-t", "3/2", "full", 2),
        ("adam", "student-t", 3, "full", 4),
        ("rmsprop", "student-t", 4, "full", 4),
        ("sgd", "cauchy", None, "full", 2),
    ],
)
def test_infinite_moment(opt, law, nu, form, order):
    with pytest.raises(InfiniteMomentError) as info:
        derive_sde(opt, law, form=form, nu=nu)
    assert f"E[zeta^{order}], which is infinite" in str(info.value)


def test_published_needs_only_second_moment():
    sde = derive_sde("adam", "student-t", form="published", nu=3)
    assert sde.noise_sources == 1


def test_no_limit_in_regime():
    with pytest.raises(NoLimitError, match="sgd.*no SDE limit in the noise-dominated regime"):
        derive_sde("sgd", regime="noise-dominated")


def _spec(update, **kw):
    return Optimizer(name="user", hyper=kw.pop("hyper", {"eta": "lr"}), update=update, **kw)


@pytest.mark.parametrize(
    "update,needle,kw",
    [
        (
            [("x", "x - eta*exp(grad)")],
            "exp(sigma*zeta) is not polynomial in the noise (the factor -exp(g + sigma*zeta))",
            {},
        ),
        ([("x", "x - eta*sign(grad**2 - 1)")], "a piecewise function of a non-affine function of the noise zeta", {}),
        ([("x", "x - eta*grad/sqrt(k)")], "step count k appears outside a power beta**k", {}),
        (
            [("x", "x - eta*sign(grad_1 + grad_2)")],
            "a piecewise function of several noise draws together (zeta_1, zeta_2)",
            {},
        ),
        (
            [("x", "x - eta*sign(a*grad)")],
            "the sign of the noise coefficient a*sigma is unknown",
            {"hyper": {"eta": "lr", "a": "const"}},
        ),
        (
            [("v", "beta*v + (1 - beta)*grad**2"), ("vhat", "Max(vhat, v)"), ("x", "x - eta*grad/sqrt(vhat)")],
            "Max(vhat, ...) takes the running maximum of the state vhat and a noisy update (as AMSGrad's vhat = max(vhat, v))",
            {
                "hyper": {"eta": "lr", "beta": "decay"},
                "state": [State("v", positive=True), State("vhat", positive=True)],
            },
        ),
    ],
)
def test_unsupported_terms_are_named(update, needle, kw):
    with pytest.raises(UnsupportedUpdateError) as info:
        derive_sde(_spec(update, **kw))
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("x - eta*grad(x, x)", "grad(...) takes one argument, the point P, got 2"),
        ("x - eta*grad_1(x, grad)", "grad_1(...) takes one argument, the point P, got 2"),
    ],
)
def test_gradient_at_another_point_takes_one_point(text, needle):
    with pytest.raises(SpecError) as info:
        _spec([("x", text)])
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "update,hyper,state,drift_x",
    [
        # x - eta*grad*sign(grad) = x - eta*|grad|: E|g + sigma zeta| = g s(g/sigma) + 2 sigma phi(g/sigma) (Gaussian)
        (
            [("x", "x - eta*grad*sign(grad)")],
            {"eta": "lr"},
            [],
            -(
                S.g * sp.erf(S.g / (sp.sqrt(2) * S.sigma))
                + S.sigma * sp.sqrt(2 / sp.pi) * sp.exp(-(S.g**2) / (2 * S.sigma**2))
            ),
        ),
        (
            [("x", "x - eta*Abs(grad)")],
            {"eta": "lr"},
            [],
            -(
                S.g * sp.erf(S.g / (sp.sqrt(2) * S.sigma))
                + S.sigma * sp.sqrt(2 / sp.pi) * sp.exp(-(S.g**2) / (2 * S.sigma**2))
            ),
        ),
        # Signum: the sign of m + O(eta) noise tends to sign(m)
        (
            [("m", "beta*m + (1 - beta)*grad"), ("x", "x - eta*sign(m)")],
            {"eta": "lr", "beta": "decay"},
            [State("m")],
            -sp.sign(sp.Symbol("m", real=True)),
        ),
    ],
)
def test_piecewise_updates_derive(update, hyper, state, drift_x):
    sde = derive_sde(_spec(update, hyper=hyper, state=state))
    assert identical(sde.drift[0], drift_x), sde.drift[0]


def test_signum_has_no_noise_dominated_limit():
    signum = _spec(
        [("m", "beta*m + (1 - beta)*grad"), ("x", "x - eta*sign(m)")],
        hyper={"eta": "lr", "beta": "decay"},
        state=[State("m")],
    )
    with pytest.raises(NoLimitError, match="E\\[Delta x\\]/dt is of order eta\\^-1"):
        derive_sde(signum, regime="noise-dominated")


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (
            dict(hyper={"eta": "lr"}, update=[("x", "x - eta*gradd")]),
            "unknown name(s) gradd; allowed: the states x, grad, grad_1, ..., xi, xi_1, ..., k",
        ),
        (dict(hyper={"eta": "lr"}, update=[("y", "x - eta*grad")]), "never assigns the parameter 'x'"),
        (
            dict(hyper={"eta": "speed"}, update=[("x", "x - eta*grad")]),
            "role 'speed'; allowed roles: lr, decay, fixed_decay",
        ),
        (dict(hyper={"a": "const"}, update=[("x", "x - a*grad")]), "exactly one hyperparameter with role 'lr'"),
        (dict(hyper={"eta": "lr"}, update=[("x", "x - eta*(grad")]), "cannot parse the expression"),
        (
            dict(hyper={"eta": "lr"}, state=[State("m")], update=[("x", "x - eta*grad")]),
            "state 'm' is declared but never updated",
        ),
        (dict(hyper={"sigma": "lr"}, update=[("x", "x - sigma*grad")]), "hyperparameter name 'sigma' is reserved"),
    ],
)
def test_bad_specs(kwargs, needle):
    with pytest.raises(SpecError) as info:
        Optimizer(name="bad", **kwargs)
    assert needle in str(info.value)


def test_user_file_errors(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        derive_sde(str(tmp_path / "missing.py") + ":opt")
    good = tmp_path / "opts.py"
    good.write_text(
        textwrap.dedent("""
        from derive import Optimizer
        mine = Optimizer(name="mine", hyper={"eta": "lr"}, update=[("x", "x - eta*grad")])
        number = 3
    """)
    )
    assert derive_sde(f"{good}:mine").drift == (-S.g,)
    with pytest.raises(SpecError, match="does not define 'other'; it defines the optimizers: mine"):
        derive_sde(f"{good}:other")
    with pytest.raises(SpecError, match="'number' .* is a int, not a derive.Optimizer"):
        derive_sde(f"{good}:number")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(SpecError, match="failed to run: RuntimeError: boom"):
        derive_sde(f"{broken}:x")


def test_errors_are_derive_errors():
    assert issubclass(UnsupportedUpdateError, DeriveError) and issubclass(SpecError, DeriveError)
