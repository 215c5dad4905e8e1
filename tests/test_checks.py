"""`derive check` in a reduced setting: every row holds, and every statistical row fails when fed a
deliberately wrong prediction (its mutants), so no check passes vacuously."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import replace

import pytest

from derive.cli import main
from derive.combination import Combination
from derive.theory.cases import Law, Mutant, Prediction, StationaryCase
from derive.theory.check_table import MUTANT_PATHS, SGD, SIGMA_DOUBLED, TABLE
from derive.theory.checks import CHECKS, Row, Sim, Task, check_tasks, registry, run_checks, run_task, table
from derive.theory.checks_scaling import check_scaling
from derive.theory.plots import draw

#: the default run's checks: one per kind of row (stationary laws, the exact SignSGD law, published-law
#: rejections, a fast state's chain law with its O(eta) bias resolved), a few modules to compile; every
#: check runs under ``-m slow``
FEW = ["sgd", "signsgd", "adam-laws", "nesterov"]


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return run_checks(None, Sim(paths=1000), progress=None)


@pytest.fixture(scope="module")
def few_rows() -> list[Row]:
    return run_checks(FEW, Sim(paths=1000), progress=None)


def _statistical_rows_detect_their_mutants(rows: list[Row]) -> list[Row]:
    statistical = [r for r in rows if r.expect_equal is True and "scaling" not in r.name]
    without = [r.name for r in statistical if not r.mutants]
    assert not without, f"rows without a mutation test: {without}"
    missed = [
        (r.name, m, r.mutants[m], r.estimate, r.se) for r in statistical for m in r.mutants if not r.mutant_detected(m)
    ]
    assert not missed, missed
    return statistical


def test_a_few_checks_pass_and_detect_their_mutants(few_rows):
    """The default run's share of the two slow tests below: every row holds, every statistical row
    rejects its mutants, the published SDE's law is rejected where it is wrong (Adam)."""
    assert {r.name.split(":")[0] for r in few_rows} and all(r.ok for r in few_rows), table(few_rows)
    assert len(_statistical_rows_detect_their_mutants(few_rows)) >= 10
    rejected = [r for r in few_rows if r.expect_equal is False]
    assert rejected and all(r.gap_in_se > 4 for r in rejected)


@pytest.mark.slow
def test_every_check_passes_at_a_reduced_size(rows):
    assert {r.name.split(":")[0] for r in rows} and all(r.ok for r in rows), table(rows)
    rejected = [r for r in rows if r.expect_equal is False]
    assert len(rejected) >= 6 and all(r.gap_in_se > 4 for r in rejected)
    names = " ".join(r.name for r in rejected)
    assert "published SDE's law" in names and "lemma form" in names and "linearised law" in names


@pytest.mark.slow
def test_every_statistical_row_detects_its_mutants(rows):
    """Mutation test of every statistical check (scaling rows: see the next test)."""
    assert len(_statistical_rows_detect_their_mutants(rows)) >= 30


def test_scaling_check_fails_with_a_wrong_rule():
    wrong = {"sgd": 0.5, "signsgd": 1.0, "adam": 1.0, "adamw": 1.0}  # square-root rule for SGD, linear for the others
    bad = check_scaling(Sim(paths=400), eta_exponents=wrong)  # fails by 13 to 18 SE (the right rule: <= 1.1 SE)
    for optimizer in wrong:
        mine = [r for r in bad if r.name.startswith(f"{optimizer} ")]
        assert mine and any(not r.ok for r in mine), table(mine)


def test_resolution_is_printed_and_a_wrong_prediction_fails():
    row = Row("made up", "x", predicted=1.0, estimate=1.5, se=0.01, seconds=0.0, mutants={"half": 0.5})
    assert not row.ok and math.isclose(row.gap_in_se, 50.0) and math.isclose(row.resolution, 0.04)
    assert replace(row, predicted=1.5).ok and replace(row, predicted=1.5).mutant_detected("half")
    text = table([row])
    assert "res. %" in text and "4.00" in text


