"""The built-in combinations rendered into generated/ (listed in docs/generated.md).

Every built-in optimizer under Gaussian noise in every regime and form that has an SDE (SGD,
Signum, SGDM, PyTorch momentum and Nesterov have no noise-dominated limit: their drift diverges
like 1/eta there; USAM's radius r*grad is of order 1 there, a random O(1) point: see
:data:`NO_NOISE_DOMINATED`), plus SignSGD, whose SDE exists for any symmetric law, under Student-t
(nu = 3 and the real nu = 2.5), Cauchy, Laplace and uniform noise, and clipped SGD under Cauchy
noise (the law clipping is for), in the paper regime, full form, and the order-2 SDE (paper regime,
full form, Gaussian noise) of every built-in that has one (not Signum: its drift -sign(m) is not
differentiable; not the built-ins with a fast state eliminated; not USAM: its order-1 SDE already has
noise through the Hessian; not AdaGrad: its clock is k*eta**2; not schedule-free SGD: a 1/t
coefficient and a gradient at another point, see :data:`NO_ORDER2`). Other meaningful combinations
(e.g. Adam under Laplace noise) are generated on demand: ``derive generate adam --noise laplace --out DIR``.
"""

from __future__ import annotations

from ..combination import Combination
from ..optimizers import BUILTINS
from ..regimes import FORMS, REGIMES

#: built-ins without a noise-dominated SDE (derive_sde raises NoLimitError: the drift diverges like 1/eta;
#: PyTorch momentum and Nesterov: their fast state m is O(1/eta) there, so x - c*m is not x + o(1);
#: usam: UnsupportedUpdateError, its gradient is taken at a random O(1) point)
NO_NOISE_DOMINATED = ("sgd", "signum", "sgdm", "sgd_momentum", "nesterov", "usam", "schedulefree_sgd")
#: built-ins without an order-2 SDE under Gaussian noise (derive_sde(..., order=2) raises NoOrder2Error;
#: a fast state eliminated: the order-2 expansion does not cover it)
NO_ORDER2 = ("signum", "sgd_momentum", "nesterov", "adam_fixed", "usam", "adagrad", "schedulefree_sgd")


def builtin_combinations() -> list[Combination]:
    """The combinations of generated/, in a fixed order."""
    out = []
    for name in BUILTINS:
        for regime in REGIMES:
            if name in NO_NOISE_DOMINATED and regime != "paper":
                continue
            out += [Combination(name, "gaussian", regime, form) for form in FORMS]
    out += [Combination("signsgd", "student-t", "paper", "full", nu=nu) for nu in (3, 2.5)]
    out += [Combination("signsgd", law, "paper", "full") for law in ("cauchy", "laplace", "uniform")]
    out += [Combination("clipsgd", "cauchy", "paper", "full")]
    out += [Combination(name, "gaussian", "paper", "full", order=2) for name in BUILTINS if name not in NO_ORDER2]
    return out
