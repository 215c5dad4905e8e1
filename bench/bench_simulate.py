"""Benchmark: the generated SignSGD SDE simulator (Gaussian, paper/full) against a vectorised NumPy
Euler-Maruyama loop (scipy.special.erf, numpy Generator normals) and, if installed, a PyTorch loop,
all in one run. Prints ns per path-step-dimension (best of 3 runs), float64 and float32, 1 and 2 threads, the ratio
to NumPy, the cold compile time (fresh cache dir, subprocess) and the cached load time. Then the
integrators: euler with substeps, weak2 (Talay-Tubaro: a fine and a coarse run) and coupled runs
(optimizer and SDE in one kernel), each against euler with one substep in the same run, for SignSGD
and Adam (paper/full), float64, ns per path-optimizer-step-dimension. Last, the order-2 SDEs (one
Hessian-vector product per step: u for every coordinate, then H u) against the order-1 SDE of the
same optimizer, same run, on the diagonal and the rotated (full H) quadratic.

    python bench/bench_simulate.py [--quick]
    python bench/bench_simulate.py --order2 [--quick]   (the order-2 rows only)
    python bench/bench_simulate.py --correlated [--quick]   (correlated against independent noise only)
    python bench/bench_simulate.py --baseline 7976f53 [--steady 673492a] [--quick] [--rounds N]

``--baseline REV`` (issue 16) times the cold compile of the SignSGD SDE simulator (load, compile
float64 and float32, first run; fresh NUMBA_CACHE_DIR and DERIVE_CACHE_DIR, fresh process) in this
tree and in a copy of revision REV (``git archive``, in a temporary folder), alternately, and prints
the ratio; ``--steady REV`` adds the steady state (ns per path-step-dimension, both dtypes, 1 and 2
threads) of this tree against REV's kernels, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.special

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TINY = (
    "x = np.zeros((2, 2)); [m.simulate_sde(x.astype(f), np.array([0.01, 1.0], f), np.ones(2), 2, np.array([2]), 0, 16, False) "
    "for f in (np.float64, np.float32)]; "
)
#: fresh process, through derive.simulate: seconds from interpreter start to the end of a tiny run of both dtypes,
#: and the part after `import derive.simulate`
LOAD = (
    "import time; t0 = time.perf_counter(); from derive.simulate import load_module; "
    "from derive.combination import Combination; import numpy as np; t = time.perf_counter(); "
    "m = load_module(Combination('signsgd')); " + TINY + "print(time.perf_counter() - t0, time.perf_counter() - t)"
)
#: fresh process, the generated module alone (it imports only numpy and numba), under the import name
#: derive.simulate.load_module gives it (Numba's cache is keyed by the file, and reimports the module by name)
STANDALONE = (
    "import time; t0 = time.perf_counter(); import hashlib, importlib.util, sys, numpy as np, numba; "
    "t1 = time.perf_counter(); path = {path!r}; "
    "name = 'derive_generated_' + hashlib.sha1(path.encode()).hexdigest()[:10] + '_signsgd_gaussian_paper_full'; "
    "spec = importlib.util.spec_from_file_location(name, path); m = importlib.util.module_from_spec(spec); "
    "sys.modules[name] = m; spec.loader.exec_module(m); " + TINY + "print(time.perf_counter() - t0, t1 - t0)"
)


#: Numba's own floor: a fresh process that imports numpy and numba and calls one trivial cached function
FLOOR = (
    "import time; t0 = time.perf_counter(); import numpy, numba; t1 = time.perf_counter(); "
    "import trivial_kernel; trivial_kernel.f(1.0); print(time.perf_counter() - t0, t1 - t0)"
)


def numpy_em(x, lam, eta, sigma, steps, dtype):
    """dX = -erf(g/(sqrt2 sigma)) dt + sqrt(eta) sqrt(1 - erf^2) dW, dt = eta, vectorised."""
    rng = np.random.default_rng(0)
    x = x.astype(dtype)
    lam = lam.astype(dtype)
    c, dt, sq = dtype(1 / (np.sqrt(2) * sigma)), dtype(eta), dtype(np.sqrt(eta) * np.sqrt(eta))
    for _ in range(steps):
        s = scipy.special.erf(c * lam * x)
        x = x - s * dt + sq * np.sqrt(np.maximum(0, 1 - s * s)) * rng.standard_normal(x.shape, dtype=dtype)
    return x


def torch_loop(x, lam, eta, sigma, steps, dtype, threads):
    import torch

    torch.set_num_threads(threads)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    x, lam = torch.tensor(x, dtype=tdt), torch.tensor(lam, dtype=tdt)
    for _ in range(steps):
        s = torch.special.erf(lam * x / (2**0.5 * sigma))
        x = x - s * eta + eta * torch.sqrt(torch.clamp(1 - s * s, min=0)) * torch.randn(x.shape, dtype=tdt)
    return x


def components(m):
    """Two parts of the generated kernel alone, in the same parallel layout (prange over paths):
    the normals (xoshiro256++ + ziggurat, state in registers, into a d-buffer) and the arithmetic
    x += c1 erf(c0 x) + c2 sqrt(max(0, 1 - erf^2)) with the module's own branch-free erf (``_erf``)."""
    import math

    from numba import njit, prange

    from derive.runtime.rng import normal, seed_stream
    from derive.runtime.special import erf

    @njit(parallel=True)
    def normals_only(x, steps):
        n, d = x.shape
        T = x.dtype.type
        out = np.zeros(n, x.dtype)
        for i in prange(n):
            s = seed_stream(0, 1, i)
            z = np.empty(d, x.dtype)
            for _ in range(steps):
                for j in range(d):
                    v, s = normal(s)
                    z[j] = T(v)
                out[i] += z[d - 1]
        return out

    @njit(parallel=True, error_model="numpy")
    def arithmetic_only(x, steps, c0, c1, c2):
        n, d = x.shape
        T = x.dtype.type
        for i in prange(n):
            for _ in range(steps):
                for j in range(d):
                    e = erf(c0 * x[i, j])
                    x[i, j] += c1 * e + c2 * math.sqrt(max(T(0), T(1) - e * e))
        return x

    return normals_only, arithmetic_only


