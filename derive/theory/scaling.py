"""Batch-size scaling rules, solved for from the SDE objects.

Batch size B -> kappa B scales the noise, sigma -> sigma / sqrt(kappa). We look for exponents
with eta -> kappa^a eta, rho_i -> kappa^(b_i) rho_i (so 1 - beta_i -> kappa^(a + b_i) (1 - beta_i)),
theta -> kappa^c theta, eps -> kappa^e eps, and auxiliary states s -> kappa^(d_s) s, such that at
equal epochs (one epoch is N/B steps, i.e. SDE time t -> kappa^(a-1) t) the model is unchanged:

* criterion ``sde``: every drift entry and every entry of G G^T, in epoch time:
      kappa^(a-1-d_i) b_i(scaled) = b_i,   kappa^(a-1-d_i-d_j) (G G^T)_ij(scaled) = (G G^T)_ij;
* criterion ``stationary`` (for SDEs with no exact rule): the stationary expected loss of the
  quadratic model and the entries of its linearised drift in epoch time (the per-epoch
  convergence rates), kappa^(a-1-d_i+d_j) A_ij(scaled) = A_ij.

Each condition E(kappa) = E is a power law in kappa, so it holds for every kappa iff its
elasticity, sum_p (exponent_p) p dE/dp / E + (exponent of the prefactor), vanishes identically.
That is linear in the unknown exponents: we evaluate it at random rational points of the
variables, solve the linear system exactly, and confirm the solution symbolically. An
inconsistent system means no rule exists under that criterion; we name the condition that broke it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import sympy as sp

from .. import symbols as S
from ..errors import DeriveError
from ..optimizers import get_optimizer
from ..sde import SDE
from .quadratic import curvature, sde_of
from .stationary import stationary

kappa = sp.Symbol("kappa", positive=True)
CRITERIA = ("sde", "stationary")


class NoScalingRuleError(DeriveError, ValueError):
    """No exponents keep the chosen quantities unchanged."""


class ScalingUndecidedError(DeriveError, ValueError):
    """SymPy cannot evaluate a condition, so whether a rule exists is not decided."""


@dataclass
class ScalingRule:
    """Exponents of kappa for each hyperparameter (user units) and each auxiliary state."""

    optimizer: str
    regime: str
    criterion: str
    exponents: dict[str, sp.Expr]  # 'eta', 'rho1', 'theta', 'eps', state names
    free: list[str] = field(default_factory=list)  # exponents the criterion leaves undetermined
    conditions: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for name, e in self.exponents.items():
            if name in self.free:
                out.append(f"  {name}: not determined by this criterion")
                continue
            if name.startswith("rho"):
                beta = name.replace("rho", "beta")
                total = sp.simplify(e + self.exponents["eta"])
                out.append(f"  1 - {beta} -> kappa^({total}) (1 - {beta})   [{name} -> kappa^({e}) {name}]")
            elif name in ("eta", "theta", "eps"):
                out.append(f"  {name} -> kappa^({e}) {name}")
            else:
                out.append(f"  state {name} -> kappa^({e}) {name} (the SDE's {name} at equal epochs)")
        return out

    def to_dict(self) -> dict:
        return {
            "optimizer": self.optimizer,
            "regime": self.regime,
            "criterion": self.criterion,
            "exponents": {k: (None if k in self.free else str(v)) for k, v in self.exponents.items()},
            "free": list(self.free),
            "preserved": list(self.conditions),
            "batch_scaling": "B -> kappa B, sigma -> sigma/sqrt(kappa)",
        }

    def to_text(self) -> str:
        head = (
            f"scaling rule of {self.optimizer} | regime {self.regime} | criterion {self.criterion} "
            "| batch B -> kappa B, sigma -> sigma/sqrt(kappa)"
        )
        return "\n".join([head, *self.lines(), "  preserved: " + "; ".join(self.conditions)])


def _unknowns(sde: SDE) -> dict[sp.Symbol, sp.Symbol]:
    """Scaled symbol -> its exponent unknown, for hyperparameters and auxiliary states."""
    out = {}
    for p in sde.parameters:
        if p.name == "eta" or p.name.startswith("rho") or p.name in ("theta", "eps"):
            out[p] = sp.Symbol(f"a_{p.name}")
    for s in sde.state[1:]:
        out[s] = sp.Symbol(f"a_{s.name}")
    return out


def _elasticity(expr: sp.Expr, exps: dict[sp.Symbol, sp.Expr], prefactor: sp.Expr) -> sp.Expr:
    """d log E(kappa) / d log kappa at kappa = 1, E with p -> kappa^(exps[p]) p."""
    total = prefactor * expr
    for sym, e in exps.items():
        if expr.has(sym):
            total += e * sym * sp.diff(expr, sym)
    return total  # = elasticity * expr; vanishing is what matters


def _sample_points(symbols: list[sp.Symbol], count: int, rng: random.Random) -> list[dict]:
    points = []
    for _ in range(count):
        point = {}
        for s in symbols:
            if s.name == "nu":  # Student-t degrees of freedom: where every moment the SDE uses is finite
                point[s] = sp.Rational(rng.randint(50, 400), 10)
                continue
            value = sp.Rational(rng.randint(3, 40), rng.randint(3, 17))
            point[s] = value if (s.is_positive or s.is_nonnegative) else value * rng.choice((-1, 1))
        points.append(point)
    return points


_DIGITS = 50


def _least_squares(rows: list[list], rhs: list) -> tuple[list, list[int], float]:
    """Minimum-norm solution of rows @ u = rhs (mpmath, high precision), the indices of the
    unknowns the system leaves free, and the relative residual."""
    with mpmath.workdps(_DIGITS):
        M = mpmath.matrix([[mpmath.mpf(str(v)) for v in row] for row in rows])
        r = mpmath.matrix([mpmath.mpf(str(v)) for v in rhs])
        U, sv, V = mpmath.svd_r(M)
        scale = max(sv) if len(sv) else mpmath.mpf(1)
        rank = sum(1 for v in sv if v > scale * mpmath.mpf(10) ** (-30))
        coeffs = U.T * r
        solution = mpmath.matrix(M.cols, 1)
        for k in range(rank):
            for i in range(M.cols):
                solution[i] += V[k, i] * coeffs[k] / sv[k]
        residual = mpmath.norm(M * solution - r) / max(mpmath.norm(r), scale, mpmath.mpf(1))
        free = sorted({i for k in range(rank, M.cols) for i in range(M.cols) if abs(V[k, i]) > mpmath.mpf(10) ** (-20)})
        return [solution[i] for i in range(M.cols)], free, float(residual)


def solve_exponents(
    conditions: list[tuple[str, sp.Expr, sp.Expr]], exps: dict, unknowns: list[sp.Symbol], seed: int = 0
) -> tuple[dict[sp.Symbol, sp.Expr], list[sp.Symbol]]:
    """Exponents that make every (label, expression, prefactor exponent) condition hold.

    Returns the solved exponents (small rationals) and the unknowns left free. Raises
    NoScalingRuleError naming the first condition that makes the system inconsistent.
    """
    rng = random.Random(seed)
    rows: list[list] = []
    rhs: list = []
    solution, free = [0] * len(unknowns), list(range(len(unknowns)))
    for label, expr, prefactor in conditions:
        if expr == 0:
            continue
        form = _elasticity(expr, exps, prefactor)  # linear in the unknowns: coefficients by differentiation
        coefficients = [sp.diff(form, u) for u in unknowns]  # (expanding a Student-t form can take minutes)
        constant = form.xreplace({u: 0 for u in unknowns})
        variables = sorted(form.free_symbols - set(unknowns), key=lambda s: s.name)
        for point in _sample_points(variables, len(unknowns) + 2, rng):
            try:
                values = [sp.N(c.xreplace(point), _DIGITS) for c in (*coefficients, constant)]
            except (ValueError, TypeError, NotImplementedError, ZeroDivisionError) as exc:
                values = [exc]
            if not all(isinstance(v, sp.Number) for v in values):
                raise ScalingUndecidedError(
                    f"SymPy cannot evaluate the condition on {label} at sample points "
                    "(a derivative of a special function it does not know)"
                )
            rows.append(values[:-1])
            rhs.append(-values[-1])
        solution, free, residual = _least_squares(rows, rhs)
        if residual > 1e-25:
            raise NoScalingRuleError(f"no exponents keep {label} unchanged together with the conditions before it")
    values = {}
    for i, u in enumerate(unknowns):
        values[u] = u if i in free else sp.Rational(Fraction(str(solution[i])).limit_denominator(1000))
    return values, [unknowns[i] for i in free]


def _sde_conditions(sde: SDE, exps: dict, a: sp.Symbol) -> list[tuple[str, sp.Expr, sp.Expr]]:
    drift = [sde.explicit(b) for b in sde.drift]
    cov = (sde.diffusion * sde.diffusion.T).applyfunc(sde.explicit)  # G G^T unsimplified: the conditions are
    # evaluated at points and confirmed term by term; simplifying a Student-t covariance first can take minutes
    d = [sp.Integer(0)] + [exps[s] for s in sde.state[1:]]
    out = [(f"the drift of {s}, {b}", b, a - 1 - d[i]) for i, (s, b) in enumerate(zip(sde.state, drift, strict=False))]
    n = len(sde.state)
    out += [
        (f"the covariance ({sde.state[i]}, {sde.state[j]}), {cov[i, j]}", cov[i, j], a - 1 - d[i] - d[j])
        for i in range(n)
        for j in range(i, n)
    ]
    return out


def _stationary_conditions(optimizer, noise, form, regime, exps: dict, a: sp.Symbol, nu) -> list:
    result = stationary(optimizer, noise, form, nu=nu, regime=regime)
    states = result.sde.state
    d = [sp.Integer(0)] + [exps[s] for s in states[1:]]
    out = [(f"the stationary loss {result.expected_loss}", result.expected_loss, sp.Integer(0))]
    A = result.model.A
    out += [
        (f"the linearised drift entry A[{states[i]}, {states[j]}] = {A[i, j]}", A[i, j], a - 1 - d[i] + d[j])
        for i in range(A.shape[0])
        for j in range(A.shape[1])
    ]
    return out


def scaling_rule(
    optimizer, regime: str = "paper", criterion: str = "sde", noise: str = "gaussian", form: str = "full", nu=None
) -> ScalingRule:
    """Solve for the batch-size scaling rule of ``optimizer`` under ``criterion``."""
    if criterion not in CRITERIA:
        from ..errors import UnknownNameError

        raise UnknownNameError("criterion", criterion, CRITERIA)
    spec = get_optimizer(optimizer)
    sde = sde_of(optimizer, noise, regime, form, nu=nu)
    unknown = _unknowns(sde)
    exps: dict[sp.Symbol, sp.Expr] = {**unknown, S.sigma: sp.Rational(-1, 2)}
    a = unknown[sde.parameters[[p.name for p in sde.parameters].index("eta")]]
    if criterion == "sde":
        exps[S.t] = a - 1
        conditions = _sde_conditions(sde, exps, a)
    else:
        conditions = _stationary_conditions(optimizer, noise, form, regime, exps, a, nu)
    conditions = _hold_floats(conditions)
    try:
        values, free_unknowns = solve_exponents(conditions, exps, list(unknown.values()))
    except NoScalingRuleError as exc:
        raise NoScalingRuleError(
            f"{spec.name} ({regime} regime) has no scaling rule under criterion "
            f"'{criterion}': {exc}" + ("; try --criterion stationary" if criterion == "sde" else "")
        ) from None
    except ScalingUndecidedError as exc:
        raise ScalingUndecidedError(
            f"{spec.name} ({regime} regime): whether a scaling rule exists under criterion "
            f"'{criterion}' is not decided: {exc}"
        ) from None
    _confirm(conditions, exps, values)
    names = {u: (sym.name) for sym, u in unknown.items()}
    ordered = sorted(unknown.items(), key=lambda item: (item[0] in sde.state, item[0].name != "eta", item[0].name))
    exponents = {sym.name: sp.simplify(values[u]) for sym, u in ordered}
    free = [names[u] for u in free_unknowns]
    kept = (
        "the drift and diffusion at equal epochs"
        if criterion == "sde"
        else f"the stationary loss on f = {curvature}*x**2/2 and the per-epoch convergence rates"
    )
    return ScalingRule(spec.name, regime, criterion, exponents, free, [kept])


def _hold_floats(conditions: list) -> list:
    """Floats in the conditions (moments of a user law found by quadrature) held as constant symbols,
    so that the exact linear algebra is not defeated by 15-digit rounding."""
    floats = sorted({f for _, e, _ in conditions for f in sp.sympify(e).atoms(sp.Float)}, key=float)
    held = {f: sp.Dummy(f"c{i}", positive=True) if f > 0 else sp.Dummy(f"c{i}") for i, f in enumerate(floats)}
    return [(label, sp.sympify(e).xreplace(held), p) for label, e, p in conditions]


def _confirm(conditions, exps: dict, values: dict) -> None:
    """Check the solved exponents symbolically: kappa^prefactor E(kappa) == E for a generic kappa
    (free exponents stay symbols, so the check holds whatever value they take)."""
    for label, expr, prefactor in conditions:
        if expr == 0:
            continue
        scaled = expr.xreplace({s: kappa ** e.xreplace(values) * s for s, e in exps.items()})
        difference = sp.simplify(sp.powsimp(scaled * kappa ** prefactor.xreplace(values) - expr, force=True))
        if difference != 0:
            raise NoScalingRuleError(f"the solved exponents do not keep {label} unchanged (difference {difference})")
