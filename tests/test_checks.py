"""`derive check` in a reduced setting: the Monte Carlo confirmations agree within 4 SE."""
from __future__ import annotations

import math

from derive.cli import main
from derive.theory.checks import Row, Sim, run_checks, table
from derive.theory.plots import draw


def test_stationary_and_momentum_checks_agree():
    rows = run_checks(["sgd", "adamw", "signsgd-speed"], Sim(paths=2000), progress=None)
    assert rows and all(r.ok for r in rows), table(rows)
    rejected = [r for r in rows if r.expect_equal is False]
    assert rejected and all(r.gap_in_se > 4 for r in rejected)  # the published AdamW value is rejected


def test_scaling_checks_agree():
    rows = run_checks(["scaling"], Sim(paths=1500), progress=None)
    assert len(rows) == 16 and all(r.ok for r in rows), table(rows)


def test_a_wrong_prediction_fails():
    row = Row("made up", "x", predicted=1.0, estimate=1.5, se=0.01, seconds=0.0)
    assert not row.ok and math.isclose(row.gap_in_se, 50.0)


def test_plots_are_written(tmp_path):
    rows = [Row("SGD", "", 0.25 * s**2, 0.25 * s**2 * 1.01, 0.001, 0.0, series="SGD", x=s) for s in (0.5, 1.0, 2.0)]
    paths = draw(rows, tmp_path)
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)


def test_cli_check_subset(capsys):
    assert main(["check", "--only", "signsgd-speed", "--paths", "1000"]) == 0
    out = capsys.readouterr().out
    assert "SignSGD linear-phase decay rate" in out and "3 passed, 0 failed, 0 shown without a verdict" in out
    assert main(["check", "--only", "nope"]) == 2
