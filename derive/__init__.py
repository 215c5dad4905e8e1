"""derive: SDEs of stochastic optimizers, derived from their update rules.

    >>> from derive import derive_sde
    >>> sde = derive_sde("signsgd", noise="gaussian")
    >>> print(sde.to_text())

The public names are imported on first use (PEP 562), so that loading a generated simulator
through :mod:`derive.simulate` does not import SymPy.
"""

from __future__ import annotations

import importlib
from importlib import metadata

try:
    __version__ = metadata.version("derive-sde")  #: the installed distribution's version (pyproject.toml)
except metadata.PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

_EXPORTS = {
    "derive_sde": "engine",
    "DeriveError": "errors",
    "NoiseLaw": "noise",
    "cdf_law": "noise",
    "get_noise": "noise",
    "BUILTINS": "optimizers",
    "get_optimizer": "optimizers",
    "FORMS": "regimes",
    "REGIMES": "regimes",
    "get_regime": "regimes",
    "SDE": "sde",
    "Optimizer": "spec",
    "State": "spec",
    "load_spec": "spec",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'derive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
