"""`derive report` on the reduced setting; its network part without PyTorch; the same numbers
serially and on a Dask cluster (the report's and `derive check`'s tasks)."""

import json
import sys
from dataclasses import replace

import pytest

from derive import report
from derive.cli import main
from derive.executor import DaskExecutor, SerialExecutor
from derive.sweep.command import drop_wall_times

HEADINGS = (
    "## 1. Derived SDEs",
    "## 2. Closed forms",
    "## 3. Quadratic",
    "## 4. Neural networks",
    "## 5. Weak order",
    "## 6. Order-2 SDEs",
)

#: every section with one small task or two (the kernels are QUICK's: compiled once for the file)
TINY = replace(
    report.QUICK,
    name="tiny",
    derivations=(("sgd", "paper", "full"),),
    quad_optimizers=("sgd",),
    quad_steps=40,
    quad_paths=100,
    net_optimizers=("sgd",),
    net_steps={"mlp": 5},
    noise_at=(0, 5),
    weak_paths=400,
    order2_paths=400,
)


def test_quick_report_writes_markdown_figures_and_times(tmp_path):
    path = report.build(tmp_path / "r", quick=True, progress=None)
    text = path.read_text()
    assert all(heading in text for heading in HEADINGS)
    assert "FAILED" not in text and "failed:" not in text
    assert "Every mutant is rejected: all 6 deliberately wrong predictions of the 3 rows" in text
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    timings = data["timings"]
    assert list(timings["sections"]) == [s.NAME for s in report.SECTIONS]
    assert all(s["tasks"] >= 1 and s["seconds"] > 0 for s in timings["sections"].values())
    last = text.rstrip().splitlines()[-1]
    assert last == report.time_line(timings) and last.startswith(f"Total time {timings['total_seconds']:.0f} s")
    assert all(f"{name} " in last for name in timings["sections"])
    assert (tmp_path / "r" / "quadratic" / "adam_sigma0.1.png").is_file()
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "**Skipped**" in text
    else:
        networks = text.split("## 4.")[1].split("## 5.")[0]
        assert "| adam |" in networks and "### Real minibatch noise" in networks
        assert set(data["noise_mlp_B8"]["points"][0]) >= {"trace", "effective_rank", "kurtosis", "nu", "nu_ci", "law"}
        assert (tmp_path / "r" / "networks" / "mlp_adam_sigma0.01.png").is_file()


def test_network_part_says_why_it_was_skipped_without_torch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    setting = report.Setting(derivations=(), checks=(), quad_optimizers=(), weak_order=False)
    text = report.build(tmp_path, setting=setting, progress=None).read_text()
    assert "**Skipped**" in text and "PyTorch" in text


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of two worker processes for the module (start-up costs seconds)."""
    with DaskExecutor(workers=2) as executor:
        yield executor


def _numbers(folder) -> dict:
    data = json.loads((folder / "report.json").read_text())
    data.pop("timings")
    return drop_wall_times(data)


@pytest.mark.slow
def test_serial_and_dask_reports_have_the_same_numbers(tmp_path, cluster):
    """Every task's seeds come from the task: the JSON is the same in this process and on two
    workers (with the kernels compiled first, one task each)."""
    serial = report.build(tmp_path / "serial", setting=TINY, progress=None, executor=SerialExecutor())
    dask = report.build(tmp_path / "dask", setting=TINY, progress=None, executor=cluster)
    numbers = _numbers(tmp_path / "serial")
    assert numbers == _numbers(tmp_path / "dask")
    assert {"checks", "quadratic_sgd_sigma0.1", "weak_order_sgd_quadratic", "order2_sgd_quadratic"} <= set(numbers)
    timings = json.loads((tmp_path / "dask" / "report.json").read_text())["timings"]
    assert timings["warm_up"]["kernels"] >= 3 and timings["executor"].startswith("dask")
    workers = {t["worker"] for t in timings["tasks"].values()}
    assert len(workers) == 2  # both workers ran tasks
    assert _tables_without_times(serial) == _tables_without_times(dask)


def _tables_without_times(path) -> list[str]:
    """The report's table rows without their last column (the wall time, where a row has one)."""
    return [line.rsplit("|", 2)[0] for line in path.read_text().splitlines() if line.startswith("| ")]


@pytest.mark.slow
def test_check_gives_the_same_rows_on_a_cluster(cluster, capsys):
    """`derive check --scheduler ADDRESS` runs the tasks on the cluster, rows in the table's order,
    with the numbers of `--serial`."""
    args = ["check", "--only", "sgd,adam-laws", "--paths", "400", "--format", "json"]
    assert main([*args, "--serial"]) == 0
    serial = json.loads(capsys.readouterr().out)
    assert main([*args, "--scheduler", cluster.client.scheduler.address]) == 0
    captured = capsys.readouterr()
    assert drop_wall_times(json.loads(captured.out)) == drop_wall_times(serial)
    assert "derive check: dask" in captured.err
    with pytest.raises(SystemExit):  # argparse: one of --scheduler, --workers, --serial
        main([*args, "--workers", "2", "--serial"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "--quick", "--scheduler", "no-such-file"], "--scheduler 'no-such-file' is neither"),
        (["check", "--only", "sgd", "--workers", "0"], "--workers must be >= 1, got 0"),
        (["report", "--quick", "--serial", "--workers", "2"], None),  # argparse: not both
    ],
)
def test_where_the_tasks_run_is_checked_in_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if message is None:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        return
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "report").exists()
