"""`derive check`: every closed-form result, derived symbolically and confirmed by simulating the
discrete optimizers with the generated simulators (or, for SDE laws, a fine-step NumPy integrator).

Each check compares a symbolic prediction (derived by derive.theory from the SDE) with a Monte
Carlo estimate and its standard error, and prints the row's resolution (the smallest relative gap
it could detect at 4 SE); see :mod:`derive.theory.rows`. The checks are the entries of one table,
:data:`derive.theory.check_table.TABLE` (the cases, and the one-off functions that do not fit a
case), grouped by name into :data:`CHECKS`. The discrete optimizers differ from the order-1 SDEs by
O(eta): the stationary checks use steps small enough that this bias is below the printed
resolution, ``signsgd-exact`` shows the bias at eta lambda / sigma = 0.5, 0.1, 0.02, the rows of
the newer built-ins (``lion``, ``signum``, ``clipsgd``, ``sgdm``, ``signsgd_workers``) measure it
at two step sizes, ``order2-stationary`` compares SGD's stationary law with the order-1 and
order-2 SDEs' and the chain's, and ``correlated`` checks the stationary covariance under noise
correlated across coordinates (:mod:`derive.theory.checks_correlated`).

Running: :func:`check_tasks` turns the selected checks into independent :class:`Task` s (one per
case or one-off function), :func:`run_task` runs one and returns its rows (a pure function of the
task: the seeds come from the cases, so any executor, serial, in processes or on a cluster, gives
the same numbers), and :func:`run_checks` runs them in order, printing each task's wall time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from .cases import FiniteHorizonCase, OneOff, SdeGapCase, StationaryCase
from .check_table import TABLE
from .checks_correlated import CorrelatedCase
from .montecarlo import stationary_loss  # re-exported: tests and callers import it from here
from .rows import Row, Sim, summary, table, to_dict

__all__ = [
    "CHECKS",
    "Check",
    "Row",
    "Sim",
    "Task",
    "check_tasks",
    "registry",
    "run_checks",
    "run_task",
    "stationary_loss",
    "summary",
    "table",
    "to_dict",
]

Entry = StationaryCase | SdeGapCase | FiniteHorizonCase | CorrelatedCase | OneOff


@dataclass(frozen=True)
class Task:
    """One independent unit of work: a table entry of check ``check`` at the sizes ``sim``."""

    check: str
    entry: Entry
    sim: Sim

    @property
    def label(self) -> str:
        return self.entry.label


def run_task(task: Task) -> list[Row]:
    """The rows of one task, its wall time on the first row (the others 0): the time of a task is
    the sum of its rows' ``seconds``, whichever process ran it."""
    t0 = time.perf_counter()
    rows = task.entry.rows(task.sim)
    return [replace(row, seconds=time.perf_counter() - t0 if i == 0 else 0.0) for i, row in enumerate(rows)]


@dataclass(frozen=True)
class Check:
    """One named check: its entries of the table, in order."""

    name: str
    entries: tuple[Entry, ...]

    def tasks(self, sim: Sim) -> list[Task]:
        return [Task(self.name, entry, sim) for entry in self.entries]

    def __call__(self, sim: Sim) -> list[Row]:
        """All rows of this check, run here one task after the other."""
        return [row for task in self.tasks(sim) for row in run_task(task)]


def registry(table: list[Entry]) -> dict[str, Check]:
    """The checks of ``table`` by name, in the order of their first entries."""
    names = list(dict.fromkeys(entry.check for entry in table))
    return {name: Check(name, tuple(e for e in table if e.check == name)) for name in names}


CHECKS: dict[str, Check] = registry(TABLE)


def check_tasks(names: list[str] | None = None, sim: Sim | None = None) -> list[Task]:
    """The independent tasks of the named checks (all by default), in the order of their rows."""
    sim = sim or Sim()
    return [task for name in names or list(CHECKS) for task in CHECKS[name].tasks(sim)]


def run_checks(
    names: list[str] | None = None,
    sim: Sim | None = None,
    progress=sys.stderr,
    map_tasks: Callable[[Callable[[Task], list[Row]], list[Task]], Iterable[list[Row]]] = map,
) -> list[Row]:
    """Run the named checks (all by default) and return their rows, in the table's order.

    ``map_tasks(run_task, tasks)`` runs the tasks and yields their rows in the order of ``tasks``
    (the built-in ``map`` runs them here, one after the other; an executor's ``map`` may run them
    anywhere). ``progress`` (a stream, or None) gets one line per task with its wall time, as its
    rows arrive, and one per check with the sum of its tasks' times.
    """
    tasks = check_tasks(names, sim)
    last = {task.check: i for i, task in enumerate(tasks)}
    rows: list[Row] = []
    by_check: dict[str, list[Row]] = {}
    for i, (task, new) in enumerate(zip(tasks, map_tasks(run_task, tasks), strict=True)):
        rows += new
        mine = by_check.setdefault(task.check, [])
        mine += new
        if progress is not None and len(CHECKS[task.check].entries) > 1:
            print(f"[check] {task.check} | {task.label}: {_counts(new)}", file=progress, flush=True)
        if progress is not None and i == last[task.check]:
            print(f"[check] {task.check}: {_counts(mine)}", file=progress, flush=True)
    return rows


def _counts(rows: list[Row]) -> str:
    return f"{len(rows)} rows, {sum(not r.ok for r in rows)} failed, {sum(r.seconds for r in rows):.1f} s"
