"""The integration schemes against exact results (no Monte Carlo).

For a linear SDE dX = (A X + a) dt + sum_j (B_j X + b_j) dW_j the first and second moments solve a
linear ODE, dm/dt = L(t) m with m = (1, E X_i, E X_i X_j), obtained by applying the generator
b . grad + (1/2) GG^T : Hess to the monomials (SymPy). One step of a scheme maps them linearly too,
m' = A_h m, and A_h is obtained by applying the scheme's own symbolic update
(:func:`derive.codegen.schemes.split_euler`, the one the generated kernels print) to the monomials
and averaging over the normals (SymPy). Both are exact, so the error of each scheme is known to
rounding at every step size, and its order is read off halving h: euler must show order 1 and
weak2 (Talay-Tubaro extrapolation of euler) order 2, over 5 step sizes (T/8 ... T/128).
Mutations (a diffusion 10% off, the extrapolation weights wrong) must fail the same checks.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import sympy as sp

from derive.codegen.schemes import split_euler
from derive.runtime.schemes import SCHEMES

t, h = sp.symbols("t h", positive=True)
STEPS = (8, 16, 32, 64, 128)


class Linear:
    """A linear SDE: states (x first, then auxiliary states), drift and diffusion in them and t."""

    def __init__(self, name, states, drift, diffusion, start, t0=0.0, T=1.0):
        self.name, self.states, self.drift = name, list(states), [sp.sympify(e) for e in drift]
        self.diffusion = sp.Matrix(diffusion)
        self.start, self.t0, self.T = np.array(start, float), t0, T
        n = len(self.states)
        self.basis = [sp.Integer(1), *self.states] + [
            self.states[i] * self.states[j] for i in range(n) for j in range(i, n)
        ]

    def coefficients(self, poly: sp.Expr) -> list[sp.Expr]:
        """``poly`` (degree <= 2 in the states) in the monomial basis."""
        p = sp.Poly(sp.expand(poly), *self.states)
        out = []
        for mono in self.basis:
            exps = sp.Poly(mono, *self.states).monoms()[0]
            out.append(p.coeff_monomial(exps))
        return out

    def generator_matrix(self):
        """L(t): d/dt E[phi_k] = sum_l L_kl E[phi_l], from the generator of the SDE."""
        cov = self.diffusion * self.diffusion.T
        rows = []
        for phi in self.basis:
            Lphi = sum(b * sp.diff(phi, s) for b, s in zip(self.drift, self.states))
            Lphi += (
                sum(
                    cov[i, j] * sp.diff(phi, si, sj)
                    for i, si in enumerate(self.states)
                    for j, sj in enumerate(self.states)
                )
                / 2
            )
            rows.append(self.coefficients(Lphi))
        return sp.lambdify(t, sp.Matrix(rows), "numpy")

    def step_matrix(self, diffusion_scale=1):
        """A(t_end, h): E[phi_k(new) | S] = sum_l A_kl phi_l(S) for one split Euler step ending at t_end."""
        K = self.diffusion.shape[1]
        xis = sp.symbols(f"xi1:{K + 1}", real=True)
        # t in the coefficients is the end of the step, where the generated code evaluates gamma_j
        step = split_euler(self.states, self.drift, diffusion_scale * self.diffusion, h, xis).composed()
        rows = []
        for phi in self.basis:
            value = sp.expand(sp.sympify(phi).xreplace(dict(zip(self.states, step))))
            rows.append(self.coefficients(_gaussian_mean(value, xis)))
        return sp.lambdify((t, h), sp.Matrix(rows), "numpy")

    def initial(self) -> np.ndarray:
        vals = dict(zip(self.states, self.start))
        return np.array([float(m.xreplace(vals)) for m in self.basis])

    def exact(self) -> np.ndarray:
        L = self.generator_matrix()
        m0 = self.initial()
        if not any(self.drift[i].has(t) for i in range(len(self.drift))) and not self.diffusion.has(t):
            return scipy.linalg.expm(np.array(L(0.0), float) * self.T) @ m0
        sol = scipy.integrate.solve_ivp(
            lambda s, m: np.array(L(s), float) @ m,
            (self.t0, self.t0 + self.T),
            m0,
            method="DOP853",
            rtol=1e-13,
            atol=1e-15,
        )
        return sol.y[:, -1]

    def euler(self, steps: int, A=None) -> np.ndarray:
        A = A or self.step_matrix()
        m = self.initial()
        dt = self.T / steps
        for k in range(1, steps + 1):
            m = np.array(A(self.t0 + k * dt, dt), float) @ m
        return m


def _gaussian_mean(expr: sp.Expr, xis) -> sp.Expr:
    """E over independent standard normals xis of a polynomial in them."""
    poly = sp.Poly(expr, *xis)
    out = sp.Integer(0)
    for exps, coeff in poly.terms():
        out += coeff * math.prod(0 if e % 2 else math.prod(range(e - 1, 0, -2)) for e in exps)
    return out


def _sdes() -> list[Linear]:
    x, y, m = sp.symbols("x y m", real=True)
    eta = sp.Rational(1, 10)
    H = sp.Matrix([[2, sp.Rational(4, 5)], [sp.Rational(4, 5), 1]])
    root = sp.Matrix([[1, 0], [sp.Rational(1, 2), sp.Rational(7, 10)]])  # Sigma^(1/2), any factor
    X = sp.Matrix([x, y])
    return [
        Linear("Ornstein-Uhlenbeck", [x], [-sp.Rational(3, 2) * x], [[sp.Rational(4, 5)]], [1.0]),
        Linear("geometric Brownian motion", [x], [x / 2], [[sp.Rational(3, 5) * x]], [1.0]),
        Linear("linearised SGD SDE (full H and Sigma)", [x, y], list(-H * X), sp.sqrt(eta) * root, [1.0, -0.5]),
        Linear(
            "split: heavy-ball momentum (x reads the new m)",
            [x, m],
            [-m, 2 * (x - m)],
            [[0], [sp.Rational(1, 2)]],
            [1.0, 0.0],
        ),
        Linear(
            "time-dependent drift 1.5 (1 - exp(-2 t)) (a bias correction)",
            [x],
            [-sp.Rational(3, 2) * (1 - sp.exp(-2 * t)) * x],
            [[sp.Rational(4, 5)]],
            [1.0],
            t0=0.25,
        ),
        Linear(
            "two non-commuting noises, x dW1 and dW2", [x], [-x], [[sp.Rational(1, 2) * x, sp.Rational(3, 10)]], [1.0]
        ),
    ]


def _errors(sde: Linear, scheme: str, diffusion_scale=1, weights=(2, -1)) -> list[float]:
    exact = sde.exact()
    A = sde.step_matrix(diffusion_scale)
    out = []
    for n in STEPS:
        if scheme == "euler":
            m = sde.euler(n, A)
        else:
            fine, coarse = sde.euler(2 * n, A), sde.euler(n, A)
            m = weights[0] * fine + weights[1] * coarse
        out.append(float(np.max(np.abs(m - exact)[1:])))  # every first and second moment
    return out


def observed_orders(errors: list[float]) -> list[float]:
    """log2 of successive error ratios as h halves."""
    return [math.log2(a / b) for a, b in zip(errors, errors[1:])]


def has_order(errors: list[float], order: float, tol: float = 0.15) -> bool:
    """True if the last three halvings of h all show the order within ``tol``."""
    return all(abs(o - order) <= tol for o in observed_orders(errors)[-3:])


SDES = _sdes()


@pytest.mark.parametrize("sde", SDES, ids=[s.name for s in SDES])
def test_euler_is_weak_order_1_and_weak2_order_2_against_exact_moments(sde):
    e1, e2 = _errors(sde, "euler"), _errors(sde, "weak2")
    assert has_order(e1, 1.0), (sde.name, e1, observed_orders(e1))
    assert has_order(e2, 2.0), (sde.name, e2, observed_orders(e2))
    assert e2[-1] < e1[-1] / 20  # and the extrapolation is far better at the finest step


def test_the_scheme_objects_combine_their_runs():
    """weak2 is Talay-Tubaro's 2 fine - coarse on a fine run of twice the substeps; euler one run."""
    weak2, euler = SCHEMES["weak2"], SCHEMES["euler"]
    assert weak2.combine(np.array([3.0]), np.array([5.0]))[0] == 1.0 and weak2.substeps(3) == (6, 3)
    assert euler.combine(np.array([3.0]))[0] == 3.0 and euler.substeps(3) == (3,) and euler.runs == 1


