"""The path simulators of every generated module, written once: path loops, allocation, recording,
divergence checks, the weak2 pair and the coupled optimizer.

A generated module holds what differs between combinations (derive.codegen): the per-step constants
``_sde_consts`` / ``_opt_consts``, the coordinate updates ``_sde_update`` / ``_opt_update`` (one
substep of every coordinate of one path), the order-2 vector ``_sde_vector``, the noise draws
``_opt_draws`` and ``_zeta``, ``_coupled_normal``, and the constants named in :data:`MODULE_NAMES`.
:func:`bind` then compiles the loops below against those names, for that module alone.

**Binding.** Each loop is an ordinary function of this file. ``bind(namespace)`` gives it a new
function object whose globals are the module's names (plus this file's), and whose code object
says it comes from the module's file, then compiles it with ``numba.njit(cache=True)``. Numba
resolves globals at compile time, so the loops call the module's kernels directly (inlined by LLVM
where it pays); and Numba keys its on-disk cache by the function's source file, so the compiled
loops of each module are cached beside that module (``__pycache__``), invalidated with it (a changed
runtime changes every module's text through its RUNTIME_HASH), and never confused with another
module's. Binding the code object of *this* file unchanged would share one cache index across
modules whose globals differ: wrong code.

**Compile only what is called.** A loop's variants are selected by arguments that are ``None``
or not (Numba prunes ``if arg is None`` branches at compile time, so each variant compiles only
its own code): the coarse run of weak2 (its constants table), the coupled optimizer (its start), the
user landscape (its functions; those variants are not cached, since Numba cannot key a cache on a
function argument). Order-2 modules (``HVP``) add the Hessian-vector product, pruned elsewhere.

**Threads, not parfors.** The loops are plain ``nogil`` functions over a contiguous range of chunks
of paths; :func:`parallel_chunks` runs ranges on ``numba.get_num_threads()`` Python threads. Every
chunk writes its own rows of the outputs and its own chunk sums, so the results do not depend on
the number of threads. A ``parallel=True`` kernel would cost Numba's parfor passes at every
compile (about half of a module's cold compile, measured by bench/bench_simulate.py) for a loop
that needs none of their analysis.

Runs of one call (the first axis of the outputs): 0 the SDE (the fine run under weak2), 1 the
coarse run (weak2), last the optimizer (a coupled call, or an optimizer-only call).
"""

from __future__ import annotations

import itertools
import math
import os
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit

from .landscapes import grad as _land_grad
from .landscapes import hvp as _land_hvp
from .landscapes import loss as _land_loss
from .rng import normal as _normal
from .rng import seed_stream as _seed_stream
from .rng import stream_normals as _stream_normals
from .samplers import mixing as _mixing
from .schemes import SCHEMES, Scheme

__all__ = ["MODULE_NAMES", "PathRun", "PathOutput", "Simulators", "bind", "parallel_chunks"]

#: what a generated module defines for the loops (the kernel interface of a module; docs/codegen.md)
MODULE_NAMES = (
    "SDE_STREAM",
    "OPT_STREAM",
    "BIG",
    "HVP",
    "NOISE_SOURCES",
    "NCONST_SDE",
    "NCONST_OPT",
    "OPT_NDRAWS",
    "COUPLING_SIGN",
    "_sde_consts",
    "_sde_row",
    "_sde_update",
    "_sde_vector",
    "_opt_consts",
    "_opt_row",
    "_opt_update",
    "_opt_draws",
    "_zeta",
    "_coupled_normal",
)
#: what a generated module defines only where it needs it, with the value a module without it has:
#: a gradient at another point in the update rule (OPT_POINT, _opt_point: P of every coordinate) or
#: in the SDE's drift (SDE_POINT, _sde_point), noise through the Hessian (HESSIAN_NOISE: the step's
#: Hessian-vector product H u has u in the normals, _sde_vector takes them)
OPTIONAL_NAMES = {
    "OPT_POINT": False,
    "_opt_point": None,
    "SDE_POINT": False,
    "_sde_point": None,
    "HESSIAN_NOISE": False,
}


