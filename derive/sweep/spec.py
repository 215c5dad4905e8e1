"""A sweep file (TOML) read as data, checked against the command's own options, and its tasks.

::

    command = "weak-order"            # a derive subcommand with --format json
    [grid]                            # option -> list of values; the product is the set of tasks
    optimizer = ["sgd", "signsgd"]    # the positional OPT is called optimizer
    landscape = ["quadratic", "double-well"]
    [fixed]                           # option -> one value
    etas = "0.08,0.04"
    paths = 2000

Option names are the command's long options without the dashes, underscores for inner dashes
(``--from-initial`` is ``from_initial``); a flag takes ``true`` or ``false``; a repeatable option
(``--hyper``) takes a list. A task's key is a content hash of the command and its options; its seed
(where the command takes ``--seed`` and the file does not set it) comes from that key, never from
the order in which tasks are scheduled.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import DeriveError

#: options a sweep sets itself, or refuses because every task would write the same file
SET_BY_SWEEP = {"format": "the sweep asks every task for --format json"}
WRITES_FILES = ("out", "plot", "plots")
_CODE = re.compile(r"\.py:")


class SweepError(DeriveError):
    """A sweep file or directory the tool cannot accept."""


@dataclass(frozen=True)
class SweepTask:
    """One run of the command: its place in the grid, its key, options and command line."""

    index: int
    key: str
    grid: dict[str, object]  #: this task's value of each grid option
    options: dict[str, object]  #: every option given (fixed, grid, and a seed derived from the key)
    argv: tuple[str, ...]  #: the command's arguments (without the command's name)


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file and its tasks (the product of the grid, in the file's order)."""

    path: Path
    text: str
    command: str
    grid: dict[str, list]
    fixed: dict[str, object]
    tasks: tuple[SweepTask, ...]
    seeded: bool  #: whether each task's seed comes from its key


@cache
def _parser() -> argparse.ArgumentParser:
    from ..cli.commands import command_parser

    return command_parser()


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser, by name."""
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def sweepable_commands() -> list[str]:
    """The subcommands with ``--format json``."""
    return sorted(name for name, p in command_parsers().items() if _prints_json(p))


def _prints_json(parser: argparse.ArgumentParser) -> bool:
    action = _options(parser).get("format")
    return action is not None and "json" in (action.choices or ())


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A command's options by their sweep names: the long option without dashes, '-' -> '_';
    positionals by their dest (``optimizer``)."""
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        longs = [o for o in action.option_strings if o.startswith("--")]
        if action.option_strings and not longs:
            continue
        out[longs[0][2:].replace("-", "_") if longs else action.dest] = action
    return out


