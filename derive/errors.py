"""Errors raised for input the tool cannot accept.

Every error names the offending value and what is allowed, so that the command line can print
it as one line instead of a traceback.
"""

from __future__ import annotations


class DeriveError(Exception):
    """Base class: a user-facing error with a complete, specific message."""


class UnknownNameError(DeriveError, ValueError):
    """A name (optimizer, noise law, regime, form, format) that is not one of the allowed ones."""

    def __init__(self, kind: str, value: object, allowed: list[str] | tuple[str, ...]):
        self.kind, self.value, self.allowed = kind, value, tuple(allowed)
        super().__init__(f"unknown {kind} {value!r}; allowed: {', '.join(self.allowed)}")


class InfiniteMomentError(DeriveError, ValueError):
    """The SDE needs a moment E[zeta^n] that the noise law does not have."""


class UnsupportedUpdateError(DeriveError, ValueError):
    """An update rule contains a term the derivation engine cannot expand or average."""


class SpecError(DeriveError, ValueError):
    """An optimizer specification (built-in or user file) is malformed or cannot be loaded."""


class NoLimitError(DeriveError, ValueError):
    """The optimizer has no SDE limit in the chosen scaling regime (a term diverges as eta -> 0)."""
