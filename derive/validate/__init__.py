"""Validation of the derived SDEs against the real optimizers (reference section 7).

The quadratic part needs only the generated simulators; the neural-network part needs the
optional ``nn`` extra (PyTorch CPU, scikit-learn for the bundled digits images).
"""

from __future__ import annotations

from ..errors import DeriveError


class ValidationInputError(DeriveError, ValueError):
    """Input a validation experiment cannot accept (sigma <= 0, non-float parameters, ...)."""


class MissingExtraError(DeriveError, ImportError):
    """The neural-network validation needs the ``nn`` extra (PyTorch, scikit-learn)."""


def require_torch():
    """Import torch, or raise :class:`MissingExtraError` with the install line."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            "the neural-network validation needs PyTorch: pip install torch==2.13.0 "
            '(CPU wheel) and pip install -e ".[nn]"'
        ) from exc
    return torch


__all__ = ["ValidationInputError", "MissingExtraError", "require_torch"]
