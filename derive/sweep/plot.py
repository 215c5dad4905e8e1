"""`derive sweep plot`: a figure from a sweep's table.

``--x`` and ``--y`` name a grid column or a field of the result JSON by dotted path (``runs.0.slope``,
list items by their index). Where both fields are lists of one length (``runs.0.etas`` and
``runs.0.errors``) each row is a line of its own; else each row is a point, joined into one line
per ``--hue`` value. ``--hue`` (a column or a path) colours the lines.
An axis is logarithmic where its values are positive and span a decade or more.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..io import atomic_savefig
from .spec import SweepError


def field(frame, name: str) -> list[object]:
    """One value per row of ``frame``: the column ``name``, or the dotted path ``name`` in ``result``."""
    if name in frame.columns:
        return list(frame[name])
    return [lookup(json.loads(text), name) if isinstance(text, str) else None for text in frame["result"]]


def lookup(data: object, path: str) -> object:
    """``data`` at the dotted ``path``; an error names the step that is missing and what is there."""
    here = data
    for i, step in enumerate(path.split(".")):
        done = ".".join(path.split(".")[:i]) or "the result"
        if isinstance(here, dict) and step in here:
            here = here[step]
        elif isinstance(here, list) and step.isdigit() and int(step) < len(here):
            here = here[int(step)]
        else:
            there = (
                f"keys {', '.join(map(str, here))}"
                if isinstance(here, dict)
                else f"a list of {len(here)}"
                if isinstance(here, list)
                else f"the value {here!r}"
            )
            raise SweepError(f"{path!r}: {done} has no {step!r}; it holds {there}")
    return here


def _number(value: object, axis: str, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SweepError(f"--{axis} {name}: {value!r} is not a number") from None
    return number if math.isfinite(number) else None


def series(frame, x: str, y: str, hue: str | None) -> list[tuple[str, list[tuple[float, float]]]]:
    """The lines to draw, as (hue, points sorted by x), from the rows whose status is ok: one line
    per row where the fields are lists, else one line per hue through the rows' points."""
    ok = frame[frame["status"] == "ok"]
    xs, ys = field(ok, x), field(ok, y)
    hues = field(ok, hue) if hue else [""] * len(xs)
    lines: list[tuple[str, list[tuple[float, float]]]] = []
    by_hue: dict[str, list[tuple[float, float]]] = {}
    for xv, yv, h in zip(xs, ys, hues, strict=True):
        if isinstance(xv, list) != isinstance(yv, list) or (isinstance(xv, list) and len(xv) != len(yv)):
            raise SweepError(
                f"--x {x} and --y {y} must both be single values, or lists of one length; got {xv!r} and {yv!r}"
            )
        pairs = [
            (_number(a, "x", x), _number(b, "y", y))
            for a, b in (zip(xv, yv, strict=True) if isinstance(xv, list) else [(xv, yv)])
        ]
        pts = [(a, b) for a, b in pairs if a is not None and b is not None]
        if isinstance(xv, list):
            lines.append((str(h), sorted(pts)))
        else:
            by_hue.setdefault(str(h), []).extend(pts)
    lines += [(h, sorted(p)) for h, p in by_hue.items()]
    return [(h, p) for h, p in lines if p]


def spans_decades(values: list[float]) -> bool:
    """Whether a log axis suits ``values``: all positive, largest / smallest >= 10."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 10


def sweep_figure(frame, x: str, y: str, hue: str | None, path: str | Path, title: str = "") -> Path:
    """Draw ``y`` against ``x`` (one line per ``hue``) to ``path``."""
    from matplotlib.figure import Figure

    lines = series(frame, x, y, hue)
    if not lines:
        raise SweepError(f"no point to draw: no ok row has numbers at --x {x} and --y {y}")
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    colors = {h: f"C{i % 10}" for i, h in enumerate(dict.fromkeys(h for h, _ in lines))}
    labelled = set()
    for h, pts in lines:
        label = h if h and h not in labelled else None
        labelled.add(h)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colors[h], label=label)
    every = [p for _, pts in lines for p in pts]
    if spans_decades([p[0] for p in every]):
        ax.set_xscale("log")
    if spans_decades([p[1] for p in every]):
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=9)
    if hue:
        ax.legend(title=hue, fontsize=8)
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=120)
