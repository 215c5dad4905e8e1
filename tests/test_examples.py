"""The user examples derive as their docstrings say, and match the built-ins or published forms."""

from __future__ import annotations

import pytest
import sympy as sp

from derive import derive_sde, load_spec
from derive import symbols as S
from tests.conftest import identical

g, sigma, eta = S.g, S.sigma, S.eta
m = sp.Symbol("m", real=True)
s_ = sp.Symbol("s", positive=True)
rho1, rho2 = sp.Symbol("rho1", positive=True), sp.Symbol("rho2", positive=True)


@pytest.mark.parametrize("law,nu", [("gaussian", None), ("student-t", 3), ("laplace", None), ("cauchy", None)])
def test_distributed_signsgd_is_signsgd_with_variance_over_n(law, nu):
    """Mean of 4 independent signs: SignSGD's drift, SignSGD's variance / 4."""
    dist = derive_sde("examples/distributed_signsgd.py:signsgd_4workers", law, nu=nu)
    single = derive_sde("signsgd", law, nu=nu)
    assert identical(dist.drift[0], single.drift[0])
    assert identical(dist.covariance()[0, 0], single.covariance()[0, 0] / 4)


def test_distributed_signsgd_noise_dominated():
    dist = derive_sde("examples/distributed_signsgd.py:signsgd_4workers", regime="noise-dominated")
    assert identical(dist.drift[0], -sp.sqrt(2 / sp.pi) * g / sigma)
    assert identical(dist.diffusion[0, 0], sp.sqrt(eta) / 2)


def test_lion_user_equals_builtin():
    user, builtin = derive_sde("examples/lion_user.py:lion_user"), derive_sde("lion")
    for a, b in zip((*user.drift, *user.diffusion), (*builtin.drift, *builtin.diffusion)):
        assert sp.simplify(a - b) == 0


def test_adabelief_second_moment_tracks_the_belief():
    sde = derive_sde("examples/adabelief.py:adabelief")
    assert sde.state_names == ("x", "m", "s")
    assert identical(sde.drift_of("s"), rho2 * ((g - m) ** 2 + sigma**2 - s_))
    assert identical(sde.drift_of("m"), rho1 * (g - m))
    # Cov(dm, ds) = eta rho1 rho2 E[sigma zeta ((g - m + sigma zeta)^2)] = 2 eta rho1 rho2 sigma^2 (g - m)
    assert identical(sde.covariance()[1, 2], 2 * eta * rho1 * rho2 * sigma**2 * (g - m))


def test_examples_load_and_name_their_commands():
    for ref in (
        "examples/distributed_signsgd.py:signsgd_4workers",
        "examples/adabelief.py:adabelief",
        "examples/lion_user.py:lion_user",
        "examples/sam_family.py:usam_user",
        "examples/adagrad_schedulefree.py:adagrad_warm",
        "examples/adagrad_schedulefree.py:schedulefree_sgd_user",
    ):
        spec = load_spec(ref)
        path, _, name = ref.partition(":")
        text = open(path).read()
        assert f"derive sde {ref}" in text and f"derive simulate {ref}" in text, (spec.name, name)


def test_adamw_with_beta1_fixed_is_adam_fixed_with_decoupled_weight_decay():
    """Section 11: the user's AdamW (PyTorch names, beta1 fixed) is the built-in adam_fixed's SDE (RMSprop's
    x-SDE with v/gamma2) plus -weight_decay*x in the x drift; its x stands for x - c*m."""
    user, builtin = derive_sde("examples/adamw_beta1_fixed.py:adamw_beta1_fixed"), derive_sde("adam_fixed")
    x = sp.Symbol("x", real=True)
    wd = next(s for s in user.drift[0].free_symbols if s.name == "weight_decay")
    assert set(user.eliminated) == {"m"} and user.state_names == builtin.state_names == ("x", "v")
    assert identical(user.drift[0] + wd * x, builtin.drift[0]) and identical(user.drift[1], builtin.drift[1])
    assert all(identical(a, b) for a, b in zip(user.diffusion, builtin.diffusion, strict=True))
    assert not identical(user.drift[0], builtin.drift[0])  # the weight decay is there
    text = open("examples/adamw_beta1_fixed.py").read()
    assert "derive sde examples/adamw_beta1_fixed.py:adamw_beta1_fixed" in text
