"""`derive sweep`: the TOML file read as data and checked, tasks on the serial and Dask executors,
reproducible results, faults (a task's user error, a killed worker, a killed client), resume, plot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import pandas as pd
import pytest

from derive.cli import main
from derive.executor import DaskExecutor, SerialExecutor, Task, cores
from derive.sweep.command import _captured_stdout, run_command
from derive.sweep.plot import lookup, series, spans_decades
from derive.sweep.spec import SweepError, load_sweep
from derive.sweep.store import read_results, run_sweep

WEAK = """
command = "weak-order"
[grid]
optimizer = ["sgd", "signsgd"]
landscape = ["quadratic", "double-well"]
[fixed]
etas = "0.08,0.04"
paths = 200
"""


def _file(folder: Path, text: str, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, needle",
    [
        ('command = "simulate"', "command 'simulate' has no --format json"),
        (
            'command = "nosuch"',
            "unknown command 'nosuch'; a sweep runs one of check, noise, phases, scaling, sde, stationary, validate, weak-order",
        ),
        ("command = \"__import__('os').system('touch F')\"", "unknown command"),
        ('command = "weak-order"\n[grid]\noptimizer = ["sgd"]\nspeed = [1]', "unknown option 'speed' for weak-order"),
        ('command = "weak-order"\n[fixed]\noptimizer = "examples/heavy_ball.py:heavy_ball"', "add --allow-code"),
        ('command = "weak-order"\n[fixed]\noptimizer = "sgd"\nplot = "a.png"', "option 'plot' writes files"),
        ('command = "sde"\n[fixed]\noptimizer = "sgd"\nformat = "text"', "option 'format' is not yours to set"),
        ('command = "weak-order"\n[grid]\noptimizer = "sgd"', "optimizer = 'sgd': give a non-empty list"),
        ('command = "weak-order"\n[grid]\noptimizer = ["sgd"]\nlandscape = ["moon"]', "invalid choice: 'moon'"),
        (
            'command = "weak-order"\n[fixed]\noptimizer = "sgd"\nfrom_initial = "yes"',
            "from_initial takes true or false",
        ),
        ('command = "weak-order"\n[fixed]\noptimizer = "sgd"\npaths = [1, 2]', "paths takes a string or a number"),
        (
            'command = "weak-order"\n[grid]\noptimizer = ["sgd"]\n[fixed]\noptimizer = "adam"',
            "in both [grid] and [fixed]",
        ),
        ('command = "sde"\nworkers = 3', "unknown key(s) workers"),
        ('command = "sde"\n[grid\n', "not valid TOML"),
        ('command = "validate"\n[fixed]\noptimizer = "sgd"', "the following arguments are required: --model"),
    ],
)
def test_bad_sweep_files_are_refused_in_one_line(text, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = _file(tmp_path, text)
    assert main(["sweep", str(path), "--out", "out", "--serial"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]  # nothing created, nothing run


def test_code_runs_only_with_allow_code(tmp_path):
    path = _file(tmp_path, 'command = "sde"\n[grid]\noptimizer = ["examples/heavy_ball.py:heavy_ball", "sgd"]')
    sweep = load_sweep(path, allow_code=True)
    assert [t.options["optimizer"] for t in sweep.tasks] == ["examples/heavy_ball.py:heavy_ball", "sgd"]


def test_keys_and_seeds_come_from_the_content_not_the_order(tmp_path):
    forward = load_sweep(_file(tmp_path, WEAK, "a.toml"))
    backward = load_sweep(_file(tmp_path, WEAK.replace('["sgd", "signsgd"]', '["signsgd", "sgd"]'), "b.toml"))
    assert forward.seeded and len({t.key for t in forward.tasks}) == 4

    def by_options(sweep):
        return {json.dumps(t.grid, sort_keys=True): (t.key, t.options["seed"], t.argv) for t in sweep.tasks}

    assert by_options(forward) == by_options(backward)  # same task, same key and seed, in any order
    task = forward.tasks[0]
    assert task.options["seed"] == int(task.key[:7], 16) and f"--seed={task.options['seed']}" in task.argv
    fixed = load_sweep(_file(tmp_path, WEAK + "seed = 3\n", "c.toml"))
    assert not fixed.seeded and all("--seed=3" in t.argv for t in fixed.tasks)


def test_tasks_on_threads_capture_their_own_output():
    """A multi-threaded worker runs tasks side by side: each captures its own prints (the threads
    take turns printing, so a shared sys.stdout redirect would mix them)."""
    turns, got, before = threading.Barrier(2), {}, sys.stdout

    def task(name):
        with _captured_stdout() as out:
            for i in range(3):
                turns.wait()
                print(f"{name}{i}")
        got[name] = out.getvalue().split()

    threads = [threading.Thread(target=task, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {"a": ["a0", "a1", "a2"], "b": ["b0", "b1", "b2"]} and sys.stdout is before
    assert json.loads(run_command("sde", ("sgd", "--format=json"))["result"])["optimizer"] == "sgd"


def test_a_user_error_fails_its_task_only_and_resume_adds_no_row(tmp_path, capsys):
    path = _file(
        tmp_path, 'command = "scaling"\n[grid]\noptimizer = ["sgd", "adam"]\ncriterion = ["sde", "stationary"]'
    )
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--serial"]) == 1  # one task failed
    table = pd.read_parquet(out / "results.parquet")
    assert list(table["status"]) == ["ok", "ok", "failed", "ok"] and table["key"].is_unique
    failed = table[table["status"] == "failed"].iloc[0]
    assert (failed["optimizer"], failed["criterion"]) == ("adam", "sde")
    assert "has no scaling rule under criterion 'sde'" in failed["error"] and "\n" not in failed["error"]
    assert json.loads(table["result"][0])["exponents"] == {"eta": "1"}
    assert {"seconds", "worker", "derive_version", "sympy_version", "numba_version", "numpy_version"} <= set(table)
    files = {p.name: p.stat().st_mtime_ns for p in (out / "tasks").iterdir()}
    capsys.readouterr()
    assert main(["sweep", str(path), "--resume", str(out), "--serial"]) == 1  # the failed task ran again, failed again
    assert "1 failed in this run" in capsys.readouterr().out
    again = pd.read_parquet(out / "results.parquet")
    assert len(again) == 4 and again["key"].is_unique
    ok_files = {k for k, s in zip(table["key"], table["status"], strict=True) if s == "ok"}
    assert all((out / "tasks" / f"{k}.json").stat().st_mtime_ns == files[f"{k}.json"] for k in ok_files)
    with pytest.raises(SweepError, match="already holds a sweep; continue it with --resume"):
        run_sweep(load_sweep(path), out, SerialExecutor())


@pytest.fixture(scope="module")
def serial_weak(tmp_path_factory):
    """The issue's sweep at test size, run serially: the reference table."""
    folder = tmp_path_factory.mktemp("weak")
    sweep = load_sweep(_file(folder, WEAK))
    summary = run_sweep(sweep, folder / "serial", SerialExecutor(), progress=False)
    assert summary.ok == 4, summary.failed
    return sweep, folder / "serial"


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of two worker processes for the module (start-up costs seconds)."""
    with DaskExecutor(workers=2) as executor:
        yield executor


def _kill_a_busy_worker(executor: DaskExecutor, stop: threading.Event, killed: list) -> None:
    """SIGKILL the process of a worker that has been running a task for a moment."""
    while not stop.is_set():
        busy = [a for a, keys in executor.client.processing().items() if keys]
        if busy:
            time.sleep(0.5)
            if executor.client.processing().get(busy[0]):
                pid = executor.worker_pids()[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_weak_order_on_two_workers_equals_serial_even_when_a_worker_dies(serial_weak, cluster, tmp_path):
    """The issue's done-when check, with one worker process killed mid-task: the task reruns
    elsewhere; one ok row per task; the result column equals the serial run's."""
    sweep, serial_dir = serial_weak
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(cluster, stop, killed))
    killer.start()
    try:
        summary = run_sweep(sweep, tmp_path / "dask", cluster, progress=False)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed: the test did not exercise a fault"
    assert summary.ok == 4 and not summary.failed
    serial, dask = read_results(serial_dir), pd.read_parquet(tmp_path / "dask" / "results.parquet")
    assert len(dask) == 4 and dask["key"].is_unique and (dask["status"] == "ok").all()
    assert list(dask["key"]) == list(serial["key"]) and list(dask["result"]) == list(serial["result"])
    assert killed[0] not in set(cluster.worker_pids().values())  # the nanny started a new worker process
    threads = [o.value for o in cluster.map([Task(f"t{i}", numba.get_num_threads) for i in range(2)], progress=False)]
    assert threads == [max(1, cores() // 2)] * 2  # two workers on this host share its cores


def test_joining_a_running_cluster_by_address_or_scheduler_file(cluster, tmp_path):
    address = cluster.client.scheduler.address  # a scheduler file as `dask scheduler --scheduler-file` writes it:
    (tmp_path / "scheduler.json").write_text(json.dumps({"type": "Scheduler", "address": address}))
    for where in (address, str(tmp_path / "scheduler.json")):
        with DaskExecutor(scheduler=where) as joined:
            assert [o.value for o in joined.map([Task("four", int, ("4",))], progress=False)] == [4]
    assert len(cluster.worker_pids()) == 2  # leaving a cluster one joined does not stop it


def test_resume_of_a_finished_sweep_adds_no_row(serial_weak, capsys):
    sweep, serial_dir = serial_weak
    before = pd.read_parquet(serial_dir / "results.parquet")
    summary = run_sweep(sweep, serial_dir, SerialExecutor(), resume=True, progress=False)
    assert (summary.already, summary.ok, summary.failed) == (4, 0, [])
    after = pd.read_parquet(serial_dir / "results.parquet")
    pd.testing.assert_frame_equal(before, after)


def test_a_killed_client_resumes_with_no_duplicates(tmp_path):
    text = 'command = "sde"\n[grid]\noptimizer = ["sgd", "signsgd", "sgdm", "clipsgd"]\nform = ["full", "published"]\n'
    path, out = _file(tmp_path, text), tmp_path / "out"
    client = subprocess.Popen(
        [sys.executable, "-m", "derive", "sweep", str(path), "--out", str(out), "--serial"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list((out / "tasks").glob("*.json")) and time.monotonic() < deadline and client.poll() is None:
        time.sleep(0.05)
    client.send_signal(signal.SIGKILL)
    client.wait()
    finished = {p.name: p.read_text() for p in (out / "tasks").glob("*.json")}
    assert 1 <= len(finished) < 8, f"{len(finished)} tasks finished before the kill: the test needs a partial sweep"
    assert main(["sweep", str(path), "--resume", str(out), "--serial"]) == 0
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 8 and table["key"].is_unique and (table["status"] == "ok").all()
    assert all((out / "tasks" / name).read_text() == body for name, body in finished.items())  # not run again


def test_plot_reads_fields_by_dotted_path(serial_weak, tmp_path, capsys):
    _, serial_dir = serial_weak
    figure = tmp_path / "errors.png"
    argv = ["sweep", "plot", str(serial_dir), "--x", "runs.0.etas", "--y", "runs.0.errors", "--hue", "optimizer"]
    assert main([*argv, "--out", str(figure)]) == 0 and figure.stat().st_size > 0
    lines = series(read_results(serial_dir), "runs.0.etas", "runs.0.errors", "optimizer")
    assert [h for h, _ in lines] == ["sgd", "sgd", "signsgd", "signsgd"]  # one line per row: 2 landscapes each
    assert all([x for x, _ in p] == [0.04, 0.08] for _, p in lines)
    scalars = series(read_results(serial_dir), "seed", "runs.0.se.0", "optimizer")  # one point per row, a line per hue
    assert [(h, len(p)) for h, p in scalars] == [("sgd", 2), ("signsgd", 2)]
    assert main([*argv[:-1], "landscape"]) == 0  # a grid column as the hue
    assert main([*argv[:3], "--x", "runs.0.eta", "--y", "runs.0.errors"]) == 2
    assert "'runs.0.eta': runs.0 has no 'eta'; it holds keys at, errors, etas," in capsys.readouterr().err


def test_log_axes_where_values_span_decades():
    assert spans_decades([0.01, 0.16]) and not spans_decades([0.04, 0.08]) and not spans_decades([-1.0, 100.0])
    assert lookup({"runs": [{"slope": 1.5}]}, "runs.0.slope") == 1.5
    with pytest.raises(SweepError, match="runs has no '3'; it holds a list of 1"):
        lookup({"runs": [{"slope": 1.5}]}, "runs.3.slope")


def test_executor_outcomes_carry_errors_and_are_unique_by_key():
    def boom():
        raise ValueError("bad\nnews")

    outcomes = list(SerialExecutor().map([Task("a", int, ("4",)), Task("b", boom)], progress=False))
    assert [(o.key, o.ok, o.value) for o in outcomes] == [("a", True, 4), ("b", False, None)]
    assert outcomes[1].error == "ValueError: bad news" and "Traceback" in outcomes[1].traceback
    with pytest.raises(Exception, match="task keys must be unique"):
        list(SerialExecutor().map([Task("a", int), Task("a", int)], progress=False))


def test_validate_prints_json_for_a_sweep(capsys):
    """Every command a sweep runs has --format json; validate's --out is then optional."""
    argv = ["validate", "--model", "quadratic", "--optimizer", "sgd", "--steps", "20", "--paths", "50", "--quiet"]
    assert main([*argv, "--scheme", "weak2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in data["results"]] == ["quadratic"] and "full" in data["results"][0]["fidelity"]
    assert main(argv) == 2 and "give --out DIR" in capsys.readouterr().err
