"""Random numbers of the generated simulators: one xoshiro256++ stream per (seed, stream, path).

A stream's state is a tuple of four uint64 that kernels keep in local variables (registers): every
draw takes the state ``s`` and returns ``(value, new state)``. Streams are seeded by splitmix64 from
(seed, stream, path), a pure function of its arguments, so results do not depend on threads or on
how paths are chunked. Normals come from a 128-layer ziggurat (Doornik's ZIGNOR); its fast path
(about 99% of draws) is one xoshiro step, a table lookup and a compare.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U7 = np.uint64(0x7F)
_U1 = np.uint64(1)
_S11, _S17, _S19, _S23, _S27, _S30, _S31, _S41, _S45 = (np.uint64(n) for n in (11, 17, 19, 23, 27, 30, 31, 41, 45))
_2M53 = 2.0**-53


@njit(cache=True)
def _mix(z):
    """splitmix64 finalizer: a bijective avalanche of one 64-bit word."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def seed_stream(seed, stream, path):
    """The xoshiro256++ state (4 uint64) of one path: a pure function of its arguments."""
    h = _mix(_mix(_mix(np.uint64(seed) + _GOLD) ^ np.uint64(stream)) + np.uint64(path) * _GOLD)
    h0 = h + _GOLD
    h1 = h0 + _GOLD
    h2 = h1 + _GOLD
    h3 = h2 + _GOLD
    return (_mix(h0), _mix(h1), _mix(h2), _mix(h3))


@njit(cache=True)
def next_u64(s):
    """xoshiro256++ (Blackman and Vigna): (the next 64-bit output, the new state)."""
    s0, s1, s2, s3 = s
    a = s0 + s3
    r = ((a << _S23) | (a >> _S41)) + s0
    t = s1 << _S17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    return r, (s0, s1, s2, (s3 << _S45) | (s3 >> _S19))


@njit(cache=True)
def random_bit(s):
    """One fair random bit (0 or 1) and the new state."""
    r, s = next_u64(s)
    return int(r & _U1), s


@njit(cache=True)
def uniform(s):
    """Uniform on (0, 1): the top 53 bits, centred in their cell (never 0, never 1)."""
    r, s = next_u64(s)
    return (float(r >> _S11) + 0.5) * _2M53, s


def _zig_tables(c=128, r=3.442619855899, v=9.91256303526217e-3):
    """Ziggurat layers of the half normal (Doornik's ZIGNOR): edges x_i and ratios x_{i+1}/x_i."""
    x = np.empty(c + 1)
    f = math.exp(-0.5 * r * r)
    x[0], x[1], x[c] = v / f, r, 0.0
    for i in range(2, c):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    return x, x[1:] / x[:-1], r


_ZX, _ZR, _ZTAIL = _zig_tables()


@njit(cache=True)
def _normal_slow(i, u, s):
    """The ziggurat's rare branches (base strip tail, wedges), then fresh draws until one is accepted."""
    while True:
        if i == 0:
            while True:
                a, s = uniform(s)
                b, s = uniform(s)
                x = math.log(a) / _ZTAIL
                if -2.0 * math.log(b) >= x * x:
                    return (x - _ZTAIL if u < 0.0 else _ZTAIL - x), s
        x = u * _ZX[i]
        f0 = math.exp(-0.5 * (_ZX[i] * _ZX[i] - x * x))
        f1 = math.exp(-0.5 * (_ZX[i + 1] * _ZX[i + 1] - x * x))
        w, s = uniform(s)
        if f1 + w * (f0 - f1) < 1.0:
            return x, s
        bits, s = next_u64(s)
        i = int(bits & _U7)
        u = 2.0 * (float(bits >> _S11) * _2M53) - 1.0
        if abs(u) < _ZR[i]:
            return u * _ZX[i], s


@njit(cache=True)
def normal(s):
    """Standard normal by the ziggurat: low 7 bits pick a layer, the top 53 give the abscissa."""
    bits, s = next_u64(s)
    i = int(bits & _U7)
    u = 2.0 * (float(bits >> _S11) * _2M53) - 1.0
    if abs(u) < _ZR[i]:
        return u * _ZX[i], s
    return _normal_slow(i, u, s)


@njit(cache=True)
def stream_normals(seed, stream, path, count):
    """The first ``count`` normals of one path's stream (what the SDE kernels draw, in order)."""
    s = seed_stream(seed, stream, path)
    out = np.empty(count)
    for i in range(count):
        out[i], s = normal(s)
    return out
