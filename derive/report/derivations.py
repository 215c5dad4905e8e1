"""Section 1: a selection of derived SDEs (`derive sde`), one task each."""

from __future__ import annotations

from .setting import Setting
from .tasks import ReportTask, Results

NAME = "derivations"


def derivation(optimizer: str, regime: str, form: str) -> str:
    """The text of the SDE of ``optimizer`` under Gaussian noise (a report task)."""
    from ..engine import derive_sde

    return derive_sde(optimizer, "gaussian", regime, form).to_text()


def _key(optimizer: str, regime: str, form: str) -> str:
    return f"{NAME}/{optimizer}/{regime}/{form}"


def tasks(setting: Setting) -> list[ReportTask]:
    return [ReportTask(_key(*d), derivation, d, weight=2.0) for d in setting.derivations]


def render(setting: Setting, results: Results, out, raw: dict) -> list[str]:
    lines = [
        "## 1. Derived SDEs (a selection)",
        "",
        "Each is derived from the optimizer's update rule by `derive sde` (reference sections 2-4).",
        "",
        "```text",
    ]
    for d in setting.derivations:
        key = _key(*d)
        outcome = results.outcomes[key]
        lines.append(outcome.value.value if outcome.ok else f"{d[0]} {d[1]}/{d[2]}: FAILED: {outcome.error}")
        lines += [f"  ({outcome.seconds:.2f} s)", ""]
    return lines + ["```", ""]
