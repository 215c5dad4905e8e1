"""The golden set (tests/golden/record.py): every number the simulators and the commands built on
them gave when it was recorded, recomputed and compared exactly.

Exact, not approximate: the kernels are compiled without fast-math, the chunk sums are reduced in a
fixed order and every path has its own random stream, so a refactoring of the code generator, the
templates or the path loops that changes no arithmetic reproduces every bit; a change of numbers must
be deliberate and recorded again (``python tests/golden/record.py GROUP [--only NAME,...]``, in a
commit that says why). History: recorded at 7cc3b05, before the issue-16 refactor, which reproduced
every number; then the order-1 split step's x diffusion moved to the noise-free predictor (the
commit "Order-1 split step: ..." lists the cases it re-recorded); then the float32 SDE runs of the
variants (``sde_float32``, ``sde_float32_weak2``), which 5e4871f (AdaGrad's clock) had changed in
their last bits: the SDE's step time is the user's eta as a float64 since then, where it had been
read back from the float32 parameter vector (float32(eta), 0.05 -> 0.05000000074505806); and Lion's
four coupled-run refusals, whose message de17c0f reworded; then the variances of those float32 runs
and of ``optimizer_float32`` (``var`` only, last bits): the chunk sums of x^2 add float64 squares of
the widened state since the recording is shared across dtypes (``float()`` of a float32 is a float32
in Numba, so each square had been rounded to float32).

The default run recomputes a representative cheap subset (one module's runs, the kernels the
network validation calls, the coupled weak2 path of the weak-order study); everything else, which
compiles every built-in module and takes tens of minutes on 2 cores, is marked ``golden`` and runs
on demand (``python -m pytest -m golden``), before and after any change to the code generator, the
templates or the runtime; neither README's command nor ``.ci/run`` runs it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import record  # noqa: E402

#: (group, case) recomputed in the default run
CHEAP = {
    ("simulate", "signsgd_gaussian_paper_full"),
    ("simulate", "adam_gaussian_paper_full"),
    ("variants", "adam_gaussian_paper_full/kernels"),
    ("variants", "sgd_gaussian_paper_full_order2/kernels"),
    ("weak_order", "sgd"),
}


def _cases():
    for group in record.GROUPS:
        if not record.path_of(group).is_file():
            continue
        for name in record.load(group):
            marks = () if (group, name) in CHEAP else (pytest.mark.golden,)
            yield pytest.param(group, name, id=f"{group}/{name}", marks=marks)


def assert_same(got, want, where: str = "") -> None:
    """``got`` equals ``want`` exactly (NaN equals NaN), naming the first place where they differ."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and math.isnan(want):
        assert isinstance(got, float) and math.isnan(got), f"{where}: {got!r} != nan"
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("group, name", list(_cases()))
def test_golden_numbers_are_reproduced_exactly(group, name):
    (got,) = record.compute(group, [name], progress=False).values()
    assert_same(got, record.load(group)[name], f"{group}/{name}")


def test_the_comparison_fails_on_a_change_in_the_last_bit():
    """A mutation test of the comparison itself: one ulp anywhere, a missing key or a NaN for a
    number is a failure."""
    want = {"a": [1.0, 2.0, float("nan")], "b": {"c": "text"}}
    assert_same({"a": [1.0, 2.0, float("nan")], "b": {"c": "text"}}, want)
    for bad in (
        {"a": [1.0, math.nextafter(2.0, 3.0), float("nan")], "b": {"c": "text"}},
        {"a": [1.0, 2.0, 0.0], "b": {"c": "text"}},
        {"a": [1.0, 2.0, float("nan")], "b": {}},
        {"a": [1.0, 2.0], "b": {"c": "text"}},
    ):
        with pytest.raises(AssertionError):
            assert_same(bad, want)