@dataclass
class PathRun:
    """One call of the path simulators, every input named once (built by derive.simulate).

    ``sde_start`` [S, N, d] (STATE order) runs the SDE, ``opt_start`` [O, N, d] (OPT_STATE order) the
    optimizer; both: a coupled run (the SDE's first Brownian motion takes COUPLING_SIGN sqrt(eta)
    n(zeta) of the optimizer's draws over each optimizer step, filled by a Brownian bridge). Their
    dtype is the kernels' float type. ``step_time``: the SDE time of one optimizer step (eta);
    ``scheme``, ``substeps``: the integrator; ``k0`` steps already taken (the SDE starts at
    t = k0 step_time, the optimizer's step count at k0 + 1); ``freeze`` holds x at its start
    (optimizer only: a burn-in of the auxiliary states). The landscape is a built-in one
    (``land_code``, derive.runtime.landscapes) unless ``grad_fn`` is given (user Numba functions
    grad_fn(x, lp, out), loss_fn(x, lp) and, for order-2 SDEs, hvp_fn(x, u, lp, out)).

    Noise correlated across coordinates (reference section 9; all None: independent, today's numbers
    bit for bit; every factor lower triangular): ``opt_factor`` F [d, d] makes the optimizer's standardized draws zeta = sqrt(W) F xi
    from its independent normals xi, W of the law ``opt_mixing`` ((code, nu), derive.runtime.samplers.mixing;
    None: Gaussian, W = 1); ``sde_factor`` L [K d, K d] (source-major, row k d + i)
    mixes each substep's K d independent normals into Brownian increments with covariance L L^T;
    ``sign_factor`` F_e [d, d] replaces the increments of the SDE's first Brownian motion by the
    moment-matched ones of a sign update, COUPLING_SIGN (sign(g + F_e xi) - mu) / sqrt(1 - mu^2),
    mu_j = erf(g_j / (sqrt(2) s_j)), s_j^2 = (F_e F_e^T)_jj, from the substep's normals xi. A coupled run
    bridges the SDE's first source to the optimizer's xi (not zeta): the factor then makes zeta."""

    sde_start: np.ndarray | None
    opt_start: np.ndarray | None
    sde_params: np.ndarray | None
    opt_params: np.ndarray | None
    land_params: np.ndarray
    steps: int
    record: np.ndarray
    seed: int
    land_code: int = 0
    grad_fn: Callable | None = None
    loss_fn: Callable | None = None
    hvp_fn: Callable | None = None
    step_time: float = 0.0
    scheme: Scheme | None = None
    substeps: int = 1
    k0: int = 0
    keep: bool = False
    freeze: bool = False
    chunk: int = 16
    opt_factor: np.ndarray | None = None
    sde_factor: np.ndarray | None = None
    sign_factor: np.ndarray | None = None
    opt_mixing: tuple[float, float] | None = None


@dataclass
class PathOutput:
    """What a call returns, per run (see the module docstring for the order of runs): ``loss``[runs,
    R, N], chunk sums ``s1``, ``s2``[runs, C, R, d] of x and x^2 (float64, in a fixed order), the
    states ``xs``[runs, R, N, d] if kept, ``diverged``[N] (the first step at which some |x_j| >= BIG
    or NaN in any run, -1 if never), and the optimizer's final states ``end`` (optimizer-only calls)."""

    loss: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    xs: np.ndarray
    diverged: np.ndarray
    end: np.ndarray | None = None


# ---- the loops (compiled per module by bind) ---------------------------------------------------
def _sde_table(T, p, rows, h, t0, like):
    """Per-substep constants, row r for the substep that ends at t0 + r h (row 0 unused)."""
    tab = np.empty((rows + 1, NCONST_SDE), like.dtype)  # noqa: F821 - a module name (bind)
    tab[0] = 0  # np.empty, not np.zeros: np.zeros would compile one more Numba overload per dtype
    for r in range(1, rows + 1):
        c = _sde_consts(T, t0 + r * h, h, p)  # noqa: F821
        for i in range(NCONST_SDE):  # noqa: F821
            tab[r, i] = c[i]
    return tab


def _opt_table(T, po, steps, k0, like):
    """Per-step constants of the update rule, row k for step k0 + k (row 0 unused)."""
    tab = np.empty((steps + 1, NCONST_OPT), like.dtype)  # noqa: F821
    tab[0] = 0
    for k in range(1, steps + 1):
        c = _opt_consts(T, k0 + k, po)  # noqa: F821
        for i in range(NCONST_OPT):  # noqa: F821
            tab[k, i] = c[i]
    return tab


def _gradient(x, lpT, lp, land, grad_fn, g):
    if grad_fn is None:
        _land_grad(x, lpT, land, g)
    else:
        grad_fn(x, lp, g)


def _loss_of(x, lp, land, loss_fn):
    if loss_fn is None:
        return _land_loss(x, lp, land)
    return loss_fn(x, lp)


def _substep(T, s, x, z, i, c, g, gx, u, hv, hvx, pt, gp, gpx, lpT, lp, land, grad_fn, hvp_fn, Fe, scale, zu, tmp):
    """One substep of one run: the gradient at x (the view s[0, 0]) into gx (the view g[0]); for an
    SDE with gradf(P) in its drift P (into pt) and the gradient there (into gpx, the view gp[0]); for
    an order-2 SDE or noise through the Hessian u and H u (into hvx, the view hv[0]); then every
    coordinate's update with the normals z[:, i] (with ``Fe`` given: the moment-matched sign increments
    made from them, in zu). (Views are made once per chunk: each one made here would cost two atomic
    reference counts per substep.)"""
    _gradient(x, lpT, lp, land, grad_fn, gx)
    if SDE_POINT:  # noqa: F821
        _sde_point(T, s, 0, g, c, pt)  # noqa: F821
        _gradient(pt, lpT, lp, land, grad_fn, gpx)
    if HVP:  # noqa: F821
        if HESSIAN_NOISE:  # noqa: F821
            _sde_vector(T, s, 0, g, z, i, c, u)  # noqa: F821
        else:
            _sde_vector(T, s, 0, g, c, u)  # noqa: F821
        if hvp_fn is None:
            _land_hvp(x, u, lpT, land, hvx)
        else:
            hvp_fn(x, u, lp, hvx)
    if Fe is not None:
        _sign_increments(Fe, scale, gx, z, i, zu, tmp)
        z, i = zu, 0
    if SDE_POINT:  # noqa: F821
        _sde_update(T, s, 0, g, gp, hv, z, i, c)  # noqa: F821
    else:
        _sde_update(T, s, 0, g, hv, z, i, c)  # noqa: F821