def test_plots_are_written(tmp_path, few_rows):
    paths = draw(few_rows, tmp_path)
    assert len(paths) == 3 and all(p.is_file() and p.stat().st_size > 1000 for p in paths)


def test_cli_check_subset(capsys):
    assert main(["check", "--only", "signsgd-speed", "--paths", "1000"]) == 0
    out = capsys.readouterr().out
    assert "SignSGD linear-phase decay rate" in out and "3 passed, 0 failed, 0 shown without a verdict" in out
    assert main(["check", "--only", "sgd-cauchy,adam-laws", "--paths", "1000", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert not data["failed"] and all("resolution" in r and r["mutants"] is not None for r in data["rows"])
    assert main(["check", "--only", "nope"]) == 2
    assert set(CHECKS) >= {"adam-laws", "signsgd-exact", "sgd-cauchy"}


def _numbers(rows: list[Row]) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in rows]


def _backwards_through_pickle(fn, tasks):
    """An executor's map, as far as the numbers can tell: last task first, each sent through pickle."""
    return [fn(pickle.loads(pickle.dumps(task))) for task in reversed(tasks)][::-1]


def test_tasks_do_not_depend_on_their_order_or_process(few_rows):
    """Each task's seed comes from its case: SGD's and Adam's tasks run backwards, each through
    pickle (as an executor sends it to another process), give the numbers of the fixture's run."""
    names = ("sgd", "adam-laws")
    mine = run_checks(list(names), Sim(paths=1000), progress=None, map_tasks=_backwards_through_pickle)
    assert _numbers(mine) == _numbers([r for r in few_rows if r.name in {m.name for m in mine}])
    assert len(mine) == sum(len(CHECKS[n].entries) for n in names) + 2  # adam-laws: two rows per case
    assert all(repr(pickle.loads(pickle.dumps(t))) == repr(t) for t in check_tasks(None, Sim(paths=1000)))


def test_adding_a_check_is_adding_a_table_entry():
    """The module docstring's example: one case more in the table is one check more, with one task;
    its rows with a verdict carry mutants (every statistical case of the table does)."""
    laplace = StationaryCase(
        "sgd-laplace",
        Combination("sgd", "laplace"),
        (
            Prediction(
                "SGD stationary loss, laplace",
                Law(Combination("sgd", "laplace")),
                mutants=(SIGMA_DOUBLED, Mutant("the Gaussian law", law=Law(SGD))),
            ),
        ),
        eta=0.002,
        seed=90,
    )
    checks = registry([*TABLE, laplace])
    assert list(checks)[:-1] == list(CHECKS) and [t.entry for t in checks["sgd-laplace"].tasks(Sim())] == [laplace]
    for case in (e for e in TABLE if isinstance(e, StationaryCase)):
        assert all(p.mutants for p in case.predictions if p.expect is True), case.label
    with pytest.raises(ValueError, match="distinct quantities"):
        replace(laplace, predictions=laplace.predictions * 2)


@pytest.mark.slow
def test_entries_with_close_mutants_run_enough_paths_to_reject_them():
    """At the report's check size (400 paths, burn-in and window 3) six entries did not reject their
    closest mutant (1.9 to 3.6 SE); they run at least MUTANT_PATHS paths, and every mutant fails."""
    sized = [e for e in TABLE if getattr(e, "min_paths", 0) == MUTANT_PATHS]
    labels = sorted(f"{e.check}: {e.label}" for e in sized)
    assert len(sized) == 6 and {e.check for e in sized} == {
        "signsgd",
        "sgd-cauchy",
        "heavy-tails",
        "lion",
        "signsgd_workers",
    }, labels
    rows = [row for e in sized for row in run_task(Task(e.check, e, Sim(paths=400, burn=3.0, window=3.0)))]
    missed = [(r.name, m, r.gap_in_se) for r in rows for m in r.mutants if not r.mutant_detected(m)]
    assert all(r.ok for r in rows) and not missed, table(rows)
    assert sum(len(r.mutants) for r in rows) >= 6