def load_sweep(path: str | Path, *, allow_code: bool = False) -> Sweep:
    """Read and check a sweep file; every error is one line naming the key or value at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"cannot read the sweep file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)  # TOML is data: nothing in it runs
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from None
    return parse_sweep(data, path=path, text=text, allow_code=allow_code)


def parse_sweep(data: dict, *, path: Path, text: str = "", allow_code: bool = False) -> Sweep:
    """The sweep described by a parsed TOML document."""
    where = str(path)
    extra = sorted(set(data) - {"command", "grid", "fixed"})
    if extra:
        raise SweepError(f"{where}: unknown key(s) {', '.join(extra)}; a sweep file has command, [grid] and [fixed]")
    commands = sweepable_commands()
    command = data.get("command")
    if not isinstance(command, str):
        raise SweepError(f'{where}: give the command to run, e.g. command = "weak-order"; one of {", ".join(commands)}')
    parsers = command_parsers()
    if command not in parsers:
        raise SweepError(f"{where}: unknown command {command!r}; a sweep runs one of {', '.join(commands)}")
    if command not in commands:
        raise SweepError(
            f"{where}: command {command!r} has no --format json, so a sweep cannot record its result; "
            f"a sweep runs one of {', '.join(commands)}"
        )
    grid, fixed = data.get("grid", {}), data.get("fixed", {})
    for name, table in (("grid", grid), ("fixed", fixed)):
        if not isinstance(table, dict):
            raise SweepError(f"{where}: {name} must be a table [{name}] of option = value lines")
    options = _options(parsers[command])
    for name in [*grid, *fixed]:
        _check_option(where, command, options, name)
    both = sorted(set(grid) & set(fixed))
    if both:
        raise SweepError(f"{where}: option(s) {', '.join(both)} in both [grid] and [fixed]; give each once")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: [grid] {name} = {values!r}: give a non-empty list of values, e.g. [1, 2]")
        for value in values:
            _check_value(where, "grid", name, value, options[name])
    for name, value in fixed.items():
        _check_value(where, "fixed", name, value, options[name])
    if not allow_code:
        for name, value in [*fixed.items(), *((n, v) for n, vs in grid.items() for v in vs)]:
            if any(_CODE.search(str(v)) for v in (value if isinstance(value, list) else [value])):
                raise SweepError(
                    f"{where}: {name} = {value!r} names a Python file, which runs as code on every worker; "
                    "add --allow-code if you mean it"
                )
    seeded = "seed" in options and "seed" not in grid and "seed" not in fixed
    tasks = []
    names = list(grid)
    for index, combo in enumerate(itertools.product(*(grid[n] for n in names))):
        values = dict(zip(names, combo, strict=True))
        opts = {**fixed, **values}
        key = task_key(command, opts)
        if seeded:
            opts["seed"] = int(key[:7], 16)  # from the key: the same task gets the same seed wherever it runs
        argv = _argv(options, opts)
        _check_argv(where, command, values, argv)
        tasks.append(SweepTask(index, key, values, opts, argv))
    return Sweep(path, text, command, dict(grid), dict(fixed), tuple(tasks), seeded)


def task_key(command: str, options: dict) -> str:
    """A content hash of the command and its options (16 hex digits of SHA-256)."""
    blob = json.dumps({"command": command, "options": options}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_option(where: str, command: str, options: dict, name: str) -> None:
    if name in SET_BY_SWEEP:
        raise SweepError(f"{where}: option {name!r} is not yours to set in a sweep: {SET_BY_SWEEP[name]}")
    if name in WRITES_FILES and name in options:
        raise SweepError(
            f"{where}: option {name!r} writes files, and every task would write the same ones; a sweep keeps "
            "each task's JSON in results.parquet (draw with `derive sweep plot`)"
        )
    if name not in options:
        allowed = ", ".join(n for n in options if n not in SET_BY_SWEEP and n not in WRITES_FILES)
        raise SweepError(f"{where}: unknown option {name!r} for {command}; its options: {allowed}")


def _check_value(where: str, table: str, name: str, value: object, action: argparse.Action) -> None:
    flag = isinstance(action, argparse._StoreTrueAction)
    repeat = isinstance(action, argparse._AppendAction)
    scalars = (bool,) if flag else (str, int, float)
    values = value if repeat and isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, scalars) or (not flag and isinstance(v, bool)):
            kind = "true or false" if flag else "a string or a number" + (" (or a list of them)" if repeat else "")
            raise SweepError(f"{where}: [{table}] {name} = {value!r}: {name} takes {kind}")


def _argv(options: dict[str, argparse.Action], values: dict) -> tuple[str, ...]:
    """The command line of one task: positionals in the command's order, then the options."""
    positional = [str(values[n]) for n, a in options.items() if not a.option_strings and n in values]
    rest: list[str] = []
    for name, value in values.items():
        action = options[name]
        if not action.option_strings:
            continue
        flag = [o for o in action.option_strings if o.startswith("--")][0]
        if isinstance(action, argparse._StoreTrueAction):
            rest += [flag] if value else []
        else:
            for v in value if isinstance(value, list) else [value]:
                rest.append(f"{flag}={v}")  # '=': a value may start with '-'
    if "quiet" in options:
        rest.append("--quiet")
    return (*positional, *rest, "--format=json")


def _check_argv(where: str, command: str, values: dict, argv: tuple[str, ...]) -> None:
    """Parse the task's command line as the command would, so a bad value stops the sweep before it
    starts (argparse's own message, one line)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _parser().parse_args([command, *argv])
    except SystemExit:
        message = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "invalid arguments"
        at = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "the fixed options"
        raise SweepError(f"{where}: task {at}: {message}") from None