def _chain_step(T, o, xo, zd, g, gx, pt, gp, gpx, ctabo, k, ro, lpT, lp, land, grad_fn, F, mix, xi):
    """Optimizer step k of one path: its draws (with ``F`` given: every draw a normal, in the order of
    _opt_draws, the law's ones xi kept, then W of the law ``mix`` = [code, nu] and zeta = sqrt(W) F xi),
    the gradient at x = o[0, 0] (the view xo), with a gradient at another point P (into pt) the
    gradient there (into gpx, the view gp[0]), the update."""
    if F is None:
        ro = _opt_draws(ro, zd)  # noqa: F821
    else:
        for j in range(xi.shape[0]):
            for q in range(zd.shape[0]):
                zd[q, 0, j], ro = _normal(ro)
            xi[j] = zd[0, 0, j]
        w, ro = _mixing(int(mix[0]), mix[1], ro)
        _correlate(F, xi, zd[0, 0])
        if w != 1.0:
            root = math.sqrt(w)
            for j in range(xi.shape[0]):
                zd[0, 0, j] *= root
    _gradient(xo, lpT, lp, land, grad_fn, gx)
    c = _opt_row(ctabo, k)  # noqa: F821
    if OPT_POINT:  # noqa: F821
        _opt_point(T, o, 0, g, zd, c, pt)  # noqa: F821
        _gradient(pt, lpT, lp, land, grad_fn, gpx)
        _opt_update(T, o, 0, g, gp, zd, c)  # noqa: F821
    else:
        _opt_update(T, o, 0, g, zd, c)  # noqa: F821
    return ro


def _record(run, ci, ri, path, x, xw, lp, land, loss_fn, loss, s1, s2, xs):
    """Record the state x of run ``run`` at record ri: x itself (kept runs), its loss and its chunk
    sums. On a built-in landscape x is first widened into the float64 buffer ``xw``, so that
    :func:`_sums` compiles once for both dtypes, and a float32 state's square is taken in float64
    (Numba types ``float()`` of a float32 as float32, so the sums of x^2 had added float32-rounded
    squares); a user's loss function gets x as it is."""
    if xs.shape[0] > 0:
        for j in range(x.shape[0]):
            xs[run, ri, path, j] = x[j]
    if loss_fn is None:
        for j in range(x.shape[0]):
            xw[j] = x[j]
        _sums(run, ci, ri, path, xw, lp, land, loss_fn, loss, s1, s2)
    else:
        _sums(run, ci, ri, path, x, lp, land, loss_fn, loss, s1, s2)


def _sums(run, ci, ri, path, x, lp, land, loss_fn, loss, s1, s2):
    loss[run, ri, path] = _loss_of(x, lp, land, loss_fn)
    for j in range(x.shape[0]):
        s1[run, ci, ri, j] += x[j]
        s2[run, ci, ri, j] += float(x[j]) * float(x[j])


def _load(dst, src, path):
    for q in range(src.shape[0]):
        for j in range(src.shape[2]):
            dst[q, 0, j] = src[q, path, j]


def _bad(x):
    n = 0
    for j in range(x.shape[0]):
        n += 0 if abs(x[j]) < BIG else 1  # noqa: F821 - NaN counts
    return n


def _correlate(F, xi, out):
    """out = F xi (F [d, d] lower triangular, float64 sums): the optimizer's correlated standardized draws."""
    for j in range(F.shape[0]):
        acc = 0.0
        for k in range(j + 1):
            acc += F[j, k] * xi[k]
        out[j] = acc


def _mix_sources(L, z, M, tmp):
    """z[:, i, :] <- L z[:, i, :] for every substep i, the K sources of the d coordinates flattened
    source-major (k d + j): Brownian increments correlated across coordinates (L [K d, K d], lower triangular)."""
    K, d = z.shape[0], z.shape[2]
    for i in range(M):
        for q in range(K):
            for j in range(d):
                tmp[q * d + j] = z[q, i, j]
        for q in range(K):
            for j in range(d):
                row = q * d + j
                acc = 0.0
                for c in range(row + 1):
                    acc += L[row, c] * tmp[c]
                z[q, i, j] = acc


def _sign_increments(Fe, scale, gx, z, i, zu, tmp):
    """zu[0, 0, :]: the moment-matched increments of a sign update from the normals xi = z[0, i, :]
    (see PathRun); zu's other sources copy z[:, i, :]. Mean 0, variance 1 per coordinate and across
    coordinates the covariance of the centred signs."""
    d = z.shape[2]
    for j in range(d):
        tmp[j] = z[0, i, j]
    for q in range(1, z.shape[0]):
        for j in range(d):
            zu[q, 0, j] = z[q, i, j]
    for j in range(d):
        e = 0.0
        for k in range(j + 1):
            e += Fe[j, k] * tmp[k]
        gj = float(gx[j])
        mu = math.erf(gj / (math.sqrt(2.0) * scale[j]))
        spread = 1.0 - mu * mu
        s = 1.0 if gj + e > 0.0 else (-1.0 if gj + e < 0.0 else 0.0)
        zu[0, 0, j] = COUPLING_SIGN * (s - mu) / math.sqrt(spread) if spread > 0.0 else 0.0  # noqa: F821


