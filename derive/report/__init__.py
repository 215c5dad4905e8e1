"""`derive report`: derivations, checks, quadratic and network validations, weak order and order 2
in one Markdown report.

``build(out, size)`` writes ``out/REPORT.md``, ``out/report.json`` and the figures beside them.
Sizes (:mod:`.setting`): ``quick`` (the tests'), ``default`` (every row, about 5 minutes on 2 cores
from empty caches) and ``full`` (the sizes before the time budget). Each section is a module with
``tasks(setting)``, its independent parts as executor tasks (:mod:`.tasks`), and ``render(...)``,
its Markdown from their results in the report's fixed order; the tasks of all sections run together
on one :class:`~derive.executor.Executor` (serially, or on a Dask cluster), so the numbers do not
depend on where they ran. The report ends with its total and per-section times, also in
``report.json`` (``timings``) and on stderr. Without PyTorch the network parts are skipped, and the
report says so and why.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from ..executor import Executor, SerialExecutor
from ..io import atomic_write_text
from . import checks, derivations, networks, order2, quadratic, weak_order
from .setting import DEFAULT, FULL, QUICK, SIZES, Setting
from .tasks import Results, _cpu, _log, run

__all__ = ["DEFAULT", "FULL", "QUICK", "SECTIONS", "SIZES", "Setting", "build"]

#: the sections, in the report's order
SECTIONS = (derivations, checks, quadratic, networks, weak_order, order2)


def build(
    out: str | Path = "report",
    quick: bool = False,
    progress=sys.stderr,
    setting: Setting | None = None,
    executor: Executor | None = None,
    warm: bool | None = None,
) -> Path:
    """Write ``out/REPORT.md`` (with ``report.json`` and the figures); returns its path.

    ``setting``: the sizes (default :data:`DEFAULT`, or :data:`QUICK` with ``quick``); ``executor``:
    where the tasks run (default: here, serially); ``warm``: compile each kernel once before the
    tasks (default: when the executor runs tasks in parallel; :func:`.tasks.run`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    setting = setting or (QUICK if quick else DEFAULT)
    executor = executor or SerialExecutor()
    started, cpu0 = time.perf_counter(), _cpu()
    _log(progress, f"setting {setting.name}; planning the tasks")
    planned = {section.NAME: section.tasks(setting) for section in SECTIONS}
    for name, tasks in planned.items():
        _log(progress, f"section {name}: {len(tasks)} task(s)")
    results = run(executor, [t for tasks in planned.values() for t in tasks], progress=progress, warm=warm)
    raw: dict = {}
    lines = _header(setting, executor)
    timings = {}
    for section in SECTIONS:
        r0, c0 = time.perf_counter(), _cpu()
        _log(progress, f"writing section {section.NAME}")
        lines += section.render(setting, results, out, raw)
        keys = [t.key for t in planned[section.NAME]]
        timings[section.NAME] = {
            "tasks": len(keys),
            "seconds": sum(results.seconds(k) for k in keys) + time.perf_counter() - r0,
            "cpu_seconds": sum(results.cpu(k) for k in keys) + _cpu() - c0,
        }
    raw["timings"] = _timings(results, timings, time.perf_counter() - started, _cpu() - cpu0, executor)
    lines += ["---", time_line(raw["timings"]), ""]
    atomic_write_text(out / "report.json", json.dumps(raw, indent=1))
    path = atomic_write_text(out / "REPORT.md", "\n".join(lines))
    if progress is not None:
        print(time_line(raw["timings"]), file=progress, flush=True)
    return path


def _header(setting: Setting, executor: Executor) -> list[str]:
    from .. import __version__

    try:
        import torch

        torch_line = f"PyTorch {torch.__version__}"
    except ImportError:
        torch_line = "PyTorch not installed"
    return [
        "# derive report",
        "",
        f"derive {__version__}, Python {platform.python_version()}, {torch_line}; size: {setting.name} "
        f"(`derive report --quick | --full`; README, 'Validation on networks, and the report'); ran on: {executor.describe()}.",
        "",
    ]


def _timings(results: Results, sections: dict, wall: float, cpu_here: float, executor: Executor) -> dict:
    """The run's times: total wall and CPU (this process's, plus the workers' tasks' when they ran
    elsewhere), per section, and per task and kernel (:meth:`.tasks.Results.timings`)."""
    detail = results.timings()
    elsewhere = 0.0
    if not isinstance(executor, SerialExecutor):
        elsewhere = detail["warm_up"]["cpu_seconds"] + sum(t["cpu_seconds"] for t in detail["tasks"].values())
    return {
        "total_seconds": wall,
        "cpu_seconds": cpu_here + elsewhere,
        "executor": executor.describe(),
        "sections": sections,
        **detail,
    }


def time_line(timings: dict) -> str:
    """'Total time ... (section s, ...)': wall time, CPU time, and each section's task wall and CPU time."""
    parts = [f"{name} {t['seconds']:.0f} s (CPU {t['cpu_seconds']:.0f} s)" for name, t in timings["sections"].items()]
    warm = timings["warm_up"]
    if warm["kernels"]:
        parts.insert(0, f"compiling {warm['kernels']} kernels {warm['seconds']:.0f} s")
    return (
        f"Total time {timings['total_seconds']:.0f} s, CPU {timings['cpu_seconds']:.0f} s, on "
        f"{timings['executor']} ({', '.join(parts)}; a section's time is the sum of its tasks' wall times)."
    )
