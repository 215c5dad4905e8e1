"""`derive check` rows of the new built-ins, and SignSGD under Student-t with a real nu end to end.

Each statistical check is paired with a mutation (the SDE simulated at a wrong sigma) that it must
reject, so that none passes vacuously.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from derive.cli import main
from derive.combination import Combination
from derive.theory.checks import CHECKS, Sim
from derive.theory.montecarlo import stationary_pair

LAM = [1.0, 4.0]


@pytest.fixture(scope="module")
def lion_rows():
    return CHECKS["lion"](Sim())


@pytest.mark.parametrize(
    "name", [pytest.param("sgdm", marks=pytest.mark.slow), pytest.param("signum", marks=pytest.mark.slow), "lion"]
)
def test_new_checks_pass(name, lion_rows):
    rows = lion_rows if name == "lion" else CHECKS[name](Sim())
    assert [r.expect_equal for r in rows] == [None, True]
    assert all(r.ok for r in rows), [(r.name, r.gap_in_se, r.note) for r in rows]


def test_lion_gap_is_resolved_and_shrinks_like_eta(lion_rows):
    """Lion's O(eta) bias is resolved at eta = 0.04; the row then tests its scaling, not a bare 4 SE."""
    rows = lion_rows
    assert rows[0].gap_in_se > 4 and "shrinks like eta" in rows[1].name and rows[1].ok


def test_check_rejects_a_wrong_sde():
    """SGDM with the SDE's sigma 5% too large (stationary loss about 10% too large): the verdict row fails."""
    (sgdm,) = CHECKS["sgdm"].entries
    rows = replace(sgdm, label="SGDM mutated", sde_sigma_scale=1.05).rows(Sim())
    assert not rows[1].ok, (rows[1].gap_in_se, rows[1].note)


@pytest.mark.slow
def test_signsgd_real_nu_stationary_loss_matches_optimizer():
    """SignSGD under Student-t nu = 2.5 (SDE kernels through the Numba incomplete beta function): the
    SDE's stationary loss within 4 SE of the optimizer's at a small step; sigma 10% off is rejected."""
    combo = Combination("signsgd", "student-t", nu=2.5)
    (opt, opt_se), (sde, sde_se) = stationary_pair(combo, LAM, 0.005, 1.0, Sim(), burn=6.0)
    se = math.hypot(opt_se, sde_se)
    assert abs(opt - sde) <= 4 * se, (opt, sde, se)
    assert 4 * se / opt < 0.05  # resolution: better than 5% of the loss
    (opt_m, opt_se_m), (sde_m, sde_se_m) = stationary_pair(combo, LAM, 0.005, 1.0, Sim(), burn=6.0, sde_sigma_scale=1.1)
    assert abs(opt_m - sde_m) > 4 * math.hypot(opt_se_m, sde_se_m)


@pytest.mark.slow
def test_simulate_cli_real_nu(capsys):
    args = [
        "simulate",
        "signsgd",
        "--noise",
        "student-t",
        "--nu",
        "2.5",
        "--compare",
        "optimizer,full",
        "--dim",
        "2",
        "--paths",
        "400",
        "--steps",
        "100",
        "--eta",
        "0.01",
        "--sigma",
        "1",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "signsgd | student-t" in out and "SDE paper/full" in out and "max gap to optimizer" in out