def _sde_chunks(lo, hi, S0, p, ctab, ctabc, O0, po, ctabo, lp, land, grad_fn, loss_fn, hvp_fn, steps, sub, record,
                seed, chunk, out, F, mix, L, Fe, scale):  # fmt: skip
    """Chunks lo..hi-1 of paths of the SDE: euler (ctabc None) or the weak2 pair (ctabc the coarse run's
    table), alone (O0 None) or coupled with the optimizer (O0 its start, po, ctabo its parameters and
    table); correlated noise: F (the optimizer's factor), L (the sources' factor) or Fe with ``scale``
    (moment-matched sign increments), see PathRun."""
    T = S0.dtype.type
    loss, s1, s2, xs, diverged = out
    n, d = S0.shape[1], S0.shape[2]
    nrec = record.shape[0]
    M = (ctab.shape[0] - 1) // steps  # substeps of the fine (or only) run per optimizer step
    lpT = lp.astype(S0.dtype)
    s = np.empty((S0.shape[0], 1, d), S0.dtype)
    sc = np.empty((S0.shape[0], 1, d) if ctabc is not None else (0, 1, d), S0.dtype)
    g = np.empty((1, d), S0.dtype)
    u = np.empty(d, S0.dtype)
    hv = np.empty((1, d), S0.dtype)
    pt = np.empty(d, S0.dtype)
    gp = np.empty((1, d), S0.dtype)
    x, xc, gx, hvx, gpx = s[0, 0], sc[0, 0] if ctabc is not None else s[0, 0], g[0], hv[0], gp[0]
    z = np.empty((NOISE_SOURCES, M, d), S0.dtype)  # noqa: F821
    zc = np.empty((NOISE_SOURCES, sub, d), S0.dtype)  # noqa: F821
    rs2 = T(1.0 / math.sqrt(2.0))
    rsM = 1.0 / math.sqrt(M)
    o = np.empty((O0.shape[0] if O0 is not None else 1, 1, d), S0.dtype)
    xo = o[0, 0]
    zd = np.empty((OPT_NDRAWS, 1, d))  # noqa: F821
    xi = np.empty(d)
    tmp = np.empty(NOISE_SOURCES * d)  # noqa: F821
    zu = np.empty((NOISE_SOURCES, 1, d), S0.dtype)  # noqa: F821
    xw = np.empty(d)
    fine_run = np.int64(0)  # the runs' numbers typed int64, not Literal[int]: _sums compiles once
    coarse_run = fine_run + 1 if ctabc is not None else fine_run
    chain_run = coarse_run + 1
    for ci in range(lo, hi):
        for path in range(ci * chunk, min(n, (ci + 1) * chunk)):
            rs = _seed_stream(seed, SDE_STREAM, path)  # noqa: F821
            ro = rs  # the optimizer's stream, drawn from only in a coupled run (O0 given)
            if O0 is not None:
                ro = _seed_stream(seed, OPT_STREAM, path)  # noqa: F821
            _load(s, S0, path)
            if ctabc is not None:
                _load(sc, S0, path)
            if O0 is not None:
                _load(o, O0, path)
            ri = np.int64(0)  # typed int64 from the start (the literal 0 compiled _sums twice)
            for k in range(steps + 1):
                if k > 0:
                    if O0 is not None:  # the optimizer's step, with its own draws (those of an optimizer run)
                        ro = _chain_step(
                            T, o, xo, zd, g, gx, pt, gp, gpx, ctabo, k, ro, lpT, lp, land, grad_fn, F, mix, xi
                        )
                    for j in range(d):
                        for q in range(NOISE_SOURCES):  # noqa: F821
                            for i in range(M):
                                rv, rs = _normal(rs)
                                z[q, i, j] = T(rv)
                    if O0 is not None:  # W1 over the step = COUPLING_SIGN sqrt(eta) n(zeta); Brownian bridge between
                        for j in range(d):
                            zbar = 0.0
                            for i in range(M):
                                zbar += z[0, i, j]
                            zbar /= M
                            if F is None:
                                w = COUPLING_SIGN * _coupled_normal(zd[0, 0, j]) * rsM  # noqa: F821
                            elif Fe is None:
                                w = COUPLING_SIGN * xi[j] * rsM  # noqa: F821
                            else:  # the sign increments take the optimizer's xi itself (u applies the sign)
                                w = xi[j] * rsM
                            for i in range(M):
                                z[0, i, j] = T(z[0, i, j] - zbar + w)
                    if L is not None:
                        _mix_sources(L, z, M, tmp)
                    for i in range(M):
                        c = _sde_row(ctab, (k - 1) * M + i + 1)  # noqa: F821
                        _substep(
                            T, s, x, z, i, c, g, gx, u, hv, hvx, pt, gp, gpx, lpT, lp, land, grad_fn, hvp_fn, Fe, scale, zu,
                            tmp,
                        )  # fmt: skip
                    if ctabc is not None:  # the coarse run, on the pairwise sums of the fine run's normals
                        for q in range(NOISE_SOURCES):  # noqa: F821
                            for i in range(sub):
                                for j in range(d):
                                    zc[q, i, j] = (z[q, 2 * i, j] + z[q, 2 * i + 1, j]) * rs2
                        for i in range(sub):
                            c = _sde_row(ctabc, (k - 1) * sub + i + 1)  # noqa: F821
                            _substep(
                                T, sc, xc, zc, i, c, g, gx, u, hv, hvx, pt, gp, gpx, lpT, lp, land, grad_fn, hvp_fn, Fe,
                                scale, zu, tmp,
                            )  # fmt: skip
                    bad = _bad(x)
                    if ctabc is not None:
                        bad += _bad(xc)
                    if O0 is not None:
                        bad += _bad(xo)
                    if bad > 0:
                        diverged[path] = k
                        break
                if ri < nrec and record[ri] == k:
                    _record(fine_run, ci, ri, path, x, xw, lp, land, loss_fn, loss, s1, s2, xs)
                    if ctabc is not None:
                        _record(coarse_run, ci, ri, path, xc, xw, lp, land, loss_fn, loss, s1, s2, xs)
                    if O0 is not None:
                        _record(chain_run, ci, ri, path, xo, xw, lp, land, loss_fn, loss, s1, s2, xs)
                    ri += 1


