"""Run many independent tasks and get their outcomes as they finish: in-process, or on Dask.

One interface, two backends:

* :class:`SerialExecutor` runs the tasks one after the other in this process (the reference, and
  the way to debug a task);
* :class:`DaskExecutor` runs them on a Dask distributed cluster: a ``LocalCluster`` with one worker
  process per core (or ``workers``), or an existing cluster joined by its scheduler's address
  (``tcp://HOST:8786``) or scheduler file (the JSON a ``dask scheduler --scheduler-file`` writes).
  A worker that dies mid-task has its task rerun on another (Dask's scheduler does it).

A :class:`Task` is a picklable function with its arguments and a unique ``key``;
:meth:`Executor.map` yields one :class:`Outcome` per task, in the order they finish, with a tqdm
bar over the tasks. A task that raises does not stop the others: its outcome carries the error's
one-line message (and, for anything but a :class:`~derive.errors.DeriveError`, the traceback).

Numba threads: a task on a Dask worker runs with ``max(1, cores // Dask threads of all workers on
its host)`` Numba threads (never more than the worker's ``NUMBA_NUM_THREADS``; a LocalCluster worker
gets cores // workers), so workers x threads never exceeds the cores. The simulators' results do not depend on the thread
count, so neither do the tasks'.

Usage (``derive sweep``; ``derive report`` and ``derive check`` can submit their parts likewise)::

    with open_executor(workers=4) as ex:
        for outcome in ex.map([Task(key, fn, (a, b)) for ...], label="checks"):
            ...
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from .errors import DeriveError


@dataclass(frozen=True)
class Task:
    """``function(*args, **kwargs)`` under a unique ``key`` (the function must be importable by
    name on the workers: a module-level function of an installed package)."""

    key: str
    function: Callable[..., object]
    args: tuple = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What one task gave: its ``value``, or ``error`` (one line) when it raised."""

    key: str
    value: object = None
    error: str | None = None
    traceback: str | None = None  #: for an unexpected exception (a bug), not for a DeriveError
    seconds: float = 0.0
    worker: str = ""  #: host:pid of the process that ran it
    versions: Mapping[str, str] = field(default_factory=dict)  #: of the process that ran it

    @property
    def ok(self) -> bool:
        return self.error is None


class ExecutorError(DeriveError):
    """An executor that cannot start or reach its cluster."""


