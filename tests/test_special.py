"""The generated modules' branch-free erf (templates/special.py.j2): accuracy against math.erf and
mpmath over the whole real line (tails, 0, +-inf, NaN), and that a loop calling it vectorizes."""

from __future__ import annotations

import math
import re

import mpmath
import numba
import numpy as np
import pytest

from derive.combination import Combination
from derive.simulate import load_module

MOD = load_module(Combination("signsgd"))  # a built-in module that calls erf


@numba.njit(cache=False)
def _apply(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = MOD_ERF(x[i])
    return out


MOD_ERF = MOD._erf


def _grid(dtype):
    rng = np.random.default_rng(0)
    tiny = np.geomspace(1e-300 if dtype == np.float64 else 1e-44, 0.5, 20_000)
    x = np.concatenate(
        [
            np.linspace(-7, 7, 700_001),
            np.linspace(0.99, 1.01, 20_001),
            rng.standard_normal(100_000) * 2,
            tiny,
            -tiny,
            [0.0, -0.0, 5.9, 5.93, 6.0, 3.9, 3.93, 4.0, 8.0, 30.0, 1e10, 1e300],
        ]
    )
    with np.errstate(over="ignore"):
        return x.astype(dtype)


def _ulps(got, ref):
    return np.abs(got.astype(np.float64) - ref.astype(np.float64)) / np.spacing(np.abs(ref)).astype(np.float64)


def test_float64_erf_matches_math_erf_and_mpmath():
    x = _grid(np.float64)
    got = _apply(x)
    ref = np.array([math.erf(v) for v in x])
    nz = ref != 0
    assert np.abs(got - ref).max() <= 2.3e-16  # glibc is itself off by up to 1 ulp
    assert _ulps(got[nz], ref[nz]).max() <= 2
    mpmath.mp.dps = 30
    sub = x[::100]
    exact = np.array([float(mpmath.erf(mpmath.mpf(float(v)))) for v in sub])
    nz = exact != 0
    assert _ulps(_apply(sub)[nz], exact[nz]).max() <= 1
    assert np.abs(_apply(sub) - exact).max() <= 1.2e-16


def test_float32_erf_within_2_ulp_of_rounded_math_erf():
    x = _grid(np.float32)
    x = x[np.isfinite(x)]
    got = _apply(x)
    assert got.dtype == np.float32
    ref = np.array([math.erf(float(v)) for v in x]).astype(np.float32)
    nz = ref != 0
    assert _ulps(got[nz], ref[nz]).max() <= 2
    assert np.array_equal(got[~nz], ref[~nz])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erf_special_values(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 40.0, -40.0], dtype)
    got = _apply(x)
    np.testing.assert_array_equal(got[:4], np.array([0.0, -0.0, 1.0, -1.0], dtype))
    assert np.signbit(got[1]) and not np.signbit(got[0])
    assert np.isnan(got[4]) and got[5] == 1 and got[6] == -1


def test_a_loop_calling_erf_vectorizes():
    import llvmlite.binding as ll

    if not ll.get_host_cpu_features().get("avx2", False):
        pytest.skip("no AVX2 on this CPU")

    @numba.njit(cache=False, error_model="numpy")
    def update(x, c):
        for j in range(x.shape[0]):
            e = MOD_ERF(c * x[j])
            x[j] += e * math.sqrt(max(0.0, 1.0 - e * e))

    update(np.ones(16), 0.5)
    asm = next(iter(update.inspect_asm().values()))
    assert re.search(r"vdivpd\s+.*%[yz]mm", asm), "no packed division: the erf loop did not vectorize"
    assert not re.search(r"call\w*\s+\S*erf", asm), "a library erf is still called"


def test_a_float32_loop_calling_erf_vectorizes_in_float32():
    """_erf32 is evaluated in float32 (full-width float32 vectors), not widened to float64."""
    import llvmlite.binding as ll

    if not ll.get_host_cpu_features().get("avx2", False):
        pytest.skip("no AVX2 on this CPU")

    @numba.njit(cache=False, error_model="numpy")
    def update(x, c):
        for j in range(x.shape[0]):
            e = MOD_ERF(c * x[j])
            x[j] += e * math.sqrt(max(np.float32(0), np.float32(1) - e * e))

    update(np.ones(16, np.float32), np.float32(0.5))
    asm = next(iter(update.inspect_asm().values()))
    assert re.search(r"vdivps\s+.*%[yz]mm", asm), "no packed float32 division: the erf loop did not vectorize"
    assert not re.search(r"vdivpd|vcvtps2pd", asm), "the float32 erf is evaluated in float64"
    assert not re.search(r"call\w*\s+\S*erf", asm), "a library erf is still called"