def _opt_chunks(lo, hi, O0, po, ctabo, lp, land, grad_fn, loss_fn, steps, record, seed, chunk, freeze, out, end, F,
                mix):  # fmt: skip
    """Chunks lo..hi-1 of paths of the optimizer alone (freeze: x held at its start; F: correlated draws)."""
    T = O0.dtype.type
    loss, s1, s2, xs, diverged = out
    n, d = O0.shape[1], O0.shape[2]
    nrec = record.shape[0]
    lpT = lp.astype(O0.dtype)
    o = np.empty((O0.shape[0], 1, d), O0.dtype)
    g = np.empty((1, d), O0.dtype)
    pt = np.empty(d, O0.dtype)
    gp = np.empty((1, d), O0.dtype)
    xo, gx, gpx = o[0, 0], g[0], gp[0]
    zd = np.empty((OPT_NDRAWS, 1, d))  # noqa: F821
    xi = np.empty(d)
    xw = np.empty(d)
    for ci in range(lo, hi):
        for path in range(ci * chunk, min(n, (ci + 1) * chunk)):
            ro = _seed_stream(seed, OPT_STREAM, path)  # noqa: F821
            _load(o, O0, path)
            ri = np.int64(0)  # typed int64 from the start (the literal 0 compiled _sums twice)
            for k in range(steps + 1):
                if k > 0:
                    ro = _chain_step(T, o, xo, zd, g, gx, pt, gp, gpx, ctabo, k, ro, lpT, lp, land, grad_fn, F, mix, xi)
                    if freeze:
                        for j in range(d):
                            o[0, 0, j] = O0[0, path, j]
                    if _bad(xo) > 0:
                        diverged[path] = k
                        break
                if ri < nrec and record[ri] == k:
                    _record(np.int64(0), ci, ri, path, xo, xw, lp, land, loss_fn, loss, s1, s2, xs)
                    ri += 1
            for q in range(O0.shape[0]):
                for j in range(d):
                    end[q, path, j] = o[q, 0, j]


def _sde_step_rows(lo, hi, state, g, xi, hv, t, dt, p):
    """sde_step on paths lo..hi-1: state[S, N, d] advanced in place (xi[K, N, d], hv[N, d])."""
    T = state.dtype.type
    c = _sde_consts(T, t, dt, p)  # noqa: F821
    for i in range(lo, hi):
        _sde_update(T, state, i, g, hv, xi, i, c)  # noqa: F821


def _sde_vector_rows(lo, hi, state, g, t, dt, p, out):
    """hvp_vector on paths lo..hi-1: u[N, d] of the order-2 drift into out."""
    T = state.dtype.type
    c = _sde_consts(T, t, dt, p)  # noqa: F821
    for i in range(lo, hi):
        _sde_vector(T, state, i, g, c, out[i])  # noqa: F821 - one view per path, not per coordinate


def _opt_step_rows(lo, hi, state, g, zeta, k, p):
    """optimizer_step on paths lo..hi-1 (zeta[D, N, d], the draws of OPT_DRAWS)."""
    T = state.dtype.type
    c = _opt_consts(T, k, p)  # noqa: F821
    for i in range(lo, hi):
        _opt_update(T, state, i, g, zeta, c)  # noqa: F821


def _stream_zetas(seed, path, count):
    s = _seed_stream(seed, OPT_STREAM, path)  # noqa: F821
    out = np.empty(count)
    for i in range(count):
        out[i], s = _zeta(s)  # noqa: F821
    return out


#: the loops bind compiles: name -> Numba options (``cache`` is added per variant). A helper that is
#: inlined ("always") is typed and lowered again in every loop variant (euler, weak2, coupled, each
#: dtype) and at every call site; one compiled on its own is compiled once per signature and shared by
#: all of them. So the per-coordinate work of a step is inlined (LLVM vectorizes it in place: a call per
#: substep measured 4% slower at d = 100), and the recording is shared: _sums takes float64 states, one
#: compile for both dtypes. (Inlining _record, _load and _loss_of instead cut one variant's compile by
#: 1 s but cost `derive compile adam`, every variant, 20%: 39.3 s against 32.8 s, measured.)
_LOOPS = {
    "_sde_table": {},
    "_opt_table": {},
    "_gradient": {"inline": "always"},
    "_loss_of": {},
    "_sums": {},
    "_substep": {"inline": "always"},
    "_chain_step": {"inline": "always"},
    "_record": {"inline": "always"},
    "_load": {},
    "_bad": {"inline": "always"},
    "_correlate": {},
    "_mix_sources": {},
    "_sign_increments": {},
    "_sde_chunks": {"nogil": True, "error_model": "numpy"},
    "_opt_chunks": {"nogil": True, "error_model": "numpy"},
    "_sde_step_rows": {"nogil": True},
    "_sde_vector_rows": {"nogil": True},
    "_opt_step_rows": {"nogil": True},
    "_stream_zetas": {},
}


