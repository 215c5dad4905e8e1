"""Stationary laws of the SDEs on the quadratic model, derived from the SDE objects.

For f = lambda x^2/2 per coordinate the SDE is linearised about its fixed point (see
:mod:`derive.theory.quadratic`); its stationary law is Gaussian with mean S* and the covariance C
of the Lyapunov equation A C + C A^T + B = 0, and the expected loss is E f = lambda C_xx / 2 per
coordinate. Beyond that, each derived from the SDE:

* one-state SDEs whose coefficients are not linear in x (SignSGD): the consistent expansion of
  E X^2 beyond the linear phase (:mod:`derive.theory.expansion`, reference 5b) and, given numbers,
  the exact stationary law by quadrature of the zero-flux density (:mod:`derive.theory.exact`);
* optimizers with momentum (Adam(W)): the published SDE's law, the full law with the momentum kept
  and its rho1 -> oo limit (the paper's lemma form), side by side (:mod:`derive.theory.momentum`);
* a consistency check: the Gaussian N(S*, C) zeroes the stationary Fokker-Planck operator of the
  linearised SDE (true by construction when C solves the Lyapunov equation; it guards the algebra);
* for SGD, the full-matrix case: H C + C H = eta Sigma with E f = tr(H C)/2.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from .. import symbols as S
from .evaluate import as_number, substitute
from .exact import ExactStationary, exact_stationary
from .expansion import Expansion, expansion
from .momentum import MomentumLaws, momentum_laws
from .quadratic import LinearModel, NoStationaryLawError, curvature, linear_law, lyapunov, sde_of


@dataclass
class StationaryResult:
    """Stationary mean, covariance and expected loss (per coordinate) of one SDE."""

    model: LinearModel
    covariance: sp.Matrix
    var_x: sp.Expr
    expected_loss: sp.Expr
    expansion: Expansion | None = None  #: E X^2 beyond the linear phase (one-state SDEs)
    momentum: MomentumLaws | None = None  #: published / full / lemma laws (optimizers with momentum)
    fokker_planck: bool | None = None  #: consistency check of the linearised law

    @property
    def sde(self):
        return self.model.sde

    def to_text(self, hint: bool = True) -> str:
        """The derivation as text; ``hint`` says how to evaluate the exact law numerically."""
        sde, m = self.sde, self.model
        lines = [
            f"stationary law of {sde.optimizer} | noise {sde.noise} | regime {sde.regime} | form {sde.form}",
            f"  model: f = {m.curvature}*x**2/2 per coordinate (g = {m.curvature}*x), t -> oo",
            "  mean: " + ", ".join(f"{k} = {v}" for k, v in m.fixed_point.items()),
            f"  linearised drift A = {m.A.tolist()}",
            f"  B = G G^T at the mean = {m.B.tolist()}",
            f"  covariance C (A C + C A^T + B = 0) = {self.covariance.tolist()}",
            f"  Var x = {self.var_x}   (linearised SDE)",
            f"  E f = {self.expected_loss}   (per coordinate, linearised SDE)",
        ]
        if self.expansion is not None:
            e = self.expansion
            lines += [
                "  beyond the linear phase, from the SDE's series about the minimum (x > 0):",
                f"    drift = -({e.a})*x + ({e.c2})*x**2 + ({e.c3})*x**3 + ...,  D = G G^T = {e.b0} + ({e.d2})*x**2 + ...",
                f"    E x^2 = {e.second_moment}",
                f"    ({e.description})",
                "  exact: the zero-flux density p(x) ~ exp(integral of 2 b/D)/D of the SDE, by quadrature"
                + (" (give --eta, --sigma and --curvature to evaluate it)" if hint else ""),
            ]
        if self.momentum is not None:
            lines.append(self.momentum.to_text())
        if self.fokker_planck is not None:
            lines.append(
                "  consistency check (holds by construction for a linear SDE with the Lyapunov covariance): "
                "N(mean, C) zeroes the stationary Fokker-Planck operator: "
                + ("yes" if self.fokker_planck else "NO (an algebra error)")
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        sde, m = self.sde, self.model
        return {
            "optimizer": sde.optimizer,
            "noise": sde.noise,
            "regime": sde.regime,
            "form": sde.form,
            "curvature": str(m.curvature),
            "mean": {str(k): str(v) for k, v in m.fixed_point.items()},
            "A": [[str(e) for e in row] for row in m.A.tolist()],
            "B": [[str(e) for e in row] for row in m.B.tolist()],
            "covariance": [[str(e) for e in row] for row in self.covariance.tolist()],
            "var_x": str(self.var_x),
            "expected_loss_per_coordinate": str(self.expected_loss),
            "expansion": self.expansion.to_dict() if self.expansion else None,
            "momentum_laws": self.momentum.to_dict() if self.momentum else None,
            "fokker_planck_consistency": self.fokker_planck,
        }

    def at_curvature(self, lam: sp.Expr) -> StationaryResult:
        """This result with the curvature symbol replaced by ``lam`` (the momentum laws are dropped)."""
        sub = {curvature: lam}
        model = LinearModel(
            self.model.sde,
            lam,
            self.model.fixed_point,
            tuple(sp.sympify(b).xreplace(sub) for b in self.model.drift),
            self.model.A.xreplace(sub),
            self.model.B.xreplace(sub),
        )
        expanded = None
        if self.expansion is not None:
            e = self.expansion
            expanded = Expansion(*(sp.sympify(v).xreplace(sub) for v in (e.a, e.c2, e.c3, e.b0, e.d2, e.second_moment)))
        return StationaryResult(
            model,
            self.covariance.xreplace(sub),
            self.var_x.xreplace(sub),
            self.expected_loss.xreplace(sub),
            expanded,
            None,
            self.fokker_planck,
        )

    def evaluate(self, numbers: dict[str, float], curvatures: list[sp.Expr]) -> StationaryValues:
        """Every closed form of this result at the given parameter values, one column per law,
        one row per coordinate (curvature)."""
        return evaluate(self, numbers, curvatures)


def fokker_planck_vanishes(model: LinearModel, cov: sp.Matrix, points: int = 2, seed: int = 0) -> bool:
    """Whether N(S*, C) zeroes -div(A (s - S*) p) + 1/2 sum_ij d_i d_j (B_ij p) (random states only).

    The operator is applied to p = exp(-s^T P s / 2) with P = C^-1; L*p / p is then a polynomial in s
    whose coefficients must vanish. They are functions of the parameters, evaluated with 60 digits
    at ``points`` random positive rational values of the parameters (a nonzero function vanishes
    there with probability 0; rounding leaves about 1e-55), which keeps the check fast.
    """
    idx = [i for i in range(cov.shape[0]) if cov[i, i] != 0]
    n = len(idx)
    shift = sp.symbols(f"s0:{n}", real=True)
    A, B, C = model.A.extract(idx, idx), model.B.extract(idx, idx), cov.extract(idx, idx)
    parameters = sorted(set().union(A.free_symbols, B.free_symbols, C.free_symbols), key=str)
    rng = random.Random(seed)
    for _ in range(points):
        values = {p: sp.Rational(rng.randint(5, 60), rng.randint(7, 31)) for p in parameters}
        An, Bn, Cn = (M.xreplace(values).evalf(60) for M in (A, B, C))
        P = Cn.inv()
        s_vec = sp.Matrix(shift)
        log_p = -(s_vec.T * P * s_vec)[0, 0] / 2

        def d(f: sp.Expr, i: int, log_p=log_p) -> sp.Expr:  # d_i (f p) / p
            return sp.diff(f, shift[i]) + f * sp.diff(log_p, shift[i])

        flux = An * s_vec
        operator = (
            -sum(d(flux[i], i) for i in range(n)) + sum(d(d(Bn[i, j], j), i) for i in range(n) for j in range(n)) / 2
        )
        scale = 1 + max(abs(e) for M in (An, Bn, P) for e in M) ** 3
        if any(abs(c) > 1e-40 * scale for c in sp.Poly(sp.expand(operator), *shift).coeffs()):
            return False
    return True


@lru_cache(maxsize=256)
def _stationary_cached(optimizer, noise, form, nu, regime) -> StationaryResult:
    law = linear_law(optimizer, noise, regime, form, nu)
    model, cov = law.model, law.covariance
    result = StationaryResult(model, cov, law.var_x, sp.factor(model.curvature * law.var_x / 2))
    result.expansion = expansion(model)
    result.momentum = momentum_laws(optimizer, noise, nu, regime)
    result.fokker_planck = fokker_planck_vanishes(model, cov)
    return result


def stationary(
    optimizer, noise="gaussian", form: str = "full", nu=None, lam: sp.Expr = curvature, regime: str = "paper"
) -> StationaryResult:
    """Derive the stationary law of ``optimizer``'s SDE on f = lam x^2/2 (per coordinate).

    The law is derived with a symbolic curvature and cached per process for built-in optimizers
    given by name; a numeric ``lam`` is substituted afterwards (and must be positive).
    """
    lam = sp.sympify(lam)
    if lam.is_number and not lam > 0:
        raise NoStationaryLawError(
            f"curvature {lam} is not positive: the quadratic model is not convex, and the linearised "
            "SDE about x = 0 is unstable, so it has no stationary law"
        )
    key_nu = None if nu is None else str(nu)
    if isinstance(optimizer, str) and isinstance(noise, str):
        result = _stationary_cached(optimizer, noise, form, key_nu, regime)
    else:
        result = _stationary_cached.__wrapped__(optimizer, noise, form, key_nu, regime)
    return result if lam == curvature else result.at_curvature(lam)


# ---- numbers -----------------------------------------------------------------------------
@dataclass
class CoordinateValues:
    """E f of one coordinate (curvature lambda) under each available law."""

    curvature: sp.Expr
    linearised: float | sp.Expr
    second_order: float | sp.Expr | None = None
    exact: ExactStationary | None = None
    laws: dict[str, float | sp.Expr | None] = field(default_factory=dict)  # momentum laws by key


@dataclass
class StationaryValues:
    """A stationary result evaluated at numbers, per coordinate and summed."""

    result: StationaryResult
    numbers: dict[str, float]
    coordinates: list[CoordinateValues]

    @property
    def method(self) -> str:
        if all(c.exact is not None for c in self.coordinates):
            return "exact stationary density of the SDE (quadrature)"
        return "linearised SDE (Lyapunov equation)"

    @property
    def expected_loss(self) -> float | sp.Expr:
        """E f summed over the coordinates: the exact law where it was computed, else the linearised one."""
        if all(c.exact is not None for c in self.coordinates):
            return sum(c.exact.expected_loss for c in self.coordinates)
        return _total([c.linearised for c in self.coordinates])

    def columns(self) -> list[tuple[str, str, list]]:
        cols = [("linearised", "linearised", [c.linearised for c in self.coordinates])]
        if any(c.second_order is not None for c in self.coordinates):
            cols.append(("second_order", "2nd order (5b)", [c.second_order for c in self.coordinates]))
        if any(c.exact is not None for c in self.coordinates):
            cols.append(
                ("exact", "exact (quadrature)", [c.exact.expected_loss if c.exact else None for c in self.coordinates])
            )
        if self.result.momentum is not None:
            for key, _, _ in self.result.momentum.laws():
                cols.append((key, key.replace("_", " "), [c.laws.get(key) for c in self.coordinates]))
        return cols

    def to_text(self) -> str:
        given = ", ".join(f"{k} = {v:g}" for k, v in self.numbers.items())
        lines = [f"  evaluated at {given or 'no parameter values'}; E f per coordinate:"]
        cols = self.columns()
        lines.append("    " + f"{'lambda':>10s}" + "".join(f"{title:>22s}" for _, title, _ in cols))
        rows = [[c.curvature] + [col[2][i] for col in cols] for i, c in enumerate(self.coordinates)]
        if len(rows) > 1:
            rows.append(["sum"] + [_total(col[2]) for col in cols])
        for row in rows:
            lines.append("    " + f"{str(row[0]):>10s}" + "".join(f"{_fmt(v):>22s}" for v in row[1:]))
        lines.append(f"  E f summed over the coordinates = {_fmt(self.expected_loss)}   ({self.method})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def num(v):
            return None if v is None else (as_number(v) if as_number(v) is not None else str(v))

        per = []
        for c in self.coordinates:
            entry = {
                "curvature": num(c.curvature),
                "linearised": num(c.linearised),
                "second_order": num(c.second_order),
                "exact": c.exact.to_dict() if c.exact else None,
            }
            entry.update({k: num(v) for k, v in c.laws.items()})
            per.append(entry)
        totals = {f"expected_loss_{key}": num(_total(values)) for key, _, values in self.columns()}
        return {
            "numbers": self.numbers,
            "expected_loss": num(self.expected_loss),
            "expected_loss_method": self.method,
            **totals,
            "coordinates": per,
        }


def _fmt(value) -> str:
    if value is None:
        return "-"
    number = as_number(value)
    return f"{number:.6g}" if number is not None else str(value)


def _total(values: list):
    if any(v is None for v in values):
        return None
    total = sum(sp.sympify(v) for v in values)
    number = as_number(total)
    return number if number is not None else sp.simplify(total)


def evaluate(result: StationaryResult, numbers: dict[str, float], curvatures: list[sp.Expr]) -> StationaryValues:
    """E f of ``result`` at ``numbers`` for each curvature (one per coordinate)."""
    lam = result.model.curvature
    if lam != curvature:
        raise NoStationaryLawError(f"evaluate a result derived with the symbolic curvature, not lambda = {lam}")
    coordinates = []
    for value in curvatures:
        if value.is_number and not value > 0:
            raise NoStationaryLawError(
                f"curvature {value} is not positive: the quadratic model is not convex, and "
                "the SDE has no stationary law about x = 0"
            )
        at = {**numbers}

        def ev(expr, value=value, at=at):
            out = substitute(sp.sympify(expr).xreplace({curvature: value}), at)
            number = as_number(out)
            return number if number is not None else out

        row = CoordinateValues(value, ev(result.expected_loss))
        if result.expansion is not None:
            row.second_order = ev(value * result.expansion.second_moment / 2)
            if isinstance(row.linearised, float) and value.is_number:
                row.exact = exact_stationary(result.sde, float(value), numbers)
        if result.momentum is not None:
            for key, _, var in result.momentum.laws():
                row.laws[key] = None if var is None else ev(value * var / 2)
        coordinates.append(row)
    return StationaryValues(result, dict(numbers), coordinates)


@dataclass
class FullMatrixResult:
    H: sp.Matrix
    Sigma: sp.Matrix
    covariance: sp.Matrix
    expected_loss: sp.Expr

    def to_dict(self) -> dict:
        return {
            "H": [[str(e) for e in row] for row in self.H.tolist()],
            "Sigma": [[str(e) for e in row] for row in self.Sigma.tolist()],
            "covariance": [[str(e) for e in row] for row in self.covariance.tolist()],
            "expected_loss": str(self.expected_loss),
        }

    def to_text(self) -> str:
        return "\n".join(
            [
                f"SGD with full H and Sigma (d = {self.H.shape[0]}): dX = -H X dt + sqrt(eta Sigma) dW",
                f"  C solves H C + C H = eta Sigma: C = {self.covariance.tolist()}",
                f"  E f = tr(H C)/2 = {self.expected_loss}",
            ]
        )


def sgd_full_matrix(d: int = 2) -> FullMatrixResult:
    """SGD on f = x^T H x / 2 with noise covariance Sigma (symmetric, symbolic, d x d).

    The per-coordinate SGD SDE has drift -g and G G^T = eta Var(g~); with a full noise
    covariance the same derivation gives G G^T = eta Sigma, and the drift is -H x.
    """
    sde = sde_of("sgd")
    drift_coefficient = sp.diff(sde.drift[0], S.g)
    per_variance = sp.simplify(sde.covariance()[0, 0] / S.sigma**2)  # eta
    H = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"h_{min(i, j) + 1}{max(i, j) + 1}", real=True))
    Sigma = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"Sigma_{min(i, j) + 1}{max(i, j) + 1}", real=True))
    C = lyapunov(drift_coefficient * H, per_variance * Sigma)
    loss = sp.factor(sp.simplify((H * C).trace() / 2))
    return FullMatrixResult(H, Sigma, C.applyfunc(sp.simplify), loss)
