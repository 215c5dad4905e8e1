"""Pieces shared by the report's sections: number formats and the fidelity tables of sections 3 and 4."""

from __future__ import annotations

import math

from .tasks import Results, TaskFailed


def num(v: float) -> str:
    return "n/a" if not math.isfinite(v) else (f"{v:.4f}" if abs(v) < 10 else f"{v:.3g}")


def fidelity_row(prefix: str, result, seconds: float) -> str:
    """One table row: each SDE's fidelity with its SE and interval, the resolved differences, the time."""

    def cell(label):
        f = result.fidelity.get(label)
        if f is None:
            return "-"
        if not math.isfinite(f.value):
            return "n/a"
        mark = " (diverged)" if result.trajectories[label].diverged else ""
        se = f" +- {num(f.se)}" if math.isfinite(f.se) else ""
        return f"{num(f.value)}{se} [{num(f.low)}, {num(f.high)}]{mark}"

    return (
        f"| {prefix} | {cell('full')} | {cell('published')} | {cell('noise-dominated')} | "
        f"{cell('optimizer replicate')} | {resolved_differences(result)} | {seconds:.0f} |"
    )


def resolved_differences(result) -> str:
    """The differences between SDEs whose paired 95% interval excludes 0, as 'a < b'; or 'none'."""
    return "; ".join(f"{d.a} {'<' if d.value < 0 else '>'} {d.b}" for d in result.differences if d.resolved) or "none"


FIDELITY_HEAD = [
    "| optimizer | full SDE | published SDE | noise-dominated SDE | optimizer replicate (independent noise) "
    "| resolved differences (paired 95% interval excludes 0) | s |",
    "|---|---|---|---|---|---|---|",
]


def verdicts(results) -> list[str]:
    """Per run with a noise-dominated SDE: is the better of ours better, resolved by the paired difference?"""
    out = []
    for r in results:
        nd = r.fidelity.get("noise-dominated")
        ours = [
            (kind, r.fidelity[kind])
            for kind in ("full", "published")
            if kind in r.fidelity and math.isfinite(r.fidelity[kind].value)
        ]
        if nd is None or not ours or not math.isfinite(nd.value):
            continue
        label, best = min(ours, key=lambda p: p[1].value)
        diff = next((d for d in r.differences if d.a == label and d.b == "noise-dominated"), None)
        where = f"{r.model}/{r.optimizer}, sigma {r.sigma:g}"
        gap = "" if diff is None else f" (paired difference {num(diff.value)} +- {num(diff.se)})"
        if best.value < nd.value and diff is not None and diff.resolved:
            out.append(
                f"- {where}: ours ({label}, {best.value:.4f}) tracks better than noise-dominated ({num(nd.value)}){gap}; "
                "resolved."
            )
        elif best.value < nd.value:
            out.append(
                f"- {where}: ours ({label}, {best.value:.4f}) is nominally better than noise-dominated "
                f"({nd.value:.4f}){gap}, NOT resolved at this number of {r.unit}."
            )
        else:
            out.append(
                f"- {where}: ours ({label}, {best.value:.4f}) is NOT better than noise-dominated ({nd.value:.4f}){gap}."
            )
    return out


def integrator(pair: tuple) -> str:
    scheme, substeps = pair
    return f"{scheme} with {substeps} substep{'s' if substeps > 1 else ''} of eta/{substeps} per optimizer step"


def value_or_error(results: Results, key: str):
    """``(value, None)``, or ``(None, 'ErrorType: message')`` for a task that failed."""
    try:
        return results.value(key), None
    except TaskFailed as exc:
        return None, str(exc)