def _rehome(fn, namespace: dict, filename: str):
    """``fn`` with the globals ``namespace`` and a code object that names ``filename`` as its source
    (where Numba keeps its cache)."""
    code = fn.__code__.replace(co_filename=filename)
    out = types.FunctionType(code, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    out.__qualname__ = f"_runtime{fn.__qualname__}"
    out.__doc__ = fn.__doc__
    return out


def bind(namespace: dict, cache: bool = True) -> dict:
    """The loops compiled against a generated module's names (``namespace``: its globals, which
    define :data:`MODULE_NAMES`), cached beside the module's file: name -> Numba dispatcher."""
    missing = [n for n in MODULE_NAMES if n not in namespace]
    if missing:
        raise NameError(f"a generated module must define {', '.join(missing)} for derive.runtime.paths")
    merged = dict(globals())
    merged.update({n: namespace[n] for n in MODULE_NAMES})
    merged.update({n: namespace.get(n, default) for n, default in OPTIONAL_NAMES.items()})
    # the module's own import name: Numba mangles it into the compiled symbols and their environments,
    # so loops of two modules loaded from caches compiled in different processes never collide (with
    # this file's name they did: 'NRT_adapt_ndarray_to_python: descr is NULL' on the second module)
    merged["__name__"] = namespace["__name__"]
    filename = namespace["__file__"]
    for name, options in _LOOPS.items():
        merged[name] = njit(cache=cache, **options)(_rehome(globals()[name], merged, filename))
    return {name: merged[name] for name in _LOOPS}


# ---- threads -----------------------------------------------------------------------------------
_POOL: ThreadPoolExecutor | None = None


def _reset_pool() -> None:
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_reset_pool)  # a forked child has none of the parent's threads


def parallel_chunks(fn, count: int, *args) -> None:
    """``fn(lo, hi, *args)`` over the chunks 0..count-1, on ``numba.get_num_threads()`` threads
    (``fn`` releases the GIL): the chunks are cut into 4 contiguous parts per thread, and this thread
    and threads - 1 pool threads take the next part until none is left. Results must not depend on
    the split. (Every thread works from the start: a first part run here alone, to compile ``fn``
    once, left the other threads idle for its length, measured as 1.6x instead of 1.95x on 2 threads;
    Numba's compiler lock already makes a second thread wait for a compile in progress.)"""
    global _POOL
    threads = max(1, min(numba.get_num_threads(), count))
    if threads == 1:
        fn(0, count, *args)
        return
    parts = min(count, 4 * threads)
    bounds = [count * i // parts for i in range(parts + 1)]
    taken = itertools.count()  # next() on it is atomic under the GIL

    def work() -> None:
        while (i := next(taken)) < parts:
            fn(bounds[i], bounds[i + 1], *args)

    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS, thread_name_prefix="derive-paths")
    futures = [_POOL.submit(work) for _ in range(threads - 1)]
    try:
        work()
    finally:
        for f in futures:
            f.result()


# ---- what a module offers ------------------------------------------------------------------------
def _empty_runs(runs: int, nrec: int, n: int, nchunk: int, d: int, keep: bool, dtype) -> tuple:
    loss = np.full((runs, nrec, n), np.nan)
    s1 = np.zeros((runs, nchunk, nrec, d))
    s2 = np.zeros((runs, nchunk, nrec, d))
    xs = np.zeros((runs, nrec, n, d) if keep else (0, 0, 0, 0), dtype)
    return loss, s1, s2, xs, np.full(n, -1, np.int64)


def _factor(F: np.ndarray | None) -> np.ndarray | None:
    """F as a contiguous float64 array; the loops read only its lower triangle, so it must be lower triangular."""
    if F is None:
        return None
    F = np.ascontiguousarray(F, dtype=np.float64)
    if F.ndim != 2 or F.shape[0] != F.shape[1] or np.any(np.triu(F, 1) != 0):
        raise ValueError(f"a noise factor must be a square lower-triangular matrix, got shape {F.shape}")
    return F


def _noise_arguments(r: PathRun, coupled: bool) -> tuple:
    """(F, mix, L, Fe, scale) of _sde_chunks: F only in a coupled run, the scales s_j of Fe's rows."""
    if r.sde_factor is not None and r.sign_factor is not None:
        raise ValueError("sde_factor and sign_factor exclude each other")
    Fe = _factor(r.sign_factor)
    scale = None if Fe is None else np.sqrt((Fe * Fe).sum(axis=1))
    F = _factor(r.opt_factor) if coupled else None
    return F, (_mixing_of(r) if F is not None else None), _factor(r.sde_factor), Fe, scale


def _mixing_of(r: PathRun) -> np.ndarray | None:
    """[code, nu] of the optimizer's elliptical law (derive.runtime.samplers.mixing), with a factor only."""
    if r.opt_factor is None:
        return None
    return np.array(r.opt_mixing if r.opt_mixing is not None else (0.0, 0.0), dtype=np.float64)