@cache
def versions() -> dict[str, str]:
    """Versions of what a task's numbers depend on: derive, sympy, numba, numpy, python."""
    out = {}
    for name, dist in (("derive", "derive-sde"), ("sympy", "sympy"), ("numba", "numba"), ("numpy", "numpy")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_task(task: Task, threads_per_task: int | None = None) -> Outcome:
    """Run one task here (in this process or on a worker): time it, catch its error."""
    _limit_numba_threads(threads_per_task)
    start = time.perf_counter()
    value = error = trace = None
    try:
        value = task.function(*task.args, **dict(task.kwargs))
    except DeriveError as exc:
        error = _one_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug in one task must not stop the others
        error, trace = _one_line(f"{type(exc).__name__}: {exc}"), traceback.format_exc()
    return Outcome(
        task.key,
        value,
        error,
        trace,
        time.perf_counter() - start,
        f"{socket.gethostname()}:{os.getpid()}",
        versions(),
    )


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _limit_numba_threads(threads: int | None) -> None:
    """Numba threads for the task about to run (per calling thread; before Numba is imported, by
    the environment it reads)."""
    if threads is None:
        return
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(max(1, threads))


def _worker_threads(threads_by_host: Mapping[str, int]) -> int:
    """Numba threads for a task on the current Dask worker: the host's cores over the Dask threads
    of every worker on that host (``threads_by_host``, from the scheduler; this worker's own if its
    host is not listed)."""
    from distributed import get_worker
    from distributed.comm import get_address_host

    worker = get_worker()
    share = threads_by_host.get(get_address_host(worker.address), worker.state.nthreads)
    return max(1, cores() // max(1, share))


def _run_on_worker(task: Task, threads_by_host: Mapping[str, int]) -> Outcome:
    return run_task(task, _worker_threads(threads_by_host))


class Executor:
    """Runs independent tasks; use as a context manager (``close`` releases the cluster)."""

    name = "executor"
    dashboard: str | None = None  #: the Dask dashboard's address, if any

    def map(self, tasks: Sequence[Task], *, label: str = "tasks", progress: bool = True) -> Iterator[Outcome]:
        """One outcome per task, as they finish (order not guaranteed), with a tqdm bar."""
        from tqdm import tqdm

        repeated = sorted(k for k, n in Counter(t.key for t in tasks).items() if n > 1)
        if repeated:
            raise ExecutorError(f"{label}: task keys must be unique; repeated: {', '.join(repeated[:5])}")
        with tqdm(total=len(tasks), desc=label, unit="task", file=sys.stderr, disable=not progress) as bar:
            for outcome in self._outcomes(tasks):
                bar.update(1)
                yield outcome

    def _outcomes(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        """Release what the executor started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(Executor):
    """Every task in this process, one after the other, with all of the process's Numba threads."""

    name = "serial"

    def _outcomes(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        for task in tasks:
            yield run_task(task)


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster.

    ``scheduler``: the address of a running scheduler (``tcp://HOST:8786``) or the path of its
    scheduler file; else a LocalCluster of ``workers`` processes (default: one per core), one
    Dask thread each, with ``NUMBA_NUM_THREADS`` = cores // workers.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        import dask
        from distributed import Client, LocalCluster

        self.cluster = None
        try:
            if scheduler is not None:
                if workers is not None:
                    raise ExecutorError("give --scheduler or --workers, not both (a cluster has its own workers)")
                path = Path(scheduler).expanduser()
                if path.is_file():
                    self.client = Client(scheduler_file=str(path), timeout="30s")
                elif "://" in scheduler or ":" in scheduler:
                    self.client = Client(scheduler, timeout="30s")
                else:
                    raise ExecutorError(
                        f"--scheduler {scheduler!r} is neither a scheduler address (tcp://HOST:8786) nor an existing "
                        "scheduler file"
                    )
            else:
                n = cores() if workers is None else workers
                if n < 1:
                    raise ExecutorError(f"--workers must be >= 1, got {n}")
                threads = max(1, cores() // n)
                env = {name: str(threads) for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
                # Dask's nannies set MALLOC_TRIM_THRESHOLD_ in their workers, which turns off glibc's dynamic
                # mmap threshold: every large NumPy array is then mapped and unmapped afresh, and the quadratic
                # validations (bootstrap resampling) took 3.5-4x the CPU they take in a plain process (measured).
                with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                    self.cluster = LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", env=env
                    )
                self.client = Client(self.cluster)
        except (OSError, TimeoutError, ValueError, KeyError) as exc:  # unreachable, or a broken scheduler file
            self.close()
            raise ExecutorError(f"cannot reach the Dask scheduler {scheduler!r}: {_one_line(str(exc))}") from None
        self.dashboard = self.client.dashboard_link

    def describe(self) -> str:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        threads = sum(w["nthreads"] for w in workers.values())
        where = "LocalCluster" if self.cluster is not None else self.client.scheduler.address
        return f"dask {where}: {len(workers)} worker(s), {threads} thread(s); dashboard {self.dashboard}"

    def worker_pids(self) -> dict[str, int]:
        """Process id of each worker, by address (to watch or stop one)."""
        return self.client.run(os.getpid)

    def _outcomes(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]  # a fresh Dask key per submission: never a result cached from an earlier one
        hosts: Counter[str] = Counter()
        for w in self.client.scheduler_info(n_workers=-1)["workers"].values():
            hosts[w["host"]] += w["nthreads"]
        futures = {
            self.client.submit(_run_on_worker, t, dict(hosts), key=f"derive-{t.key}-{run}", pure=False): t
            for t in tasks
        }
        try:
            for future, value in as_completed(futures, with_results=True, raise_errors=False):
                if isinstance(value, Outcome):
                    yield value
                else:  # the task could not run: its workers kept dying (KilledWorker), or it was lost
                    yield Outcome(futures[future].key, error=_one_line(f"{type(value).__name__}: {value}"))
        finally:
            self.client.cancel(list(futures))

    def close(self) -> None:
        for thing in (getattr(self, "client", None), self.cluster):
            if thing is not None:
                thing.close()
        self.cluster = None


def open_executor(scheduler: str | None = None, workers: int | None = None, serial: bool = False) -> Executor:
    """The executor the command-line options ask for: ``serial``, a cluster at ``scheduler``, or a
    LocalCluster of ``workers`` processes (default one per core)."""
    if serial:
        if scheduler is not None or workers is not None:
            raise ExecutorError("--serial runs in this process: give it without --scheduler or --workers")
        return SerialExecutor()
    return DaskExecutor(scheduler, workers)
