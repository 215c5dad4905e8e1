"""Section 2: the `derive check` table at the report's Monte Carlo size, one task per table entry.

The section states, computed from the rows, how many deliberately wrong predictions (mutants) the
rows reject: a row counts only if every one of its mutants fails it (tests/test_checks.py).
"""

from __future__ import annotations

from ..combination import Combination
from ..theory.cases import FiniteHorizonCase, OneOff, SdeGapCase, StationaryCase
from ..theory.checks import CHECKS, Sim, check_tasks, run_task, summary, table, to_dict
from ..theory.checks_correlated import CorrelatedCase
from .setting import Setting
from .tasks import Kernel, ReportTask, Results

NAME = "checks"
#: the kernels of the one-off checks that no case of the table compiles as well
ONE_OFF_KERNELS = {"sgd-cauchy": (Kernel("chain", Combination("sgd", "cauchy")),)}


def sim(setting: Setting) -> Sim:
    """The report's Monte Carlo size of the checks (each entry may ask for more paths: its min_paths)."""
    return Sim(paths=setting.check_paths, burn=setting.check_window, window=setting.check_window)


def kernels(entry: StationaryCase | SdeGapCase | FiniteHorizonCase | CorrelatedCase | OneOff) -> tuple[Kernel, ...]:
    """The kernels one entry of the check table compiles (a correlated-noise entry drives the optimizer's
    one-step kernel from NumPy: no path loop to warm; the step compiles in the task, each entry its own)."""
    if isinstance(entry, OneOff):
        return ONE_OFF_KERNELS.get(entry.check, ())
    if isinstance(entry, CorrelatedCase):
        return ()
    c = entry.combination
    chain = Kernel("chain", Combination(c.optimizer, c.noise, nu=c.nu))
    if isinstance(entry, FiniteHorizonCase):  # the optimizer's and the SDE's runs, and the mutant SDE's
        mutant = (Kernel("paths", entry.mutant),) if entry.mutant is not None else ()
        return (chain, Kernel("paths", c)) + mutant
    return (chain, Kernel("paths", c)) if isinstance(entry, SdeGapCase) else (chain,)


def tasks(setting: Setting) -> list[ReportTask]:
    return [
        ReportTask(f"{NAME}/{i:03d}/{t.check}", run_task, (t,), kernels=kernels(t.entry), weight=3.0)
        for i, t in enumerate(_tasks(setting))
    ]


def mutant_statement(rows) -> str:
    """How many mutants the rows reject, computed; names those they do not."""
    pairs = [(r, m) for r in rows for m in r.mutants]
    missed = [f"{r.name}: {m}" for r, m in pairs if not r.mutant_detected(m)]
    carrying = len({id(r) for r, _ in pairs})
    if not missed:
        return (
            f"Every mutant is rejected: all {len(pairs)} deliberately wrong predictions of the {carrying} rows that "
            "carry them fail their rows."
        )
    return f"{len(pairs) - len(missed)} of {len(pairs)} mutants rejected; NOT rejected: {'; '.join(missed)}."


def render(setting: Setting, results: Results, out, raw: dict) -> list[str]:
    from ..theory.plots import draw

    s = sim(setting)
    lines = [
        "## 2. Closed forms checked by simulation (`derive check`)",
        "",
        f"Monte Carlo size for the report: {s.paths} paths (more where a row needs them to reject its mutants), "
        f"burn-in {s.burn:g} and window {s.window:g} in SDE time (`derive check` defaults: 4000 paths, 6 and 6). "
        "Agreement: |estimate - prediction| <= 4 SE; `res. %` is the smallest relative gap a row detects at 4 SE; "
        "rows marked `yes*` must not agree (a law the simulation rejects, e.g. the published Adam SDE's); `n/a` "
        "rows are shown without a verdict. The `signsgd-exact` rows compare the SignSGD laws at eta lambda/sigma = "
        "0.5 (linearised, consistent second order, exact by quadrature, the SDE simulated with a fine step) and "
        "show the discrete optimizer's O(eta) gap to its order-1 SDE.",
        "",
    ]
    rows, errors = [], []
    for key, task in zip((t.key for t in tasks(setting)), _tasks(setting), strict=True):
        outcome = results.outcomes[key]
        if outcome.ok:
            rows += outcome.value.value
        else:
            errors.append(f"check `{task.check}` ({task.label}) could not run: {outcome.error}")
    if rows:
        raw["checks"] = to_dict(rows)
        failed = [r.name for r in rows if not r.ok]
        lines += ["```text", table(rows), "```", ""]
        lines += [summary(rows) + (f"; disagreeing: {', '.join(failed)}" if failed else "") + ".", ""]
        lines += [mutant_statement(rows), ""]
        try:
            lines += [f"![{p.stem}](checks/{p.name})" for p in draw(rows, out / "checks")]
        except Exception as exc:  # noqa: BLE001 - the report shows what failed and goes on
            errors.append(f"check plots failed: {exc}")
        lines.append("")
    return lines + [f"- {e}" for e in errors] + [""]


def _names(setting: Setting) -> list[str]:
    return list(CHECKS) if setting.checks is None else list(setting.checks)


def _tasks(setting: Setting):
    """The check tasks of the setting (none for an empty selection)."""
    names = _names(setting)
    return check_tasks(names, sim(setting)) if names else []
