"""`derive check`: every closed-form result, derived symbolically and confirmed by simulating the
discrete optimizers with the generated simulators (or, for SDE laws, a fine-step NumPy integrator).

Each check compares a symbolic prediction (derived by derive.theory from the SDE) with a Monte
Carlo estimate and its standard error, and prints the row's resolution (the smallest relative gap
it could detect at 4 SE); see :mod:`derive.theory.rows`. The discrete optimizers differ from the
order-1 SDEs by O(eta): the stationary checks use steps small enough that this bias is below the
printed resolution, ``signsgd-exact`` shows the bias at eta lambda / sigma = 0.5, 0.1, 0.02, and
the rows of the newer built-ins (``lion``, ``signum``, ``clipsgd``, ``sgdm``, ``signsgd_workers``,
from :mod:`derive.theory.checks_optimizers`) measure it at two step sizes. ``order2-stationary``
(:mod:`derive.theory.checks_order2`) compares SGD's stationary law with the order-1 and order-2
SDEs' and the chain's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from .checks_heavy import check_heavy_tails, check_sgd_cauchy
from .checks_optimizers import NEW_CHECKS
from .checks_order2 import ORDER2_CHECKS
from .checks_scaling import check_scaling
from .checks_signsgd import check_signsgd, check_signsgd_exact, check_signsgd_speed
from .checks_stationary import check_adam_laws, check_adamw, check_rmspropw, check_sgd, check_sgd_full_matrix
from .montecarlo import stationary_loss  # re-exported: tests and callers import it from here
from .rows import Row, Sim, summary, table, to_dict

__all__ = ["CHECKS", "Row", "Sim", "run_checks", "stationary_loss", "summary", "table", "to_dict"]

#: the mutant of each order-2 row that must agree: the nearest wrong law of the same table
_ORDER2_MUTANTS = {"chain": "order 1", "order 2 + stationary diffusion": "order 2 (order-1 diffusion)"}


def check_order2(sim: Sim) -> list[Row]:
    """:func:`derive.theory.checks_order2.check_order2_stationary`, each row that must agree given as
    its mutant the prediction of the nearest wrong law of the same table (order 1 for the chain's
    formula, order 2 without the stationary diffusion for the corrected SDE)."""
    rows = ORDER2_CHECKS["order2-stationary"](sim)
    by_law = {r.name.rsplit(", ", 1)[1]: r for r in rows}
    for law, wrong in _ORDER2_MUTANTS.items():
        if law in by_law and wrong in by_law:
            by_law[law].mutants[f"the {wrong} law"] = by_law[wrong].predicted
    return rows


CHECKS: dict[str, Callable[[Sim], list[Row]]] = {
    "sgd": check_sgd,
    "sgd-full-h": check_sgd_full_matrix,
    "signsgd": check_signsgd,
    "signsgd-exact": check_signsgd_exact,
    "sgd-cauchy": check_sgd_cauchy,
    "signsgd-speed": check_signsgd_speed,
    "rmspropw": check_rmspropw,
    "adamw": check_adamw,
    "adam-laws": check_adam_laws,
    "scaling": check_scaling,
    "heavy-tails": check_heavy_tails,
    **NEW_CHECKS,
    "order2-stationary": check_order2,
}


def run_checks(names: list[str] | None = None, sim: Sim | None = None, progress=sys.stderr) -> list[Row]:
    """Run the named checks (all by default) and return their rows."""
    sim = sim or Sim()
    rows: list[Row] = []
    for name in names or list(CHECKS):
        t0 = time.perf_counter()
        new = CHECKS[name](sim)
        rows += new
        if progress is not None:
            bad = sum(not r.ok for r in new)
            print(
                f"[check] {name}: {len(new)} rows, {bad} failed, {time.perf_counter() - t0:.1f} s",
                file=progress,
                flush=True,
            )
    return rows
