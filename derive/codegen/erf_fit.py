"""How the coefficients of the generated modules' erf (templates/special.py.j2) were fitted.

Not imported at run time. ``python -m derive.codegen.erf_fit`` prints the fits (a few minutes in
mpmath at 40 digits). Each is a least-squares fit on Chebyshev nodes followed by Lawson
reweighting (which drives it towards the minimax fit), in relative error unless noted:

- erf(x)/x = P(t), t = x^2 on [0, 1]: degree 11 for float64 (7e-18), 6 for float32 (1.2e-9);
- x exp(x^2) erfc(x) = p(s)/q(s), s = 1/x^2 (a Stieltjes function of s, hence the rational),
  fitted in the absolute error of erf, i.e. weighted by erfc(x): x in [1, 6], degree 7/7 for
  float64 (5e-18), x in [1, 4], 3/3 for float32 (3e-10). The template evaluates N(y)/D(y) with
  y = x^2, N(y) = y^m p(1/y), D(y) = y^m q(1/y) (reversed coefficients, one division);
- exp(r) on |r| <= ln(2)/2: degree 11 (3e-18) and 6 (1.9e-9).

float32 kernels evaluate the float32 fits in float32 arithmetic, with the coefficients rounded to
float32 (printed as the exact float64 value of that float32, which the template writes as
``np.float32(c)``); checked on every float32 |x| <= 4.2, they are within 1 ulp of float32(erf(x)).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np


def _nodes(lo, hi, n):
    return [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (2 * i + 1) / (2 * n)) for i in range(n)]


def _val(c, x):
    return mp.polyval(list(reversed(c)), x)


def poly_fit(f, lo, hi, deg, n=300, lawson=30):
    """Coefficients (low order first) of a polynomial with small relative error to f on [lo, hi]."""
    xs = _nodes(mp.mpf(lo), mp.mpf(hi), n)
    fs = [f(x) for x in xs]
    w = [mp.mpf(1)] * n
    for _ in range(lawson + 1):
        A, b = mp.matrix(n, deg + 1), mp.matrix(n, 1)
        for i, (x, fx) in enumerate(zip(xs, fs, strict=False)):
            for j in range(deg + 1):
                A[i, j] = mp.sqrt(w[i]) * x**j / fx
            b[i] = mp.sqrt(w[i])
        c = mp.qr_solve(A, b)[0]
        c = [c[j] for j in range(deg + 1)]
        err = [abs(_val(c, x) / fx - 1) for x, fx in zip(xs, fs, strict=False)]
        total = sum(wi * e for wi, e in zip(w, err, strict=False))
        w = [max(wi * e / total, mp.mpf(10) ** -30) for wi, e in zip(w, err, strict=False)]
    return c


def rational_fit(f, lo, hi, m, weight=lambda s: 1, n=300, iters=12, lawson=20):
    """(p, q), q[0] = 1, with p/q close to f on [lo, hi] in weight * relative error
    (Sanathanan-Koerner iteration of the linearized problem, then Lawson reweighting)."""
    xs = _nodes(mp.mpf(lo), mp.mpf(hi), n)
    fs = [f(x) for x in xs]
    q, w = [mp.mpf(1)] + [mp.mpf(0)] * m, [mp.mpf(1)] * n
    for it in range(iters + lawson):
        A, b = mp.matrix(n, 2 * m + 1), mp.matrix(n, 1)
        for i, (x, fx) in enumerate(zip(xs, fs, strict=False)):
            sc = mp.sqrt(w[i]) * weight(x) / (fx * _val(q, x))
            for j in range(m + 1):
                A[i, j] = sc * x**j
            for j in range(1, m + 1):
                A[i, m + j] = -sc * fx * x**j
            b[i] = sc * fx
        c = mp.qr_solve(A, b)[0]
        p, q = [c[j] for j in range(m + 1)], [mp.mpf(1)] + [c[m + j] for j in range(1, m + 1)]
        if it >= iters:
            err = [weight(x) * abs(_val(p, x) / _val(q, x) / fx - 1) for x, fx in zip(xs, fs, strict=False)]
            total = sum(wi * e for wi, e in zip(w, err, strict=False))
            w = [max(wi * e / total, mp.mpf(10) ** -30) for wi, e in zip(w, err, strict=False)]
    return p, q


def erf_over_x(t):
    x = mp.sqrt(t)
    return 2 / mp.sqrt(mp.pi) if t == 0 else mp.erf(x) / x


def scaled_erfc(s):
    x = 1 / mp.sqrt(s)
    return x * mp.exp(x * x) * mp.erfc(x)


def main() -> None:
    mp.mp.dps = 40
    half = mp.log(2) / 2
    weight = lambda s: mp.erfc(1 / mp.sqrt(s))
    for name, deg, top, m, edeg in (("float64", 11, 6, 7, 11), ("float32", 6, 4, 3, 6)):
        fl = (lambda v: float(v)) if name == "float64" else (lambda v: float(np.float32(float(v))))
        print(name, "P", [fl(v) for v in poly_fit(erf_over_x, 0, 1, deg)])
        p, q = rational_fit(scaled_erfc, mp.mpf(1) / top**2, 1, m, weight)
        print(name, "p", [fl(v) for v in p], "q", [fl(v) for v in q])
        print(name, "exp", [fl(v) for v in poly_fit(mp.exp, -half, half, edeg)])
    print(
        "float32 Cody-Waite: 1/ln2",
        float(np.float32(1 / mp.log(2))),
        "ln2 hi",
        float(np.float32(0.693145751953125)),
        "ln2 lo",
        float(np.float32(float(mp.log(2) - mp.mpf("0.693145751953125")))),
    )


if __name__ == "__main__":
    main()
