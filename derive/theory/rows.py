"""Rows of `derive check`: a prediction, a Monte Carlo estimate with its standard error, a verdict.

A row agrees when |estimate - prediction| <= 4 SE. Each row also states its **resolution**, the
smallest relative gap it could detect at 4 SE (4 SE / |prediction|), and carries **mutants**:
predictions of deliberately wrong formulas (sigma doubled, the momentum factor dropped, ...)
computed by the same derivation with the error put in. A statistical row earns its place only if
every mutant fails it (tests/test_checks.py asserts so). Rows with ``expect_equal=False`` must
*not* agree (a rejected law: the gap must be resolved); rows with ``expect_equal=None`` are shown
without a verdict (e.g. a mean under infinite variance, where an SE means nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

#: agreement threshold in standard errors
K_SE = 4.0


@dataclass
class Sim:
    """Monte Carlo sizes: paths and the burn-in / averaging windows in SDE time."""

    paths: int = 4000
    burn: float = 6.0
    window: float = 6.0
    seed: int = 11


@dataclass
class Row:
    name: str
    symbolic: str
    predicted: float
    estimate: float
    se: float
    seconds: float
    note: str = ""
    expect_equal: bool | None = True  # False: passes when NOT within 4 SE; None: shown, no verdict
    series: str = ""  # for plots: which curve the row belongs to
    x: float = math.nan  # for plots: the abscissa (sigma, nu, ...)
    mutants: dict[str, float] = field(default_factory=dict)  # wrong formula -> its prediction

    @property
    def gap_in_se(self) -> float:
        gap = abs(self.estimate - self.predicted)
        if self.se > 0:
            return gap / self.se
        return 0.0 if gap == 0 else math.inf

    @property
    def relative_gap(self) -> float:
        """(estimate - prediction) / |prediction|."""
        if self.predicted == 0 or not math.isfinite(self.predicted):
            return math.nan
        return (self.estimate - self.predicted) / abs(self.predicted)

    @property
    def resolution(self) -> float:
        """The smallest relative gap this row detects at 4 SE: 4 SE / |prediction|."""
        if self.predicted == 0 or not math.isfinite(self.predicted):
            return math.nan
        return K_SE * self.se / abs(self.predicted)

    @property
    def ok(self) -> bool:
        return self.expect_equal is None or bool(self.gap_in_se <= K_SE) == self.expect_equal

    def mutant_detected(self, name: str) -> bool:
        """Whether the row rejects the mutant prediction ``name`` (it must, for a row to count)."""
        return not replace(self, predicted=self.mutants[name], expect_equal=True).ok

    def to_dict(self) -> dict:
        def num(v: float):
            return float(v) if math.isfinite(v) else str(v)

        return {
            "name": self.name,
            "symbolic": self.symbolic,
            "predicted": num(self.predicted),
            "estimate": num(self.estimate),
            "se": num(self.se),
            "gap_in_se": num(self.gap_in_se),
            "relative_gap": num(self.relative_gap),
            "resolution": num(self.resolution),
            "expect_equal": self.expect_equal,
            "ok": self.ok,
            "seconds": self.seconds,
            "note": self.note,
            "mutants": {k: {"predicted": num(v), "detected": self.mutant_detected(k)} for k, v in self.mutants.items()},
        }


def _pct(value: float) -> str:
    return f"{100 * value:+.2f}" if math.isfinite(value) else "n/a"


def table(rows: list[Row]) -> str:
    """The rows as a text table; notes as numbered footnotes below it."""
    head = (
        f"{'check':80s} {'predicted':>11s} {'simulated':>11s} {'SE':>9s} {'gap %':>8s} {'gap/SE':>7s} "
        f"{'res. %':>7s} {'agree':>6s} {'time s':>7s}"
    )
    lines = [head, "-" * len(head)]
    notes: list[str] = []
    for r in rows:
        agree = "yes" if r.ok else "NO"
        if r.expect_equal is False:
            agree = "yes*" if r.ok else "NO*"
        elif r.expect_equal is None:
            agree = "n/a"
        name = r.name[:74]
        if r.note:
            if r.note not in notes:
                notes.append(r.note)
            name = f"{name} [{notes.index(r.note) + 1}]"
        resolution = f"{100 * r.resolution:.2f}" if math.isfinite(r.resolution) else "n/a"
        lines.append(
            f"{name:80s} {r.predicted:11.5g} {r.estimate:11.5g} {r.se:9.2g} {_pct(r.relative_gap):>8s} "
            f"{r.gap_in_se:7.1f} {resolution:>7s} {agree:>6s} {r.seconds:7.1f}"
        )
    lines.append(
        "res. %: the smallest relative gap the row detects at 4 SE. agree*: a row that must NOT agree "
        "(the simulation rejects the compared law); n/a: shown without a verdict."
    )
    lines += [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    failed = [r for r in rows if not r.ok]
    shown = sum(r.expect_equal is None for r in rows)
    total = sum(r.seconds for r in rows)
    return (
        f"{len(rows) - len(failed) - shown} passed, {len(failed)} failed, {shown} shown without a verdict "
        f"({total:.0f} s of simulation)"
    )


def to_dict(rows: list[Row]) -> dict:
    failed = [r.name for r in rows if not r.ok]
    return {
        "rows": [r.to_dict() for r in rows],
        "passed": sum(r.ok and r.expect_equal is not None for r in rows),
        "failed": failed,
        "shown": sum(r.expect_equal is None for r in rows),
    }