@pytest.mark.parametrize("sde", SDES[:3], ids=[s.name for s in SDES[:3]])
def test_mutations_fail_the_order_checks(sde):
    """A diffusion 10% too large converges to the wrong moments (no order at all); Talay-Tubaro
    weights (3/2, -1/2) instead of (2, -1) leave order 1; the fine run alone is order 1."""
    wrong = _errors(sde, "euler", diffusion_scale=1.1)
    assert not has_order(wrong, 1.0) and observed_orders(wrong)[-1] < 0.2
    for weights in ((1.5, -0.5), (1, 0)):
        e = _errors(sde, "weak2", weights=weights)
        assert not has_order(e, 2.0) and has_order(e, 1.0), (weights, observed_orders(e))


def test_split_step_reads_new_auxiliary_states_except_same_step():
    x, m, g, xi = sp.symbols("x m g xi", real=True)
    step = split_euler([x, m], [-m, g - m], sp.Matrix([[0], [1]]), h, [xi])
    assert step.x == x - h * sp.Symbol("_n_m", real=True)
    held = split_euler([x, m], [-m, g - m], sp.Matrix([[0], [1]]), h, [xi], same_step=("m",))
    assert held.x == x - h * m
    assert step.composed()[0] == x - h * (m + (g - m) * h + sp.sqrt(h) * xi)


def test_positive_states_get_the_boundary_rule():
    from derive.codegen.schemes import bounded

    x, xi = sp.symbols("x xi", real=True)
    v = sp.Symbol("v", positive=True)
    B = sp.Symbol("B")
    step = split_euler([x, v], [-x, 1 - v], sp.Matrix([[0], [v]]), h, [xi], bound=lambda e: bounded(e, B))
    raw = v + (1 - v) * h + v * sp.sqrt(h) * xi
    assert step.aux[0] == sp.Max(raw, B * raw, evaluate=False)
    for b, expect in ((-1, 0.3), (0, 0.0)):
        assert float(step.aux[0].xreplace({B: b, v: 1, h: 1, xi: -1.3})) == pytest.approx(expect)


def test_moment_machinery_reproduces_known_euler_recursion():
    """Guard on the test's own machinery: for OU, Euler's mean recursion is (1 - lam h)^n x0."""
    ou = SDES[0]
    m = ou.euler(8)
    assert m[1] == pytest.approx((1 - 1.5 / 8) ** 8)
    assert m[2] == pytest.approx((1 - 1.5 / 8) ** 16 + 0.64 / 8 * sum((1 - 1.5 / 8) ** (2 * k) for k in range(8)))
    assert list(itertools.islice(ou.exact(), 2))[1] == pytest.approx(math.exp(-1.5))
