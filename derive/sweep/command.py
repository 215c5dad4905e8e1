"""One sweep task: a ``derive`` command run in this process, its JSON output captured.

The command's own handler runs (the same code as on the command line) with its standard output
captured for the calling thread only, so tasks on a multi-threaded worker do not mix their
output. Wall times (every ``seconds`` field) are dropped, so the result depends only on the
command and its options.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading

from ..errors import DeriveError

#: fields of the commands' JSON that hold wall times
WALL_TIME_KEYS = frozenset({"seconds"})


def run_command(command: str, argv: tuple[str, ...]) -> dict:
    """Run ``derive COMMAND ARGV...`` here; returns ``{"result": JSON text, "exit_status": int}``.

    A user error of the command raises :class:`~derive.errors.DeriveError` (its one-line message)."""
    from .spec import _parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = _parser().parse_args([command, *argv])
    except SystemExit:
        raise DeriveError(
            err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "bad arguments"
        ) from None
    with _captured_stdout() as out:
        status = int(args.func(args) or 0)
    text = out.getvalue()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise DeriveError(f"derive {command} printed no JSON (exit status {status}): {text[:200]!r}") from None
    return {"result": json.dumps(drop_wall_times(data), sort_keys=True), "exit_status": status}


def drop_wall_times(data: object) -> object:
    """``data`` without the fields in :data:`WALL_TIME_KEYS`, at any depth."""
    if isinstance(data, dict):
        return {k: drop_wall_times(v) for k, v in data.items() if k not in WALL_TIME_KEYS}
    if isinstance(data, list):
        return [drop_wall_times(v) for v in data]
    return data


class _PerThreadStdout(io.TextIOBase):
    """sys.stdout while tasks run: each capturing thread writes to its own buffer, others through."""

    def __init__(self, through):
        self.through, self.local = through, threading.local()

    def write(self, text: str) -> int:
        return (getattr(self.local, "buffer", None) or self.through).write(text)

    def flush(self) -> None:
        (getattr(self.local, "buffer", None) or self.through).flush()


_lock = threading.Lock()
_active = 0
_proxy: _PerThreadStdout | None = None


@contextlib.contextmanager
def _captured_stdout():
    """This thread's prints into a buffer; sys.stdout is restored once no task captures any more."""
    global _active, _proxy
    with _lock:
        if _active == 0:
            _proxy = _PerThreadStdout(sys.stdout)
            sys.stdout = _proxy
        _active += 1
        proxy = _proxy
    proxy.local.buffer = buffer = io.StringIO()
    try:
        yield buffer
    finally:
        del proxy.local.buffer
        with _lock:
            _active -= 1
            if _active == 0:
                sys.stdout, _proxy = proxy.through, None