class Simulators:
    """The path simulators and step functions of one generated module (its public API besides
    ``drift`` and ``diffusion``), compiled from the loops of this file by :func:`bind`."""

    def __init__(self, namespace: dict):
        self._ns = namespace
        self._cached = bind(namespace, cache=True)
        self._user: dict | None = None  # variants with user landscape functions: never cached

    def _loops(self, user: bool) -> dict:
        if not user:
            return self._cached
        if self._user is None:
            self._user = bind(self._ns, cache=False)
        return self._user

    def run_paths(self, r: PathRun) -> PathOutput:
        """Run the paths of ``r`` (see :class:`PathRun`)."""
        if r.sde_start is None:
            return self._run_optimizer(r)
        loops = self._loops(r.grad_fn is not None)
        S0 = np.ascontiguousarray(r.sde_start)
        T, (n, d) = S0.dtype.type, S0.shape[1:]
        steps, sub, scheme = int(r.steps), int(r.substeps), r.scheme
        M = sub * scheme.fine
        eta, t0 = r.step_time, r.k0 * r.step_time
        p = r.sde_params
        ctab = loops["_sde_table"](T, p, steps * M, eta / M, t0, S0[0, 0])
        ctabc = loops["_sde_table"](T, p, steps * sub, eta / sub, t0, S0[0, 0]) if scheme.coarse else None
        O0 = po = ctabo = None
        if r.opt_start is not None:
            O0, po = np.ascontiguousarray(r.opt_start), r.opt_params
            ctabo = loops["_opt_table"](T, po, steps, int(r.k0), S0[0, 0])
        runs = 1 + int(scheme.coarse) + int(O0 is not None)
        nchunk = (n + r.chunk - 1) // r.chunk
        out = _empty_runs(runs, len(r.record), n, nchunk, d, r.keep, S0.dtype)
        parallel_chunks(
            loops["_sde_chunks"], nchunk, S0, p, ctab, ctabc, O0, po, ctabo, r.land_params, r.land_code,
            r.grad_fn, r.loss_fn, r.hvp_fn, steps, sub, r.record, int(r.seed), int(r.chunk), out,
            *_noise_arguments(r, O0 is not None),
        )  # fmt: skip
        return PathOutput(*out)

    def _run_optimizer(self, r: PathRun) -> PathOutput:
        loops = self._loops(r.grad_fn is not None)
        O0 = np.ascontiguousarray(r.opt_start)
        T, (n, d) = O0.dtype.type, O0.shape[1:]
        ctabo = loops["_opt_table"](T, r.opt_params, int(r.steps), int(r.k0), O0[0, 0])
        nchunk = (n + r.chunk - 1) // r.chunk
        out = _empty_runs(1, len(r.record), n, nchunk, d, r.keep, O0.dtype)
        end = O0.copy()
        parallel_chunks(
            loops["_opt_chunks"], nchunk, O0, r.opt_params, ctabo, r.land_params, r.land_code, r.grad_fn,
            r.loss_fn, int(r.steps), r.record, int(r.seed), int(r.chunk), bool(r.freeze), out, end,
            _factor(r.opt_factor), _mixing_of(r),
        )  # fmt: skip
        return PathOutput(*out, end=end)

    # -- the fixed-size entry points (quadratic f = sum lp_j x_j^2 / 2, one substep, euler) --------
    def _start(self, x0: np.ndarray, initial) -> np.ndarray:
        out = np.empty((1 + len(initial),) + x0.shape, x0.dtype)
        out[0] = x0
        for i, v in enumerate(initial):
            out[1 + i] = x0 if v == "x" else v  # "x": a state that starts at x (schedule-free's z)
        return out

    def _simple(self, kind, x0, p, lp, steps, record, seed, chunk, keep, grad_fn=None, loss_fn=None, hvp_fn=None):
        ns = self._ns
        sde = kind == "sde"
        start = self._start(np.asarray(x0), ns["SDE_INITIAL"] if sde else ns["OPT_INITIAL"])
        eta = float(p[list(ns["SDE_PARAMS"]).index("eta")]) if sde else 0.0
        r = PathRun(
            sde_start=start if sde else None,
            opt_start=None if sde else start,
            sde_params=p if sde else None,
            opt_params=None if sde else p,
            land_params=np.ascontiguousarray(lp, dtype=np.float64),
            steps=int(steps),
            record=np.asarray(record, dtype=np.int64),
            seed=int(seed),
            grad_fn=grad_fn,
            loss_fn=loss_fn,
            hvp_fn=hvp_fn,
            step_time=eta,
            scheme=SCHEMES["euler"],
            keep=bool(keep),
            chunk=int(chunk),
        )
        o = self.run_paths(r)
        xs = o.xs[0] if keep else np.zeros((0, 0, 0), start.dtype)
        return o.loss[0], o.s1[0], o.s2[0], xs, o.diverged

    def simulate_sde(self, x0, p, lp, steps, record, seed, chunk, keep):
        """Paths of the SDE on the quadratic f(x) = sum_j lp[j] x_j^2 / 2, one substep per step (euler).

        x0[N, d] is the start (float64 or float32: the kernel's type), p the SDE_PARAMS, steps T,
        record the increasing step numbers in [0, T] to record at, seed the RNG seed: path i draws
        from its own stream (seed, SDE_STREAM, i), so results do not depend on threads or chunk.
        Returns loss[R, N], the per-chunk sums s1, s2[C, R, d] of x and x^2 (float64), the states
        xs[R, N, d] at the record steps if keep (else empty) and diverged[N]: the first step at which
        some |x_j| >= BIG or is NaN (-1 if never); a diverged path stops, its later losses are NaN."""
        return self._simple("sde", x0, p, lp, steps, record, seed, chunk, keep)

    def simulate_sde_user(self, x0, p, lp, steps, record, seed, chunk, keep, grad_fn, loss_fn, hvp_fn=None):
        """As simulate_sde on a user landscape: Numba functions grad_fn(x, lp, out), loss_fn(x, lp)
        (and hvp_fn(x, u, lp, out) for an order-2 SDE)."""
        return self._simple("sde", x0, p, lp, steps, record, seed, chunk, keep, grad_fn, loss_fn, hvp_fn)

    def simulate_optimizer(self, x0, p, lp, steps, record, seed, chunk, keep):
        """As simulate_sde, for the optimizer (p the OPT_PARAMS, streams (seed, OPT_STREAM, i))."""
        return self._simple("optimizer", x0, p, lp, steps, record, seed, chunk, keep)

    def simulate_optimizer_user(self, x0, p, lp, steps, record, seed, chunk, keep, grad_fn, loss_fn):
        """As simulate_optimizer on a user landscape (see simulate_sde_user)."""
        return self._simple("optimizer", x0, p, lp, steps, record, seed, chunk, keep, grad_fn, loss_fn)

    # -- one step, for callers that own the gradient (networks) -------------------------------------
    def _rows(self, fn, n: int, *args) -> None:
        """fn(lo, hi, *args) over the n paths: on threads when the step is large enough to pay for
        them (from 2^16 state entries), else in this thread."""
        if args[0].size >= 1 << 16:
            parallel_chunks(fn, n, *args)
        else:
            fn(0, n, *args)

    def sde_step(self, state, g, xi, t, dt, p, hv=None):
        """Advance state[S, N, d] in place by one step of length dt of the integrator.

        g[N, d] is the true gradient at state[0], xi[K, N, d] standard normals (one per noise
        source), t the time at which gamma_j is evaluated (the end of the step), p the SDE_PARAMS;
        an order-2 SDE (HVP) also takes hv[N, d] = H(x) u at the step's start, u from hvp_vector
        (same state, g, t, dt, p). For r substeps per optimizer step call it r times with dt = eta/r,
        t the end of each substep and g the gradient at each substep's start
        (derive.validate.steppers.SDEPath does)."""
        self._single_step_sde("sde_step")
        if self._ns["HVP"] and hv is None:
            raise TypeError("the order-2 sde_step needs hv = H(x) u (see hvp_vector)")
        hv = g if hv is None else hv
        self._rows(self._cached["_sde_step_rows"], state.shape[1], state, g, xi, hv, t, dt, p)

    def _single_step_sde(self, what: str) -> None:
        """Refuse the SDE's single-step interface where the step needs more than the gradient at x."""
        if self._ns.get("SDE_POINT") or self._ns.get("HESSIAN_NOISE"):
            raise TypeError(
                f"{what} of {self._ns['COMBINATION']['optimizer']}: its SDE takes the gradient at another point "
                "or noise through the Hessian, which the single-step interface (a caller-owned gradient at x) "
                "does not carry; use run_paths"
            )

    def hvp_vector(self, state, g, t, dt, p, out):
        """Write u[N, d] into ``out``: the vector whose Hessian-vector product H u the next sde_step
        needs (HVP_VECTOR, at state[S, N, d] and the true gradient g[N, d]; t, dt, p as sde_step).

        Order-2 step in two phases: u = hvp_vector(...), hv = H(x) u per path by the caller (exact on
        a quadratic, autograd double backward on a network), then sde_step(state, g, xi, t, dt, p, hv)."""
        self._single_step_sde("hvp_vector")
        self._rows(self._cached["_sde_vector_rows"], state.shape[1], state, g, t, dt, p, out)

    def optimizer_step(self, state, g, zeta, k, p):
        """Advance state[O, N, d] in place by optimizer step k (1 on the first step): g[N, d] is the
        true gradient at state[0], zeta[N, d] the standardized noise (or zeta[D, N, d], the draws of
        OPT_DRAWS in order: the law's, then standard normals), p the OPT_PARAMS."""
        if self._ns.get("OPT_POINT"):
            raise TypeError(
                f"optimizer_step of {self._ns['COMBINATION']['optimizer']}: its update takes the gradient at "
                f"{self._ns['OPT_POINT_AT']}, which the single-step interface (a caller-owned gradient at x) "
                "does not carry; use run_paths"
            )
        zeta = np.asarray(zeta)
        zeta = zeta[None] if zeta.ndim == 2 else zeta
        self._rows(self._cached["_opt_step_rows"], state.shape[1], state, g, zeta, k, p)

    def stream_normals(self, seed, stream, path, count):
        """The first ``count`` normals of one path's stream (what the SDE kernels draw, in order)."""
        return _stream_normals(seed, stream, path, count)

    def stream_zetas(self, seed, path, count):
        """The first ``count`` noise draws of one optimizer path (as if its d coordinates were one)."""
        return self._cached["_stream_zetas"](seed, path, count)
