"""Benchmark: the generated SignSGD SDE simulator (Gaussian, paper/full) against a vectorised NumPy
Euler-Maruyama loop (scipy.special.erf, numpy Generator normals) and, if installed, a PyTorch loop,
all in one run. Prints ns per path-step-dimension, float64 and float32, 1 and 2 threads, the ratio
to NumPy, the cold compile time (fresh cache dir, subprocess) and the cached load time.

    python bench/bench_simulate.py [--quick]
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
LOAD = ("import time; from derive.simulate import load_module; "
        "from derive.codegen.model import Combination; import numpy as np; t = time.perf_counter(); "
        "m = load_module(Combination('signsgd')); x = np.zeros((2, 2)); "
        "[m.simulate_sde(x.astype(f), np.array([0.01, 1.0], f), np.ones(2), 2, np.array([2]), 0, 32, False) "
        "for f in (np.float64, np.float32)]; print(time.perf_counter() - t)")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N=200, d=50, T=200")
    a = ap.parse_args()
    n, d, steps = (200, 50, 200) if a.quick else (1000, 100, 1000)
    eta, sigma = 0.01, 1.0
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = float(subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, cwd=ROOT).stdout)
        warm = float(subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, cwd=ROOT).stdout)
    import numba

    from derive.codegen.model import Combination
    from derive.simulate import load_module

    m = load_module(Combination("signsgd"))
    x0 = np.random.default_rng(1).standard_normal((n, d))
    lam = np.ones(d)
    per = n * d * steps
    print(f"SignSGD SDE, Gaussian, N={n} d={d} T={steps}: ns per path-step-dimension")
    print(f"cold compile (both dtypes, fresh cache) {cold:.2f} s, cached load {warm:.2f} s (module import + first calls, after importing derive)")
    print(f"{'implementation':28s}{'dtype':>9s}{'threads':>9s}{'ns':>9s}{'vs NumPy':>10s}")
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("(PyTorch not installed: its baseline is skipped)")
    for dtype in (np.float64, np.float32):
        t = time.perf_counter()
        numpy_em(x0, lam, eta, sigma, steps, dtype)
        base = (time.perf_counter() - t) / per * 1e9
        print(f"{'NumPy vectorised EM':28s}{dtype.__name__:>9s}{1:>9d}{base:9.2f}{1.0:10.2f}")
        p = np.array([eta, sigma], dtype)
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            m.simulate_sde(x0[:2].astype(dtype), p, lam, 1, np.array([1]), 0, 32, False)
            t = time.perf_counter()
            m.simulate_sde(x0.astype(dtype), p, lam, steps, np.array([steps]), 0, 32, False)
            ns = (time.perf_counter() - t) / per * 1e9
            print(f"{'generated Numba':28s}{dtype.__name__:>9s}{threads:>9d}{ns:9.2f}{base / ns:10.2f}")
            if have_torch:
                t = time.perf_counter()
                torch_loop(x0, lam, eta, sigma, steps, dtype, threads)
                ns = (time.perf_counter() - t) / per * 1e9
                print(f"{'PyTorch loop':28s}{dtype.__name__:>9s}{threads:>9d}{ns:9.2f}{base / ns:10.2f}")


if __name__ == "__main__":
    main()
