"""Atomic file output: every file the tool writes appears whole or not at all.

Each writer writes a temporary file in the target's directory and renames it over the target
(``os.replace``, atomic on POSIX and Windows), so Ctrl-C, a crash or a second process writing the
same file never leaves a half-written .py, .json, .npz, .png or report behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then move it onto ``path``; returns ``path``."""
    path = Path(path)
    with _temporary_beside(path) as tmp:
        write(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_savez(path: str | Path, **arrays) -> Path:
    """``numpy.savez`` to ``path`` atomically (``path`` should end in .npz)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def atomic_savefig(fig, path: str | Path, **kwargs) -> Path:
    """``fig.savefig`` to ``path`` atomically; the format is taken from the suffix of ``path``."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip(".") or "png")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, **kwargs))
