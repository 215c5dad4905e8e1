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


@pytest.mark.parametrize("kwargs,needle", [
    (dict(optimizer="lion"), "unknown optimizer 'lion'; allowed: sgd, signsgd, rmsprop, rmspropw, adam, adamw"),
    (dict(optimizer="sgd", noise="poisson"), "unknown noise law 'poisson'"),
    (dict(optimizer="sgd", regime="fast"), "unknown regime 'fast'; allowed: paper, noise-dominated"),
    (dict(optimizer="sgd", form="short"), "unknown form 'short'; allowed: full, published"),
])
def test_unknown_names(kwargs, needle):
    with pytest.raises(UnknownNameError) as info:
        derive_sde(**kwargs)
    assert needle in str(info.value)


@pytest.mark.parametrize("opt,law,nu,form,order", [
    ("rmsprop", "cauchy", None, "full", 2), ("adamw", "cauchy", None, "published", 2),
    ("adam", "student-t", 2, "published", 2), ("rmspropw", "student-t", "3/2", "full", 2),
    ("adam", "student-t", 3, "full", 4), ("rmsprop", "student-t", 4, "full", 4),
    ("sgd", "cauchy", None, "full", 2),
])
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


@pytest.mark.parametrize("update,needle", [
    ([("x", "x - eta*Abs(grad)")], "Abs(g + sigma*zeta) is not polynomial in the noise zeta"),
    ([("x", "x - eta*sign(grad**2 - 1)")], "sign of a non-affine function of the noise"),
    ([("x", "x - eta*grad*sign(grad)")], "needs E[zeta^1 sign(...)], a partial moment"),
    ([("x", "x - eta*grad/sqrt(k)")], "step count k appears outside a power beta**k"),
])
def test_unsupported_terms_are_named(update, needle):
    with pytest.raises(UnsupportedUpdateError) as info:
        derive_sde(_spec(update))
    assert needle in str(info.value)


def test_sign_of_momentum_has_no_expansion():
    signum = _spec([("m", "beta*m + (1 - beta)*grad"), ("x", "x - eta*sign(m)")],
                   hyper={"eta": "lr", "beta": "decay"}, state=[State("m")])
    with pytest.raises(UnsupportedUpdateError, match="has no expansion in eta"):
        derive_sde(signum)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(hyper={"eta": "lr"}, update=[("x", "x - eta*gradd")]), "unknown name(s) gradd; allowed: the states x, grad, k"),
    (dict(hyper={"eta": "lr"}, update=[("y", "x - eta*grad")]), "never assigns the parameter 'x'"),
    (dict(hyper={"eta": "speed"}, update=[("x", "x - eta*grad")]), "role 'speed'; allowed roles: lr, decay"),
    (dict(hyper={"a": "const"}, update=[("x", "x - a*grad")]), "exactly one hyperparameter with role 'lr'"),
    (dict(hyper={"eta": "lr"}, update=[("x", "x - eta*(grad")]), "cannot parse the expression"),
    (dict(hyper={"eta": "lr"}, state=[State("m")], update=[("x", "x - eta*grad")]), "state 'm' is declared but never updated"),
    (dict(hyper={"sigma": "lr"}, update=[("x", "x - sigma*grad")]), "hyperparameter name 'sigma' is reserved"),
])
def test_bad_specs(kwargs, needle):
    with pytest.raises(SpecError) as info:
        Optimizer(name="bad", **kwargs)
    assert needle in str(info.value)


def test_user_file_errors(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        derive_sde(str(tmp_path / "missing.py") + ":opt")
    good = tmp_path / "opts.py"
    good.write_text(textwrap.dedent("""
        from derive import Optimizer
        mine = Optimizer(name="mine", hyper={"eta": "lr"}, update=[("x", "x - eta*grad")])
        number = 3
    """))
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
