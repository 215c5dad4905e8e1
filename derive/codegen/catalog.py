"""The built-in combinations rendered into generated/ (listed in docs/generated.md).

Every built-in optimizer under Gaussian noise in every regime and form that has an SDE, plus
SignSGD, whose SDE exists for any symmetric law, under Student-t (nu = 3), Cauchy, Laplace and
uniform noise in the paper regime, full form. Other meaningful combinations (e.g. Adam under
Laplace noise) are generated on demand: ``derive generate adam --noise laplace --out DIR``.
"""
from __future__ import annotations

from ..optimizers import BUILTINS
from ..regimes import FORMS, REGIMES
from ..combination import Combination


def builtin_combinations() -> list[Combination]:
    """The combinations of generated/, in a fixed order."""
    out = []
    for name in BUILTINS:
        for regime in REGIMES:
            if name == "sgd" and regime != "paper":
                continue  # SGD has no noise-dominated limit (derive_sde raises NoLimitError)
            out += [Combination(name, "gaussian", regime, form) for form in FORMS]
    out += [Combination("signsgd", "student-t", "paper", "full", nu=3)]
    out += [Combination("signsgd", law, "paper", "full") for law in ("cauchy", "laplace", "uniform")]
    return out

