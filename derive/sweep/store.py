"""A sweep's directory: one JSON file per finished task, merged into ``results.parquet``.

``DIR/tasks/KEY.json`` is written atomically the moment a task's outcome reaches the client, so a
killed sweep keeps every finished task; ``DIR/results.parquet`` (one row per task) is rewritten
from those files as tasks finish (at most every few seconds) and at the end. ``DIR/sweep.toml`` is
the sweep file as it was run. Resuming runs only the tasks whose key has no ``ok`` file: a task
file is replaced only by a later run of the same key, so nothing is lost or duplicated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..executor import Executor, Outcome, Task
from ..io import atomic_write, atomic_write_text
from .command import run_command
from .spec import Sweep, SweepError, SweepTask

TASKS, RESULTS, SWEEP_FILE = "tasks", "results.parquet", "sweep.toml"
#: the columns after the grid values
COLUMNS = ("status", "error", "result", "exit_status", "seconds", "worker")
VERSIONS = ("derive", "sympy", "numba", "numpy", "python")
MERGE_EVERY = 5.0  #: seconds between merges while tasks finish


@dataclass(frozen=True)
class Summary:
    """What one run of a sweep did."""

    tasks: int  #: tasks in the sweep file
    already: int  #: tasks with an ok row before this run (resumed)
    ok: int
    failed: list[tuple[SweepTask, str]]  #: the tasks that failed in this run, with their messages
    seconds: float
    results: Path


def run_sweep(sweep: Sweep, out: str | Path, executor: Executor, *, resume: bool = False, progress: bool = True):
    """Run the tasks of ``sweep`` that have no ``ok`` row in ``out`` (all of them for a new sweep)."""
    start = time.perf_counter()
    out = Path(out)
    folder = out / TASKS
    if resume and not folder.is_dir():
        raise SweepError(f"nothing to resume in {str(out)!r}: it has no {TASKS}/ folder; start the sweep with --out")
    if not resume and folder.is_dir() and any(folder.glob("*.json")):
        raise SweepError(f"{str(out)!r} already holds a sweep; continue it with --resume {out}, or choose a new --out")
    folder.mkdir(parents=True, exist_ok=True)
    if not (out / SWEEP_FILE).exists():
        atomic_write_text(out / SWEEP_FILE, sweep.text)
    done = {k for k, r in read_task_files(out).items() if r["status"] == "ok"}
    todo = {t.key: t for t in sweep.tasks if t.key not in done}
    merge(out, sweep.tasks)
    ok, failed, last = 0, [], time.monotonic()
    jobs = [Task(t.key, run_command, (sweep.command, t.argv)) for t in todo.values()]
    try:
        for outcome in executor.map(jobs, label=f"sweep {sweep.command}", progress=progress):
            task = todo[outcome.key]
            write_task_file(out, record(sweep, task, outcome))
            if outcome.ok:
                ok += 1
            else:
                failed.append((task, outcome.error))
            if time.monotonic() - last > MERGE_EVERY:
                merge(out, sweep.tasks)
                last = time.monotonic()
    finally:
        merge(out, sweep.tasks)
    return Summary(len(sweep.tasks), len(done), ok, failed, time.perf_counter() - start, out / RESULTS)


def record(sweep: Sweep, task: SweepTask, outcome: Outcome) -> dict:
    """The task file's content: the task, and what it gave."""
    value = outcome.value if outcome.ok else {}
    return {
        "task": task.index,
        "key": task.key,
        "command": sweep.command,
        "grid": task.grid,
        "options": task.options,
        "argv": list(task.argv),
        "status": "ok" if outcome.ok else "failed",
        "error": outcome.error,
        "result": value.get("result"),
        "exit_status": value.get("exit_status"),
        "seconds": round(outcome.seconds, 3),
        "worker": outcome.worker,
        "versions": dict(outcome.versions),
        "traceback": outcome.traceback,
    }


def write_task_file(out: Path, rec: dict) -> Path:
    return atomic_write_text(out / TASKS / f"{rec['key']}.json", json.dumps(rec, indent=1))


def read_task_files(out: str | Path) -> dict[str, dict]:
    """Every task file of the sweep in ``out``, by key."""
    records = {}
    for path in sorted((Path(out) / TASKS).glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SweepError(f"cannot read the task file {str(path)!r}: {exc}") from None
        records[rec["key"]] = rec
    return records


def table(out: str | Path, tasks: tuple[SweepTask, ...] = ()):
    """The results as a pandas DataFrame, one row per task file: ``task``, ``key``, the grid values,
    ``seed`` (when derived from the key), the columns of :data:`COLUMNS`, and each version."""
    import pandas as pd

    records = sorted(read_task_files(out).values(), key=lambda r: (r["task"], r["key"]))
    grid_names = list(
        dict.fromkeys([*(n for t in tasks[:1] for n in t.grid), *(n for r in records for n in r["grid"])])
    )
    seeded = any("seed" in r["options"] and "seed" not in r["grid"] for r in records)
    rows = []
    for r in records:
        row = {"task": r["task"], "key": r["key"], **{n: r["grid"].get(n) for n in grid_names}}
        if seeded:
            row["seed"] = r["options"].get("seed")
        row.update({c: r[c] for c in COLUMNS})
        row.update({f"{n}_version": r["versions"].get(n) for n in VERSIONS})
        rows.append(row)
    columns = ["task", "key", *grid_names, *(["seed"] if seeded else []), *COLUMNS, *(f"{n}_version" for n in VERSIONS)]
    frame = pd.DataFrame(rows, columns=columns).astype({"exit_status": "Int64"})
    for name in grid_names:  # one type per column for parquet: lists as JSON, mixed kinds as text
        kinds = {type(v) for v in frame[name] if v is not None}
        if list in kinds:
            frame[name] = [json.dumps(v) for v in frame[name]]
        elif len(kinds) > 1 and not kinds <= {int, float}:
            frame[name] = [None if v is None else str(v) for v in frame[name]]
    return frame


def merge(out: str | Path, tasks: tuple[SweepTask, ...] = ()) -> Path:
    """Rewrite ``out/results.parquet`` from the task files (atomically)."""
    path = Path(out) / RESULTS
    frame = table(out, tasks)
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def read_results(out: str | Path):
    """The results of the sweep in ``out``: from its task files when it has them (the newest),
    else from ``results.parquet`` alone."""
    import pandas as pd

    out = Path(out)
    if (out / TASKS).is_dir():
        return table(out)
    if (out / RESULTS).is_file():
        return pd.read_parquet(out / RESULTS)
    raise SweepError(f"{str(out)!r} holds no sweep results (no {TASKS}/ folder, no {RESULTS})")
