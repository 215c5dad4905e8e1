"""One simulated combination: optimizer, noise law, regime, form (and nu), and its module name.

Deliberately free of SymPy, so that loading a built-in generated module through
:mod:`derive.simulate` does not import the symbolic engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .errors import DeriveError


@dataclass(frozen=True)
class Combination:
    """One optimizer (a built-in name or ``path/to/file.py:NAME``) under one noise law, regime, form."""

    optimizer: str
    noise: str = "gaussian"
    regime: str = "paper"
    form: str = "full"
    nu: object = None
    order: int = 1  #: weak order of the SDE: 1, or 2 (derive.order2: paper regime, full form)

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise DeriveError(f"order must be 1 or 2, got {self.order!r}")
        # one spelling per nu (3, "3" and 3.0 name the same module): integers without a point
        try:
            value = float(self.nu)
        except (TypeError, ValueError):
            return
        if value == value and value not in (float("inf"), float("-inf")):
            object.__setattr__(self, "nu", str(int(value)) if value.is_integer() else repr(value))

    @property
    def optimizer_name(self) -> str:
        """The name part: a built-in's name, or NAME of ``path/to/file.py:NAME``."""
        text = str(self.optimizer)
        return text.rpartition(":")[2] if ".py:" in text else text.lower()

    @property
    def noise_label(self) -> str:
        """The law in a file name: student-t carries nu (``studentt2p5``), a cdf: law a short hash."""
        noise = str(self.noise).strip()
        if noise.lower().startswith("cdf:"):
            return "cdf" + hashlib.sha256(noise[4:].encode()).hexdigest()[:8]
        label = noise.lower()
        return f"{label}{self.nu}" if label == "student-t" else label

    @property
    def module_name(self) -> str:
        """``<optimizer>_<law>_<regime>_<form>``, with ``_order2`` for the order-2 SDE, an identifier
        (the generated module's file stem)."""
        parts = (self.optimizer_name, self.noise_label, self.regime, self.form) + (
            ("order2",) if self.order == 2 else ()
        )
        text = "_".join(parts).replace("-", "").replace(".", "p")
        if not text.isidentifier():
            raise DeriveError(f"cannot name a module for {self}: use an optimizer name and a law that are identifiers")
        return text
