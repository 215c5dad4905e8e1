"""Pair covariances of every built-in against the Monte Carlo covariance of one optimizer step.

Two coordinates i, j with correlated Gaussian noise (drawn by derive.correlation.NoiseModel): one step of
the optimizer, written out here by hand with PyTorch semantics (beta = 1 - eta rho, step count
k = t/eta + 1), gives the increments Delta a_i, Delta b_j of every state; the derived entry is
Cov[Delta a_i, Delta b_j]/dt at the leading order, eta times an O(1) coefficient. The one-step covariance
carries an O(eta) relative bias, removed by Richardson extrapolation of Cov/eta^2 from eta and eta/2 on
the same draws (the per-draw combination 2 p(eta/2) - p(eta) also gives the standard error). Tolerance:
4 standard errors, plus the O(eta^2) left after extrapolation, bounded by 100 eta^2 times the largest
entry (1e-6 of it at eta = 1e-4; it matters only for entries beyond the leading order, such as Adam's
x rows, whose one-step covariance is O(eta^2) relative). A mutant with r dropped from one term of the
largest entry must fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derive.bivariate import lambdify_modules
from derive.correlation import NoiseModel
from derive.pairs import PairCovariance, derive_pairs

N = 100_000  # 4 SE resolve about 2% of the SGD x,x pair; the r-dropped mutants fail by 23 to 220 SE
ETA = 1e-4
SIGMA = (1.0, 0.7)
POINTS = [(0.3, -0.5, -0.9), (0.8, 0.2, 0.0), (-0.4, 1.1, 0.9)]  # (g_i, g_j, r)
HYPER = dict(rho=1.3, rho1=2.0, rho2=0.7, eps=0.1, theta=0.4, beta1=0.9, c=1.0, t=0.9)
STATES = {"x": (0.7, -0.4), "m": (0.3, -0.2), "v": (0.8, 1.5)}
LION_M = (0.05, -0.1)  # Lion's threshold (beta1 m + (1 - beta1) g)/((1 - beta1) sigma) kept O(1)
OPTIMIZERS = ["sgd", "signsgd", "rmsprop", "rmspropw", "adam", "adamw", "lion", "clipsgd", "sgdm"]


def one_step(name: str, grad: np.ndarray, c: int, eta: float) -> dict[str, np.ndarray]:
    """Delta of each state of coordinate c for one step with stochastic gradients ``grad``."""
    h = HYPER
    x, m, v = (STATES[s][c] for s in "xmv")
    theta = h["theta"] if name.endswith("w") else 0.0
    if name == "sgd":
        return {"x": -eta * grad}
    if name == "signsgd":
        return {"x": -eta * np.sign(grad)}
    if name == "clipsgd":
        return {"x": -eta * np.clip(grad, -h["c"], h["c"])}
    if name == "sgdm":
        beta = 1 - eta * h["rho"]
        m_new = beta * m + (1 - beta) * grad
        return {"x": -eta * m_new, "m": m_new - m}
    if name == "lion":
        m = LION_M[c]
        beta1, beta2 = h["beta1"], 1 - eta * h["rho2"]
        u = beta1 * m + (1 - beta1) * grad
        return {"x": -eta * (np.sign(u) + theta * x), "m": (beta2 * m + (1 - beta2) * grad) - m}
    if name.startswith("rmsprop"):
        beta = 1 - eta * h["rho"]
        v_new = beta * v + (1 - beta) * grad**2
        x_new = x * (1 - eta * theta) - eta * grad / (np.sqrt(v_new) + h["eps"])
        return {"x": x_new - x, "v": v_new - v}
    beta1, beta2 = 1 - eta * h["rho1"], 1 - eta * h["rho2"]
    k = h["t"] / eta + 1
    m_new = beta1 * m + (1 - beta1) * grad
    v_new = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m_new / (1 - beta1**k), v_new / (1 - beta2**k)
    x_new = x * (1 - eta * theta) - eta * m_hat / (np.sqrt(v_hat) + h["eps"])
    return {"x": x_new - x, "m": m_new - m, "v": v_new - v}


def coefficient(pairs: PairCovariance, expr: sp.Expr, g: tuple, r: float, optimizer: str) -> float:
    """The entry divided by eta (its O(1) coefficient), evaluated at the test point."""
    eta = sp.Symbol("eta", positive=True)
    expr, factor = pairs.explicit(expr).as_independent(eta, as_Add=False)
    assert factor == eta or expr == 0, factor  # the entry is eta times an O(1) coefficient
    m = LION_M if optimizer == "lion" else STATES["m"]
    values = {"r": r, "t": HYPER["t"], **{k: v for k, v in HYPER.items()}}
    for c, suffix in enumerate("ij"):
        values.update({f"g_{suffix}": g[c], f"sigma_{suffix}": SIGMA[c], f"m_{suffix}": m[c]})
        values.update({f"{s}_{suffix}": STATES[s][c] for s in "xv"})
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    assert "eta" not in {s.name for s in free}, expr
    f = sp.lambdify(free, expr, modules=lambdify_modules())
    return float(f(*[values[s.name] for s in free]))


def monte_carlo(optimizer: str, g: tuple, r: float, seed: int) -> dict[tuple[str, str], tuple[float, float]]:
    """{(a, b): (Cov/eta^2 extrapolated to eta = 0, its standard error)} from one step on N draws."""
    noise = NoiseModel.correlated(r, 2, sigma=SIGMA).draw(N, seed)
    grads = [g[c] + noise[:, c] for c in range(2)]
    products = {}
    for eta in (ETA, ETA / 2):
        di, dj = (one_step(optimizer, grads[c], c, eta) for c in range(2))
        for a in di:
            for b in dj:
                p = (di[a] - di[a].mean()) * (dj[b] - dj[b].mean()) / eta**2
                products.setdefault((a, b), []).append(p)
    out = {}
    for key, (coarse, fine) in products.items():
        y = 2 * fine - coarse
        out[key] = (float(y.mean()), float(y.std() / np.sqrt(N)))
    return out


@pytest.fixture(scope="module")
def derived():
    cache: dict[str, PairCovariance] = {}

    def get(name: str) -> PairCovariance:
        if name not in cache:
            cache[name] = derive_pairs(name)
        return cache[name]

    return get


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_pair_covariances_match_one_step_monte_carlo(optimizer, derived):
    pairs = derived(optimizer)
    resolved = 0
    for n, (gi, gj, r) in enumerate(POINTS):
        mc = monte_carlo(optimizer, (gi, gj), r, seed=1000 + n)
        assert set(mc) == set(pairs.entries)
        want = {key: coefficient(pairs, pairs.entries[key], (gi, gj), r, optimizer) for key in mc}
        bias = 100 * ETA**2 * max(abs(w) for w in want.values())
        for key, (value, se) in mc.items():
            assert abs(value - want[key]) <= 4 * se + bias, (optimizer, key, (gi, gj, r), value, want[key], se)
            resolved += abs(want[key]) > 4 * se
    assert resolved >= 2  # the comparison resolves non-zero covariances, not only zeros


def drop_r(expr: sp.Expr, r: sp.Symbol, at: dict) -> sp.Expr:
    """expr with r removed from one of its terms (inside functions such as Phi2(h, k, r) or erf it is set
    to 0, as for independent draws; a remaining factor r is set to 1); of all such single-term mutants,
    the one that moves the value most at ``at``."""
    coefficient, expr = expr.as_independent(r, as_Add=False)
    terms = [t for t in sp.Add.make_args(sp.expand(expr)) if t.has(r)]

    def mutated(term):
        inside = {f: f.xreplace({r: 0}) for f in term.atoms(sp.Function) if f.has(r)}
        return term.xreplace(inside).subs(r, 1)

    def value(e):
        free = sorted(e.free_symbols, key=lambda s: s.name)
        f = sp.lambdify(free, e, modules=lambdify_modules())
        return float(f(*[at[s] for s in free]))

    shift = [abs(value(mutated(t) - t)) for t in terms]
    term = terms[int(np.argmax(shift))]
    return coefficient * (expr - term + mutated(term))


@pytest.mark.parametrize("optimizer", ["sgd", "signsgd", "rmsprop", "adam", "lion", "clipsgd"])
def test_mutant_with_r_dropped_fails(optimizer, derived):
    """Dropping r from one term of the largest entry moves it by many standard errors at r = +-0.9."""
    pairs = derived(optimizer)
    gi, gj, r = POINTS[2]
    mc = monte_carlo(optimizer, (gi, gj), r, seed=7)
    key = max(mc, key=lambda k: abs(mc[k][0]) / mc[k][1])
    m = LION_M if optimizer == "lion" else STATES["m"]
    at = {"r": r, **HYPER, "eta": 1.0, "g_i": gi, "g_j": gj, "sigma_i": SIGMA[0], "sigma_j": SIGMA[1]}
    at.update({"m_i": m[0], "m_j": m[1], "v_i": STATES["v"][0], "v_j": STATES["v"][1]})
    subs = {s: at[s.name] for s in pairs.explicit(pairs.entries[key]).free_symbols if s.name in at}
    mutant = drop_r(pairs.explicit(pairs.entries[key]), pairs.r, subs)
    value, se = mc[key]
    right = coefficient(pairs, pairs.entries[key], (gi, gj), r, optimizer)
    wrong = coefficient(pairs, mutant, (gi, gj), r, optimizer)
    assert abs(value - right) <= 4 * se
    assert abs(value - wrong) > 4 * se, (optimizer, key, value, wrong, se)
