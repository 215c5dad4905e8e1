"""The integration schemes of the generated SDE simulators, as code that runs them needs them (no
SymPy; the maths of one step: :mod:`derive.codegen.schemes`), and the boundary rules.

A :class:`Scheme` says how one optimizer step of the SDE is integrated and how the runs combine:

* ``euler``: split-step Euler-Maruyama, weak order 1: one run of r substeps of eta/r;
* ``weak2``: its Talay-Tubaro extrapolation, weak order 2: a fine run of 2r substeps of eta/2r and
  a coarse run of r substeps of eta/r on the pairwise sums of the fine run's normals over sqrt 2
  (one Brownian path), combined as 2 E phi(fine) - E phi(coarse) (per path for any phi, so the
  extrapolated mean comes with a standard error).

Positive states (v) after each step: v' = max(v', B v') with B = -1 (``reflect``, |v'|) or B = 0
(``floor``, an absorbing floor at 0); the kernels read B from the parameter ``_boundary``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scheme:
    """An integrator: ``fine`` substeps of the first run per requested substep, whether a ``coarse``
    run (the requested substeps, on the pairwise sums of the fine normals) runs beside it, and how
    per-run values combine into the estimate of E phi."""

    name: str
    weak_order: int
    fine: int
    coarse: bool

    @property
    def runs(self) -> int:
        """Runs per path: 1, or 2 (fine, coarse)."""
        return 2 if self.coarse else 1

    def substeps(self, substeps: int) -> tuple[int, ...]:
        """Substeps per optimizer step of each run, for ``substeps`` requested."""
        return (self.fine * substeps, substeps) if self.coarse else (self.fine * substeps,)

    def combine(self, fine, coarse=None):
        """The scheme's estimate from per-run values (expectations, per-path values of phi, moments
        or sums): ``fine`` alone, or Talay-Tubaro's 2 fine - coarse."""
        if not self.coarse:
            return fine
        return 2 * fine - coarse


SCHEMES = {s.name: s for s in (Scheme("euler", 1, 1, False), Scheme("weak2", 2, 2, True))}
BOUNDARIES = {"reflect": -1.0, "floor": 0.0}
