"""The run-time library of the generated simulators: random numbers, erf, noise samplers.

Generated modules (generated/ and user modules) hold only what differs between combinations, their
SDE and optimizer kernels, and import everything else from here; Numba compiles and inlines these
functions into each kernel. This package imports only NumPy and Numba.

Numba's on-disk cache keys a kernel by its own source file, not by the functions it calls from
other modules, so a change here would not invalidate the cached kernels of generated modules.
:func:`runtime_hash` is therefore written into every generated module (``RUNTIME_HASH``): a module
rendered against another runtime has a different text (so Numba recompiles it) and is regenerated
or refused by :func:`derive.simulate.load_module` (see docs/codegen.md).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def runtime_hash() -> str:
    """SHA-256 (hex, first 16 digits) of the source of every module of this package."""
    digest = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
