"""`derive compile [OPT ...]`: warm the Numba cache of the built-in simulators (for cluster images
and CI), so that later runs load compiled kernels instead of compiling them.

For each named built-in optimizer (all by default) and each of its modules in generated/, float64
and float32: the path loops that a run compiles (the SDE under euler and weak2, alone and coupled
with the optimizer; the optimizer alone) and the one-step kernels (``sde_step``, ``hvp_vector``,
``optimizer_step``; not for the modules whose steps need a gradient at another point or the
Hessian times the noise, which have none), each called once at a tiny size. Runs on user landscapes are never cached
(Numba cannot key a cache on a function argument), so there is nothing to warm for them.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import DeriveError

DTYPES = (np.float64, np.float32)


def warm(combo) -> None:
    """Compile (or load from the cache) every cacheable kernel of ``combo``'s module, both dtypes."""
    from .. import simulate as sim

    module = sim.load_module(combo)
    values = sim.hyperparameters(combo.optimizer, 0.01, 1.0)
    common = dict(eta=0.01, sigma=1.0, steps=2, seed=0, landscape=sim.quadratic([1.0, 2.0]), record=np.array([2]))
    for dtype in DTYPES:
        x0 = np.zeros((2, 2), dtype)
        sim.run("optimizer", combo, x0, **common)
        po = np.array([values[n] for n in module.OPT_PARAMS], dtype)
        draws = len(getattr(module, "OPT_DRAWS", ("zeta",)))
        ones = np.ones((len(module.OPT_STATE), 2, 2), dtype)
        if not getattr(module, "OPT_POINT", False):  # grad(P): no single-step interface (run_paths only)
            module.optimizer_step(ones, np.zeros((2, 2), dtype), np.zeros((draws, 2, 2), dtype), 1, po)
        if module.SDE_UNAVAILABLE:
            continue
        for scheme in sim.SCHEMES:
            sim.run("sde", combo, x0, scheme=scheme, **common)
            if module.COUPLING is not None:
                sim.run_coupled(combo, x0, scheme=scheme, **common)
        if getattr(module, "SDE_POINT", False) or getattr(module, "HESSIAN_NOISE", False):
            continue  # gradf(P) or noise through the Hessian: no single-step interface
        p = np.array([values[n] for n in module.SDE_PARAMS], dtype)
        state, g = np.ones((len(module.STATE), 2, 2), dtype), np.zeros((2, 2), dtype)
        xi = np.zeros((module.NOISE_SOURCES, 2, 2), dtype)
        if module.HVP:
            u = np.zeros((2, 2), dtype)
            module.hvp_vector(state, g, 0.01, 0.01, p, u)
            module.sde_step(state, g, xi, 0.01, 0.01, p, u)
        else:
            module.sde_step(state, g, xi, 0.01, 0.01, p)


def _cmd_compile(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..codegen.catalog import builtin_combinations
    from ..optimizers import BUILTINS

    names = args.optimizers or list(BUILTINS)
    unknown = [n for n in names if n not in BUILTINS]
    if unknown:
        raise DeriveError(f"unknown built-in optimizer(s) {', '.join(unknown)}; allowed: {', '.join(BUILTINS)}")
    combos = [c for c in builtin_combinations() if c.optimizer in names]
    for combo in tqdm(combos, desc="derive compile", unit="module"):
        warm(combo)
    print(f"compiled {len(combos)} module(s), float64 and float32: {', '.join(names)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `compile` to the ``derive`` parser."""
    p = subparsers.add_parser("compile", help="warm the Numba cache of the built-in simulators (both dtypes)")
    p.add_argument("optimizers", nargs="*", metavar="OPT", help="built-in optimizers (default: all)")
    p.set_defaults(func=_cmd_compile)
