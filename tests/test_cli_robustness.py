"""The command line as a user meets it: a closed pipe, an interrupted write, clear exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from derive.io import atomic_savez, atomic_write_text


@pytest.mark.parametrize("command, first", [("sde adam --format json", "{"), ("catalog", "SDE of sgd")])
def test_a_closed_pipe_ends_quietly(command, first):
    """`catalog` writes far more than a pipe holds, so the reader is gone while it still prints
    (before the fix: a BrokenPipeError traceback)."""
    res = subprocess.run(f"{sys.executable} -m derive {command} | head -1", shell=True, capture_output=True, text=True)
    assert res.stdout.startswith(first) and res.stderr == ""


def test_an_interrupted_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("previous, complete")

    class Interrupted(BaseException):
        pass

    def write(tmp):
        tmp.write_text("half of the new cont")
        raise Interrupted  # Ctrl-C in the middle of writing

    from derive.io import atomic_write

    with pytest.raises(Interrupted):
        atomic_write(target, write)
    assert target.read_text() == "previous, complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary file left behind
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and oct(target.stat().st_mode & 0o777) != oct(0o600)
    atomic_savez(tmp_path / "a.npz", x=[1.0, 2.0])
    assert (tmp_path / "a.npz").stat().st_size > 0


def test_version_is_the_package_metadata_version():
    from importlib.metadata import version

    res = subprocess.run([sys.executable, "-m", "derive", "--version"], capture_output=True, text=True)
    assert res.stdout.strip() == f"derive {version('derive-sde')}"