def self_contained_copy(path: str, folder: str):
    """The generated module at ``path`` with the shared runtime pasted in instead of imported (what
    every module held before the runtime moved into derive/runtime/), imported from ``folder``: the
    same-run baseline of the question whether importing the runtime costs speed."""
    import importlib.util
    import re
    from pathlib import Path

    runtime = Path(ROOT) / "derive" / "runtime"
    pasted = []
    for name in ("rng.py", "special.py", "samplers.py", "landscapes.py", "quantile.py"):
        src = (runtime / name).read_text()
        src = re.sub(r"^from __future__ import annotations\n", "", src, flags=re.M)
        src = re.sub(r"^from \.rng import .*\n", "", src, flags=re.M)
        pasted.append(src)
    text = Path(path).read_text()
    aliases = []
    for line in re.findall(r"^from derive\.runtime\.\w+ import (\w+) as (\w+)$", text, flags=re.M):
        aliases.append(f"{line[1]} = {line[0]}")
    text = re.sub(r"^from derive\.runtime(\.\w+)? import .*\n", "", text, flags=re.M)
    text = re.sub(r"_samplers\.(\w+)", r"\1", text)
    head, sep, rest = text.partition("\nCOMBINATION = ")
    text = head + "\n" + "\n".join(pasted) + "\n" + "\n".join(aliases) + "\n" + sep + rest
    target = Path(folder) / ("copy_" + Path(path).name)
    target.write_text(text)
    spec = importlib.util.spec_from_file_location(target.stem, target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[target.stem] = module
    spec.loader.exec_module(module)
    return module


def best_ns(run, per, reps=3):
    """Best of ``reps`` timed calls of run(), in ns per path-step-dimension (the machine is shared)."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times) / per * 1e9


def main(quick: bool) -> None:
    n, d, steps = (200, 50, 200) if quick else (1000, 100, 1000)
    eta, sigma = 0.01, 1.0
    path = os.path.join(ROOT, "generated", "signsgd_gaussian_paper_full.py")

    def proc(code, env):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            raise RuntimeError(out.stderr)
        return [float(v) for v in out.stdout.split()]

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = proc(LOAD, env)[1]
        warm = min((proc(LOAD, env) for _ in range(3)), key=lambda v: v[0])
        alone = min((proc(STANDALONE.format(path=path), env) for _ in range(3)), key=lambda v: v[0])
        with open(os.path.join(cache, "trivial_kernel.py"), "w") as f:
            f.write("from numba import njit\n\n@njit(cache=True)\ndef f(x):\n    return x + 1\n")
        floor_env = dict(env, PYTHONPATH=cache)
        proc(FLOOR, floor_env)
        floor = min((proc(FLOOR, floor_env) for _ in range(3)), key=lambda v: v[0])
    import numba

    from derive.combination import Combination
    from derive.simulate import load_module

    m = load_module(Combination("signsgd"))
    copy_dir = tempfile.mkdtemp()
    m_copy = self_contained_copy(path, copy_dir)
    normals_only, arithmetic_only = components(m)
    parts = [
        ("  part: normals alone", normals_only, ()),
        ("  part: erf+sqrt alone", arithmetic_only, (1 / np.sqrt(2), -0.01, 0.01)),
    ]
    x0 = np.random.default_rng(1).standard_normal((n, d))
    lam = np.ones(d)
    per = n * d * steps
    print(f"SignSGD SDE, Gaussian, N={n} d={d} T={steps}: ns per path-step-dimension")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numba"], check=True)
    print(f"fresh process importing numba: {time.perf_counter() - t:.2f} s (interpreter start included)")
    print(f"cold compile (both dtypes, fresh cache) {cold:.2f} s")
    print(
        f"cached load, fresh process, generated module alone: {alone[0]:.2f} s in all, of which import numpy+numba {alone[1]:.2f} s"
    )
    print(
        f"Numba floor, fresh process, one trivial cached function: {floor[0]:.2f} s in all, of which import numpy+numba {floor[1]:.2f} s"
    )
    print(
        f"cached load, fresh process, via derive.simulate: {warm[0]:.2f} s in all, {warm[1]:.2f} s after importing derive.simulate"
    )
    print(f"{'implementation':28s}{'dtype':>9s}{'threads':>9s}{'ns':>9s}{'vs NumPy':>10s}")
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
        print("(PyTorch not installed: its baseline is skipped)")
    for dtype in (np.float64, np.float32):
        base = best_ns(lambda: numpy_em(x0, lam, eta, sigma, steps, dtype), per)
        print(f"{'NumPy vectorised EM':28s}{dtype.__name__:>9s}{1:>9d}{base:9.2f}{1.0:10.2f}")
        p = np.array([eta, sigma], dtype)
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            m.simulate_sde(x0[:2].astype(dtype), p, lam, 1, np.array([1]), 0, 16, False)
            xd = x0.astype(dtype)
            ns = best_ns(lambda: m.simulate_sde(xd, p, lam, steps, np.array([steps]), 0, 16, False), per)
            print(f"{'generated Numba':28s}{dtype.__name__:>9s}{threads:>9d}{ns:9.2f}{base / ns:10.2f}")
            m_copy.simulate_sde(x0[:2].astype(dtype), p, lam, 1, np.array([1]), 0, 16, False)
            ns_copy = best_ns(lambda: m_copy.simulate_sde(xd, p, lam, steps, np.array([steps]), 0, 16, False), per)
            print(
                f"{'  same, runtime pasted in':28s}{dtype.__name__:>9s}{threads:>9d}{ns_copy:9.2f}{base / ns_copy:10.2f}"
                f"   imported/pasted {ns / ns_copy:.3f}"
            )
            for name, fn, args in parts:
                xx = x0.astype(dtype)
                cargs = tuple(dtype(a) for a in args)
                fn(xx[:2].copy(), 1, *cargs)
                ns = best_ns(lambda: fn(xx.copy(), steps, *cargs), per)
                print(f"{name:28s}{dtype.__name__:>9s}{threads:>9d}{ns:9.2f}{base / ns:10.2f}")
            if have_torch:
                ns = best_ns(lambda: torch_loop(x0, lam, eta, sigma, steps, dtype, threads), per)
                print(f"{'PyTorch loop':28s}{dtype.__name__:>9s}{threads:>9d}{ns:9.2f}{base / ns:10.2f}")
    real_nu_row(x0, lam, steps, per)


def real_nu_row(x0, lam, steps, per) -> None:
    """The SignSGD SDE under Student-t noise with a real nu (2.5: its drift and diffusion call the
    Numba incomplete beta function of derive.runtime.student_t) against the Gaussian one (erf), same
    sizes, same run, float64, each with its own best of 3 (target: within 2x)."""
    import numba

    from derive.combination import Combination
    from derive.simulate import load_module

    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    eta, sigma = 0.01, 1.0
    p = np.array([eta, sigma])
    xd = x0.astype(np.float64)
    times = {}
    for label, combo in (
        ("Gaussian (erf)", Combination("signsgd")),
        ("Student-t nu=2.5 (betainc)", Combination("signsgd", "student-t", nu=2.5)),
    ):
        m = load_module(combo)
        assert tuple(m.SDE_PARAMS) == ("eta", "sigma"), m.SDE_PARAMS
        m.simulate_sde(xd[:2].copy(), p, lam, 1, np.array([1]), 0, 16, False)
        times[label] = best_ns(lambda: m.simulate_sde(xd, p, lam, steps, np.array([steps]), 0, 16, False), per)
    (g_label, g_ns), (t_label, t_ns) = times.items()
    print(
        f"\nSignSGD SDE, real nu against Gaussian, float64, {numba.config.NUMBA_NUM_THREADS} threads, ns per path-step-dimension:"
    )
    print(f"  {g_label:28s}{g_ns:9.2f}")
    print(
        f"  {t_label:28s}{t_ns:9.2f}   ratio {t_ns / g_ns:.2f} (target <= 2: {'met' if t_ns <= 2 * g_ns else 'MISSED'})"
    )


def integrator_rows(n: int, d: int, steps: int) -> None:
    """Each scheme's cost against euler with one substep, same run, same module (simulate.run and
    run_coupled on the built-in quadratic, float64, 2 threads)."""
    import numba

    from derive.combination import Combination
    from derive.simulate import quadratic, run, run_coupled

    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    land = quadratic(np.linspace(1.0, 2.0, d))
    x0 = np.random.default_rng(1).standard_normal((n, d))
    record = np.array([steps])
    rows = [
        ("euler, 1 substep", "sde", "euler", 1),
        ("euler, 4 substeps", "sde", "euler", 4),
        ("weak2, 1 substep", "sde", "weak2", 1),
        ("weak2, 4 substeps", "sde", "weak2", 4),
        ("optimizer alone", "optimizer", "euler", 1),
        ("coupled: optimizer + euler, 1", "coupled", "euler", 1),
        ("coupled: optimizer + weak2, 4", "coupled", "weak2", 4),
    ]
    print(f"integrators, float64, 2 threads, N={n} d={d} T={steps}: ns per path-(optimizer)step-dimension")
    print(f"{'optimizer':10s}{'run':34s}{'ns':>9s}{'vs euler 1':>12s}{'SDE steps':>11s}{'ns per SDE step':>17s}")
    for opt, hyper in (("signsgd", None), ("adam", {"beta1": 0.9, "beta2": 0.99})):
        combo = Combination(opt)
        base = None
        for label, kind, scheme, sub in rows:
            common = dict(
                eta=0.01,
                sigma=1.0,
                steps=steps,
                seed=0,
                landscape=land,
                hyper=hyper,
                record=record,
                scheme=scheme,
                substeps=sub,
            )
            if kind == "coupled":
                go = lambda: run_coupled(combo, x0, **common)  # noqa: E731
            else:
                go = lambda: run(kind, combo, x0, **common)  # noqa: E731
            small = dict(common, steps=2, record=np.array([2]))
            (run_coupled(combo, x0[:2], **small) if kind == "coupled" else run(kind, combo, x0[:2], **small))
            ns = best_ns(go, n * d * steps)
            base = base or ns
            sde_steps = 0 if kind == "optimizer" else sub * (3 if scheme == "weak2" else 1)
            per = f"{ns / sde_steps:17.2f}" if sde_steps else f"{'-':>17s}"
            print(f"{opt:10s}{label:34s}{ns:9.2f}{ns / base:12.2f}{sde_steps:11d}{per}")


def correlated_rows(n: int, steps: int) -> None:
    """Noise correlated across coordinates (r = 0.5, derive/correlated_simulation.py) against independent noise,
    same run, same module: the optimizer (zeta = F xi, d^2/2 multiply-adds per path-step) and the SDE (euler,
    one substep: Adam's two sources mixed by a (2d) x (2d) factor, SignSGD's moment-matched sign increments),
    float64, 2 threads, d = 10 and 50, ns per path-step-dimension."""
    import numba

    from derive.combination import Combination
    from derive.correlation import NoiseModel
    from derive.simulate import quadratic, run

    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    print(
        f"\ncorrelated (r = 0.5) against independent noise, float64, 2 threads, N={n} T={steps}: ns per path-step-dimension"
    )
    print(f"{'optimizer':10s}{'run':11s}{'d':>4s}{'independent':>13s}{'correlated':>12s}{'ratio':>8s}")
    for opt, hyper in (("sgd", None), ("adam", {"beta1": 0.9, "beta2": 0.99}), ("signsgd", None)):
        combo = Combination(opt)
        for kind in ("optimizer", "sde"):
            for d in (10, 50):
                land = quadratic(np.linspace(1.0, 2.0, d))
                x0 = np.random.default_rng(1).standard_normal((n, d))
                ns = []
                for noise in (None, NoiseModel.correlated(0.5, d)):
                    common = dict(
                        eta=0.01, sigma=None if noise else 1.0, seed=0, landscape=land, hyper=hyper, noise=noise
                    )
                    run(kind, combo, x0[:2], steps=2, record=np.array([2]), **common)  # compile
                    go = lambda: run(kind, combo, x0, steps=steps, record=np.array([steps]), **common)  # noqa: E731
                    ns.append(best_ns(go, n * d * steps))
                print(f"{opt:10s}{kind:11s}{d:4d}{ns[0]:13.2f}{ns[1]:12.2f}{ns[1] / ns[0]:8.2f}")


def order2_rows(n: int, d: int, steps: int) -> None:
    """The order-2 SDE against the order-1 SDE (full form) of each optimizer, same run, same sizes,
    float64, 2 threads, scheme weak2 with 1 substep (what keeps the order; the euler ratio is the
    kernel's own), on the diagonal quadratic (H u = lambda u, O(d)) and the rotated one (H u a d x d
    product, O(d^2) per path-step: the product dominates there)."""
    import numba

    from derive.combination import Combination
    from derive.simulate import quadratic, rotated_quadratic, run

    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    x0 = np.random.default_rng(1).standard_normal((n, d))
    record = np.array([steps])
    print(f"\norder-2 SDE against order 1, float64, 2 threads, N={n} d={d} T={steps}: ns per path-step-dimension")
    print(f"{'optimizer':10s}{'landscape':12s}{'scheme':8s}{'order 1':>10s}{'order 2':>10s}{'ratio':>8s}")
    hypers = {"sgd": None, "signsgd": None, "rmsprop": {"beta": 0.99}, "adam": {"beta1": 0.9, "beta2": 0.99}}
    for opt, hyper in hypers.items():
        for land_name, land in (
            ("diagonal", quadratic(np.linspace(1.0, 2.0, d))),
            ("rotated", rotated_quadratic(np.linspace(1.0, 4.0, d))),
        ):
            for scheme in ("euler", "weak2"):
                ns = []
                for order in (1, 2):
                    combo = Combination(opt, order=order)
                    common = dict(eta=0.01, sigma=1.0, seed=0, landscape=land, hyper=hyper, scheme=scheme)
                    run("sde", combo, x0[:2], steps=2, record=np.array([2]), **common)  # compile
                    ns.append(
                        best_ns(
                            lambda: run("sde", combo, x0, steps=steps, record=record, **common),  # noqa: B023
                            n * d * steps,
                        )
                    )
                print(f"{opt:10s}{land_name:12s}{scheme:8s}{ns[0]:10.2f}{ns[1]:10.2f}{ns[1] / ns[0]:8.2f}")


# ---- against other revisions (issue 16): fresh processes in each tree --------------------------
#: fresh process in a tree: ns per path-step-dimension of the SignSGD SDE, best of 3, per dtype and
#: thread count, after one compiling call (the cache is warm from the cold run)
STEADY = (
    "import json, numba, numpy as np; from derive.simulate import load_module; "
    "from derive.combination import Combination; import time; "
    "m = load_module(Combination('signsgd')); n, d, T = {n}, {d}, {steps}; "
    "x0 = np.random.default_rng(1).standard_normal((n, d)); lam = np.ones(d); out = {{}}\n"
    "for f in (np.float64, np.float32):\n"
    " p = np.array([0.01, 1.0], f); x = x0.astype(f)\n"
    " for th in (1, 2):\n"
    "  numba.set_num_threads(min(th, numba.config.NUMBA_NUM_THREADS))\n"
    "  m.simulate_sde(x[:2].copy(), p, lam, 1, np.array([1]), 0, 16, False); best = 1e9\n"
    "  for _ in range(3):\n"
    "   t = time.perf_counter(); m.simulate_sde(x, p, lam, T, np.array([T]), 0, 16, False)\n"
    "   best = min(best, time.perf_counter() - t)\n"
    "  out[f.__name__ + '/' + str(th)] = best / (n * d * T) * 1e9\n"
    "print(json.dumps(out))"
)


def _in_tree(tree: str, code: str, env: dict) -> str:
    env = dict(env, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tree)
    if out.returncode:
        raise RuntimeError(f"in {tree}:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def _archive(rev: str, folder: str) -> str:
    """A copy of revision ``rev``'s files (generated/ included) in ``folder``."""
    tree = os.path.join(folder, rev)
    os.makedirs(tree)
    data = subprocess.run(["git", "-C", ROOT, "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=data, check=True)
    return tree


def against(baseline: str, steady: str | None, quick: bool, reps: int = 2) -> None:
    """Cold compile here against ``baseline``, and (``steady``) steady state here against ``steady``."""
    n, d, steps = (200, 50, 200) if quick else (1000, 100, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT, baseline: _archive(baseline, tmp)}
        cold: dict[str, list[float]] = {k: [] for k in trees}
        for r in range(reps):  # alternately, so that load on a shared machine falls on both
            for label, tree in trees.items():
                cache = os.path.join(tmp, f"cache-{r}-{len(cold[label])}-{abs(hash(label))}")
                env = dict(os.environ, NUMBA_CACHE_DIR=cache + "/numba", DERIVE_CACHE_DIR=cache + "/derive")
                total, after = (float(v) for v in _in_tree(tree, LOAD, env).split())
                cold[label].append(after)
        here, base = min(cold["this tree"]), min(cold[baseline])
        print("cold compile of the SignSGD SDE simulator (load, compile float64 + float32, first run; fresh caches,")
        print(f"fresh process, seconds after importing derive.simulate, best of {reps}):")
        print(f"  this tree {here:7.2f} s   {baseline} {base:7.2f} s   ratio {here / base:.3f} (target <= 0.5)")
        if steady is None:
            return
        trees = {"this tree": ROOT, steady: trees[baseline] if steady == baseline else _archive(steady, tmp)}
        cache = os.path.join(tmp, "steady")
        env = dict(os.environ, NUMBA_CACHE_DIR=cache + "/numba", DERIVE_CACHE_DIR=cache + "/derive")
        code = STEADY.format(n=n, d=d, steps=steps)
        import json

        best: dict[str, dict[str, float]] = {}
        for _ in range(reps):
            for label, tree in trees.items():
                got = json.loads(_in_tree(tree, code, env))
                best[label] = {k: min(v, best.get(label, {}).get(k, v)) for k, v in got.items()}
        print(f"steady state, SignSGD SDE, N={n} d={d} T={steps}, ns per path-step-dimension (best of 3 x {reps}):")
        print(f"  {'dtype/threads':16s}{'this tree':>11s}{steady:>11s}{'ratio':>8s}")
        for key, ns in best["this tree"].items():
            print(f"  {key:16s}{ns:11.3f}{best[steady][key]:11.3f}{ns / best[steady][key]:8.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (N=200, d=50, T=200)")
    ap.add_argument("--order2", action="store_true", help="the order-2 rows only")
    ap.add_argument("--correlated", action="store_true", help="the correlated-noise rows only")
    ap.add_argument("--baseline", metavar="REV", help="cold compile against revision REV (e.g. 7976f53)")
    ap.add_argument("--steady", metavar="REV", help="with --baseline: steady state against revision REV")
    ap.add_argument("--rounds", type=int, default=2, help="with --baseline: alternating rounds (default 2)")
    args = ap.parse_args()
    if args.baseline:
        against(args.baseline, args.steady, args.quick, args.rounds)
    elif args.correlated:
        correlated_rows(*((200, 200) if args.quick else (1000, 1000)))
    else:
        if not args.order2:
            main(args.quick)
            integrator_rows(*((200, 50, 200) if args.quick else (1000, 20, 1000)))
            correlated_rows(*((200, 200) if args.quick else (1000, 1000)))
        order2_rows(*((200, 20, 200) if args.quick else (1000, 20, 1000)))
