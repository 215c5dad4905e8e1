"""derive: SDEs of stochastic optimizers, derived from their update rules.

    >>> from derive import derive_sde
    >>> sde = derive_sde("signsgd", noise="gaussian")
    >>> print(sde.to_text())
"""
from __future__ import annotations

__version__ = "0.1.0"

from .engine import derive_sde
from .errors import DeriveError
from .noise import NoiseLaw, cdf_law, get_noise
from .optimizers import BUILTINS, get_optimizer
from .regimes import FORMS, REGIMES, get_regime
from .sde import SDE
from .spec import Optimizer, State, load_spec

__all__ = [
    "BUILTINS", "DeriveError", "FORMS", "NoiseLaw", "Optimizer", "REGIMES", "SDE", "State",
    "cdf_law", "derive_sde", "get_noise", "get_optimizer", "get_regime", "load_spec", "__version__",
]
