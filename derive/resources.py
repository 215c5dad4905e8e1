"""Where the package finds its templates, its built-in generated modules and the user module cache.

In the repository, ``templates/`` and ``generated/`` sit at the top level beside the package (an
editable install uses them in place); a wheel maps them into the package as ``derive/templates``
and ``derive/generated`` (pyproject.toml). Modules generated on demand (user specs, other laws)
live in a per-user cache directory: ``$DERIVE_CACHE_DIR`` if set, else the platform's user cache
(``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on
Windows) plus ``derive/modules``. This module imports nothing heavy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _locate(name: str) -> Path:
    installed = _PACKAGE / name  # wheel: derive/<name>
    return installed if installed.is_dir() else _PACKAGE.parent / name  # source checkout: <repo>/<name>


TEMPLATES = _locate("templates")  #: the Jinja2 templates of the generated modules
GENERATED = _locate("generated")  #: the built-in generated modules


def user_cache_dir() -> Path:
    """The directory of modules generated on demand (created when first written to)."""
    override = os.environ.get("DERIVE_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "derive" / "modules"
