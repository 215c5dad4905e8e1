"""`derive check --only correlated` (reference section 9): the discrete optimizer's stationary covariance under
correlated noise on a full H against the linearised law. The default run takes the SignSGD entry at a reduced
size (its closest mutant, r in place of (2/pi) asin(r), is rejected at about 12 SE there); every entry runs
in the slow full check test (tests/test_checks.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from derive.combination import Combination
from derive.correlation import NoiseModel
from derive.theory.check_table import TABLE
from derive.theory.checks import CHECKS, Sim, run_task
from derive.theory.checks_correlated import CorrelatedCase, discrete_moments


def test_correlated_check_is_a_table_entry_per_optimizer():
    entries = CHECKS["correlated"].entries
    assert [e.combination.optimizer for e in entries] == ["sgd", "signsgd", "adam"]
    assert all(isinstance(e, CorrelatedCase) and e in TABLE for e in entries)
    assert all(np.count_nonzero(e.hessian - np.diag(np.diag(e.hessian))) for e in entries)  # a full H


def test_signsgd_row_passes_and_rejects_its_mutants():
    (signsgd,) = [e for e in CHECKS["correlated"].entries if e.combination.optimizer == "signsgd"]
    task = CHECKS["correlated"].tasks(Sim(paths=400, burn=3.0, window=3.0))[1]
    assert task.entry is signsgd
    (row,) = run_task(task)
    assert row.ok, (row.predicted, row.estimate, row.se)
    assert set(row.mutants) == {
        "r = 0 (Sigma's diagonal only)",
        "H's off-diagonal dropped",
        "r in place of (2/pi) asin(r)",
    }
    missed = [name for name in row.mutants if not row.mutant_detected(name)]
    assert not missed, (missed, row.mutants, row.estimate, row.se)


def test_the_arcsine_mutant_puts_r_in_place_of_the_arcsine():
    """The mutant law evaluated at r' = sin(pi r/2) has the pair covariance eta (2/pi) asin(r') = eta r."""
    (signsgd,) = [e for e in CHECKS["correlated"].entries if e.combination.optimizer == "signsgd"]
    wrong = signsgd.law(r=math.sin(math.pi * signsgd.r / 2))
    _, B = wrong.system.numeric()
    assert B[0, 1] == pytest.approx(signsgd.eta * signsgd.r, rel=1e-12)


def test_discrete_moments_are_reproducible_and_see_the_correlation():
    """Same seed, same numbers; with H = I and SGD the time-averaged x1 x2 follows Sigma's sign."""
    H = np.eye(2)
    kwargs = dict(eta=0.05, hyper={}, paths=200, burn_steps=40, window_steps=40, seed=3)
    plus = discrete_moments(Combination("sgd"), H, NoiseModel.correlated(0.9, 2), **kwargs)
    again = discrete_moments(Combination("sgd"), H, NoiseModel.correlated(0.9, 2), **kwargs)
    minus = discrete_moments(Combination("sgd"), H, NoiseModel.correlated(-0.9, 2), **kwargs)
    assert np.array_equal(plus, again)
    assert plus[:, 0, 1].mean() > 0 > minus[:, 0, 1].mean()
