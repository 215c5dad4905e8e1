"""Pair covariances: how the increments of two coordinates co-vary under correlated noise (reference section 9).

For coordinates i != j whose noise draws zeta_i, zeta_j have correlation r (:mod:`derive.correlation`), the
per-coordinate drift and covariance are those of :func:`derive.engine.derive_sde` (the marginals do not
change); what is new is Cov[Delta a_i, Delta b_j] / dt for every ordered pair of states (a, b) ("x_i,v_j"
differs from "v_i,x_j"), at the leading order in eta of the per-coordinate covariance, keeping that power of
eta (section 2, step 4). It reuses the engine's stages: the law-independent expansion (stages 1-4) is
copied once per coordinate (the states, g, sigma and the indicators H = 1[zeta > u] renamed with the
suffix _i or _j; hyperparameters, eta and t shared), and each product of a coefficient of coordinate i
with one of coordinate j is averaged per noise draw:

* no indicator of zeta_j in the product: E[f(zeta_i) zeta_j^q] = E[f(zeta_i) E[zeta_j^q | zeta_i]], with
  E[zeta_j^q | zeta_i = z] = sum_{k even} C(q, k) (r z)^(q-k) (1 - r^2)^(k/2) (k - 1)!! E[W^(k/2) | z]
  (given W the pair is Gaussian; :meth:`derive.correlation.Mixing.conditional_moment`). Under Gaussian
  noise (W = 1) this is the one-draw reduction zeta_j = r zeta_i + sqrt(1 - r^2) xi. The result is a
  one-draw expectation, averaged by the engine's own machinery (moments, partial moments K_n, CDF rule);
  the same with i and j exchanged;
* indicators of both draws (sign x sign, sign x clip, clip x clip): the truncated moment
  E[zeta_i^p zeta_j^q; zeta_i > U, zeta_j > V] = L_{p,q}(U, V; r) of :mod:`derive.bivariate`, in Phi2, phi
  and Phi, under Gaussian noise. Under an elliptical law it is E_W of the Gaussian one only at U = V = 0
  (then E[W^((p+q)/2)] L_{p,q}(0, 0), e.g. E[sign zeta_i sign zeta_j] = (2/pi) asin(r) for every
  elliptical law); elsewhere it is refused in one line naming the missing pair expectation (give
  ``at={"g": 0, ...}`` to evaluate at a point where the thresholds vanish, as the linearised stationary
  law does);
* injected Gaussian draws xi are independent across coordinates: they contribute no pair covariance.

Python API: :func:`derive_pairs` -> :class:`PairCovariance` (``.entries[(a, b)]``, ``.to_dict()``, the
``pair_covariance`` object of ``derive sde --correlated --format json``); :func:`source_correlation` the
constant correlation across coordinates of the SDE's Brownian motions, where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

import sympy as sp

from . import symbols as S
from .bivariate import tail_moment
from .correlation import Mixing, mixing
from .engine import (
    _coefficients,
    _fill_law,
    _pipeline,
    _random_part,
    _simplest,
    argument,
    clocked,
    covariance_factor,
    expansion,
    explicit,
    form_inputs,
)
from .errors import DeriveError, UnknownNameError, UnsupportedUpdateError
from .expectation import Indicator, expect, is_random, isolate
from .noise import NoiseLaw, get_noise
from .opaque import Opaque, expand_outside
from .optimizers import get_optimizer
from .parsing import ExpressionError, parse_number
from .points import gradf, hvp
from .regimes import FORMS, Regime, get_regime
from .spec import Optimizer

SUFFIXES = ("i", "j")


def correlation_symbol(spec: Optimizer) -> sp.Symbol:
    """The noise correlation r of the pair (``r_ij`` if the optimizer has a hyperparameter named r)."""
    return sp.Symbol("r_ij" if "r" in spec.hyper else "r", real=True)


def suffixed(sym: sp.Symbol, suffix: str) -> sp.Symbol:
    """``sym`` of one coordinate: the name with ``_i`` or ``_j`` appended, the same assumptions."""
    return sp.Symbol(f"{sym.name}_{suffix}", **sym.assumptions0)


@dataclass(frozen=True)
class PairCovariance:
    """Cov[Delta a_i, Delta b_j] / dt for every ordered pair of states (a, b), in the user's units:
    ``entries[(a, b)]`` in g_i, g_j, sigma_i, sigma_j, the states suffixed _i and _j, the hyperparameters,
    the bias corrections gamma (``time_functions``) and the correlation ``r`` (a symbol; a number after
    :meth:`at_correlation`)."""

    optimizer: str
    noise: str
    regime: str
    form: str
    states: tuple[str, ...]
    r: sp.Expr
    entries: Mapping[tuple[str, str], sp.Expr]
    time_functions: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    conditions: tuple[str, ...] = ()
    at: Mapping[str, sp.Expr] = field(default_factory=dict)

    @staticmethod
    def key(a: str, b: str) -> str:
        """The JSON key of the pair (a of coordinate i, b of coordinate j): ``"a_i,b_j"``."""
        return f"{a}_i,{b}_j"

    def at_correlation(self, value: object) -> PairCovariance:
        """The entries at one correlation: a number in [-1, 1] (a Python or SymPy number, or text such as
        ``"0.7"`` or ``"-1/3"``, read by :func:`derive.parsing.parse_number`, never evaluated)."""
        try:
            number = parse_number(value, "correlation")
        except ExpressionError as exc:
            raise DeriveError(f"correlation {value!r} is not a number ({exc.reason}); give r in [-1, 1]") from None
        if not (number.is_number and number.is_real and -1 <= number <= 1):
            raise DeriveError(f"correlation {value!r} is not a number in [-1, 1]; give r in [-1, 1]")
        number = sp.nsimplify(number, rational=True) if number.is_Float else number  # 0.7 as 7/10: exact entries
        entries = {k: _simplest(e.xreplace({self.r: number})) for k, e in self.entries.items()}
        for (a, b), e in entries.items():
            if e.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
                raise DeriveError(
                    f"at correlation {number} the pair {self.key(a, b)} is a limit (1 - r^2 divides its terms), "
                    "not a value; give -1 < r < 1, or leave r symbolic"
                )
        return replace(self, r=number, entries=entries)

    def matrix(self) -> sp.Matrix:
        """Rows: the states of coordinate i; columns: those of coordinate j."""
        return sp.Matrix(
            len(self.states), len(self.states), lambda p, q: self.entries[(self.states[p], self.states[q])]
        )

    def explicit(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the bias corrections written out in t."""
        return sp.sympify(expr).xreplace(dict(self.time_functions))

    def to_dict(self) -> dict[str, str]:
        """``{"x_i,x_j": "...", ...}``: strings that sympy.sympify parses (Phi2 as a function name)."""
        return {self.key(a, b): str(self.explicit(self.entries[(a, b)])) for a in self.states for b in self.states}

    def to_text(self) -> str:
        where = f" at {', '.join(f'{k} = {v}' for k, v in self.at.items())}" if self.at else ""
        lines = [
            f"  pair covariances per unit time, coordinates i != j with noise correlation {self.r}{where} "
            "(Cov[d a_i, d b_j]/dt, leading order):"
        ]
        lines += [f"    {self.key(a, b)}: {self.entries[(a, b)]}" for a in self.states for b in self.states]
        if self.conditions:
            lines.append("    valid for: " + ", ".join(self.conditions))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# One coordinate's copy of the expansion
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Side:
    """The renaming of one coordinate's symbols (regime units), its indicator table, its units map."""

    suffix: str
    rename: Mapping[sp.Symbol, sp.Symbol]
    table: Mapping[sp.Symbol, Indicator]
    to_user: Mapping[sp.Symbol, sp.Expr]
    at: Mapping[sp.Symbol, sp.Expr]

    def of(self, expr: sp.Expr) -> sp.Expr:
        """A coefficient of the expansion as this coordinate's expression."""
        return expr.xreplace(dict(self.rename)).xreplace(dict(self.at))


def _per_coordinate(exp) -> list[sp.Symbol]:
    """The symbols of one coordinate in regime units: g, sigma (or sigma_0), the states and their
    rescaled forms; everything else (hyperparameters, eta, t, gamma) is shared."""
    names = set(exp.spec.state_names) | {f"{n}_0" for n in exp.spec.state_names} | {"g", "sigma", "sigma_0"}
    found = set()
    for series in exp.series.values():
        for c in series.values():
            found |= {s for s in c.free_symbols if s.name in names}
    for ind in exp.indicators.values():
        found |= {s for s in ind.threshold.free_symbols if s.name in names}
    found |= {s for s in exp.units.to_user if s.name in names}
    return sorted(found | set(exp.spec.state_symbols), key=lambda s: s.name)


def _side(exp, suffix: str, at: Mapping[str, sp.Expr]) -> _Side:
    own = _per_coordinate(exp)
    rename = {s: suffixed(s, suffix) for s in own}
    user_rename = {s: suffixed(s, suffix) for s in (S.g, S.sigma, *exp.spec.state_symbols)}
    indicators = {h: suffixed(h, suffix) for h in exp.indicators}
    table = {
        indicators[h]: Indicator(indicators[h], ind.draw, ind.threshold.xreplace(rename))
        for h, ind in exp.indicators.items()
    }
    to_user = {rename[k]: v.xreplace(user_rename) for k, v in exp.units.to_user.items() if k in rename}
    values = {user_rename[_user_symbol(exp, n)]: sp.sympify(v).xreplace(user_rename) for n, v in at.items()}
    table = {h: Indicator(h, ind.draw, ind.threshold.xreplace(values)) for h, ind in table.items()}
    return _Side(suffix, {**rename, **indicators}, table, to_user, values)


def _user_symbol(exp, name: str) -> sp.Symbol:
    """The symbol of g or of a state, by name (for ``at``)."""
    by_name = {"g": S.g, **dict(zip(exp.spec.state_names, exp.spec.state_symbols, strict=False))}
    if name not in by_name:
        raise UnknownNameError("value given in 'at'", name, list(by_name))
    return by_name[name]


# ---------------------------------------------------------------------------------------------
# Expectations of products of one coefficient of each coordinate
# ---------------------------------------------------------------------------------------------
def _monomials(expr: sp.Expr, table: Mapping[sp.Symbol, Indicator]) -> dict[tuple, sp.Expr]:
    """expr as {random signature: coefficient}; a signature is a sorted tuple of (draw, power, indicator
    symbols on that draw)."""
    expr = expand_outside(expr, keep=lambda f: not is_random(f, table))
    out: dict[tuple, sp.Expr] = {}
    for term in sp.Add.make_args(expr):
        per_draw: dict[sp.Symbol, list] = {}
        rest = sp.Integer(1)
        for base, e in term.as_powers_dict().items():
            if isinstance(base, sp.Symbol) and (S.is_law_draw(base) or S.is_gaussian_draw(base)) and e.is_Integer:
                per_draw.setdefault(base, [0, set()])[0] += int(e)
            elif base in table and e.is_Integer and e > 0:
                per_draw.setdefault(table[base].draw, [0, set()])[1].add(base)
            else:
                rest *= base**e
        signature = tuple(sorted(((d, n, frozenset(hs)) for d, (n, hs) in per_draw.items()), key=lambda x: x[0].name))
        out[signature] = out.get(signature, sp.Integer(0)) + rest
    return out


@dataclass
class _PairAverager:
    """E[product of a coefficient of coordinate i and one of coordinate j] for one law (placeholders for
    the law's moments and partial moments, filled by the engine's _fill_law)."""

    sides: tuple[_Side, _Side]
    law: NoiseLaw
    mix: Mixing
    r: sp.Symbol
    conditions: set[str]
    sources: dict
    to_user: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)  # for messages: regime -> user units
    cache: dict = field(default_factory=dict)

    def mean(self, a: sp.Expr, b: sp.Expr, what: str) -> sp.Expr:
        left, right = _monomials(a, self.sides[0].table), _monomials(b, self.sides[1].table)
        total = []
        for sa, ca in left.items():
            for sb, cb in right.items():
                value = self._signature(sa, sb, what)
                if value != 0:
                    total.append(ca * cb * value)
        return sp.Add(*total)

    def _signature(self, sa: tuple, sb: tuple, what: str) -> sp.Expr:
        key = (sa, sb)
        if key not in self.cache:
            a = {d: (n, hs) for d, n, hs in sa}
            b = {d: (n, hs) for d, n, hs in sb}
            value = sp.Integer(1)
            for d in sorted(set(a) | set(b), key=lambda s: s.name):
                value *= self._draw(d, a.get(d, (0, frozenset())), b.get(d, (0, frozenset())), what)
                if value == 0:
                    break
            self.cache[key] = value
        return self.cache[key]

    def _one(self, side: _Side, expr: sp.Expr, what: str) -> sp.Expr:
        table = dict(side.table)
        expr = isolate(expr, table, what)  # |zeta| of the Laplace law's conditional moments
        return expect(expr, table, what, self.sources)

    def _draw(self, d: sp.Symbol, a: tuple[int, frozenset], b: tuple[int, frozenset], what: str) -> sp.Expr:
        (p, hs_a), (q, hs_b) = a, b
        left, right = self.sides
        if S.is_gaussian_draw(d):  # injected draws: independent across coordinates
            return self._one(left, d**p * sp.Mul(*hs_a), what) * self._one(right, d**q * sp.Mul(*hs_b), what)
        if not hs_b:  # condition on zeta_i
            return self._one(left, d**p * sp.Mul(*hs_a) * self._conditional(q, d, what), what)
        if not hs_a:  # condition on zeta_j
            return self._one(right, d**q * sp.Mul(*hs_b) * self._conditional(p, d, what), what)
        U = sp.Max(*[left.table[h].threshold for h in hs_a])
        V = sp.Max(*[right.table[h].threshold for h in hs_b])
        if self.mix.kind == "gaussian":
            return tail_moment(p, q, _arg(U), _arg(V), self.r)
        if sp.simplify(U) == 0 and sp.simplify(V) == 0:
            return self._w_moment(p + q, what) * tail_moment(p, q, sp.Integer(0), sp.Integer(0), self.r)
        events = f"zeta_i > {U.xreplace(self.to_user)}, zeta_j > {V.xreplace(self.to_user)}"
        raise UnsupportedUpdateError(
            f"{what} needs the pair expectation E[zeta_i^{p} zeta_j^{q}; {events}] under the {self.law.label} law "
            "(two piecewise functions of correlated draws), which needs its bivariate CDF; it is available for the "
            "Gaussian law (Phi2), and for elliptical laws only where both thresholds vanish (e.g. at g = 0: "
            "E[sign zeta_i sign zeta_j] = (2/pi) asin(r))"
        )

    def _conditional(self, q: int, z: sp.Symbol, what: str) -> sp.Expr:
        """E[zeta_j^q | zeta_i = z] (or i and j exchanged): a polynomial in z (and |z| for Laplace)."""
        terms = []
        for k in range(0, q + 1, 2):
            w, condition = self.mix.conditional_moment(k // 2, z, what)
            if condition:
                self.conditions.add(condition)
            terms.append(
                sp.binomial(q, k) * (self.r * z) ** (q - k) * (1 - self.r**2) ** (k // 2) * sp.factorial2(k - 1) * w
            )
        return sp.Add(*terms)

    def _w_moment(self, n: int, what: str) -> sp.Expr:
        """E[W^(n/2)] = E|zeta|^n / E|Z|^n (Z standard normal)."""
        if n == 0:
            return sp.Integer(1)
        value, condition = self.law.abs_moment(n)
        if value == sp.oo:
            raise DeriveError(
                f"{what} needs E[W^({n}/2)] of the mixing variable, i.e. E[|zeta|^{n}], which is infinite under the "
                f"{self.law.label} law"
            )
        if condition:
            self.conditions.add(condition)
        gaussian = 2 ** sp.Rational(n, 2) * sp.gamma(sp.Rational(n + 1, 2)) / sp.sqrt(sp.pi)
        return value / gaussian


def _arg(u: sp.Expr) -> sp.Expr:
    """A threshold free of eta as one argument symbol (see :func:`derive.engine.argument`)."""
    return u if u.has(S.eta) else argument(u)


# ---------------------------------------------------------------------------------------------
# The derivation
# ---------------------------------------------------------------------------------------------
def derive_pairs(
    optimizer: str | Optimizer,
    noise: str | NoiseLaw = "gaussian",
    regime: str | Regime = "paper",
    form: str = "full",
    nu: object = None,
    at: Mapping[str, object] | None = None,
) -> PairCovariance:
    """The pair covariances of ``optimizer`` under noise correlated r across coordinates (module docstring).

    ``at`` (paper regime) gives values of g and of the states, the same expression for both coordinates
    in the user symbols (sigma for that coordinate's scale), substituted before averaging: e.g.
    ``{"g": 0, "m": 0}`` evaluates Lion's sign x sign pair at the minimum, where the arcsine law holds for
    every elliptical law. Entries are in the user's units, as :func:`derive.engine.derive_sde`'s."""
    spec = get_optimizer(optimizer)
    law = get_noise(noise, nu)
    reg = get_regime(regime)
    if form not in FORMS:
        raise UnknownNameError("form", form, FORMS)
    at = {str(k): sp.sympify(v) for k, v in (at or {}).items()}
    if at and reg.name != "paper":
        raise DeriveError("pair covariances at given values ('at') are derived in the paper regime only")
    return _derive_pairs(spec, law, reg, form, tuple(sorted((k, v) for k, v in at.items())))


@lru_cache(maxsize=128)
def _derive_pairs(spec: Optimizer, law: NoiseLaw, reg: Regime, form: str, at: tuple) -> PairCovariance:
    mix = mixing(law, f"pair covariances of {spec.name}")
    reg = clocked(spec, reg)  # the clock of derive_sde (AdaGrad's t = k eta^2)
    exp = expansion(spec, reg)
    hold, dropped, _ = form_inputs(spec, reg, form, exp.states)
    _, lead_form = _pipeline(spec, law, reg, hold, dropped)
    lead = lead_form.lead
    r = correlation_symbol(spec)
    at_map = dict(at)
    sides = (_side(exp, "i", at_map), _side(exp, "j", at_map))
    conditions: set[str] = set(lead_form.conditions)
    sources: dict = {}
    to_user = {**exp.units.to_user, **sides[0].to_user, **sides[1].to_user}
    averager = _PairAverager(sides, law, mix, r, conditions, sources, to_user)
    random = {
        n: {o: _random_part(c, exp) for o, c in exp.series[n].items() if is_random(c, exp.indicators)}
        for n in exp.states
        if n not in dropped
    }
    _refuse_coupled(spec, random)
    eta_thresholds = any(ind.threshold.has(S.eta) for ind in exp.indicators.values())
    entries = {}
    for a in exp.states:
        for b in exp.states:
            if a in dropped or b in dropped or lead is None:
                entries[(a, b)] = sp.Integer(0)
                continue
            what = f"pair covariance ({a}_i, {b}_j) of {spec.name} under {law.label}"
            total = sp.Integer(0)
            for n, cn in random[a].items():
                for m, cm in random[b].items():
                    if n + m > lead or (n + m < lead and not eta_thresholds):
                        continue
                    ci, cj = sides[0].of(cn), sides[1].of(cm)
                    joint = averager.mean(ci, cj, what)
                    product = expect(ci, sides[0].table, what, sources) * expect(cj, sides[1].table, what, sources)
                    total += (S.eta ** (n + m) if eta_thresholds else 1) * (joint - product)
            total = explicit(_fill_law(total, law, exp, what, conditions, sources, order=lead))
            if eta_thresholds and total != 0:  # expectations raise the power of eta: re-expand, keep eta^lead
                coefficient = _coefficients(total, lead, what).get(lead, sp.Integer(0))
            else:  # every term is of order eta^lead
                coefficient = total
            entries[(a, b)] = _user(coefficient, exp, sides, a, b, lead)
    return PairCovariance(
        optimizer=spec.name,
        noise=law.label,
        regime=reg.name,
        form=form,
        states=exp.states,
        r=r,
        entries=entries,
        time_functions=dict(sorted(exp.units.gammas.items(), key=lambda item: item[0].name)),
        conditions=_strongest(conditions),
        at={k: v for k, v in at},
    )


def _refuse_coupled(spec: Optimizer, random: Mapping[str, Mapping[int, sp.Expr]]) -> None:
    """Refuse noise that reaches a coordinate through H (hvp, gradf: a gradient at another point): it
    mixes every coordinate's noise, so two coordinates' copies of the expansion do not hold it."""
    for name, series in random.items():
        for c in series.values():
            coupled = sorted(c.atoms(hvp, gradf), key=sp.default_sort_key)
            if coupled:
                raise UnsupportedUpdateError(
                    f"pair covariances of {spec.name}: the noise of {name} enters through {coupled[0]} (the Hessian "
                    "or the gradient at another point applied to the noise), which mixes every coordinate's noise "
                    "through H; the two-coordinate pair model (reference section 9) does not cover it"
                )


def _strongest(conditions: set[str]) -> tuple[str, ...]:
    """The conditions with ``nu > k`` kept only for the largest k."""
    bounds = [c for c in conditions if c.startswith("nu > ")]
    top = max(bounds, key=lambda c: sp.Rational(c[5:]), default=None)
    return tuple(sorted({c for c in conditions if not c.startswith("nu > ")} | ({top} if top else set())))


def _user(coefficient: sp.Expr, exp, sides: tuple[_Side, _Side], a: str, b: str, lead: int) -> sp.Expr:
    """The eta^lead coefficient in the user's units (as :func:`derive.engine.map_back`): times
    :func:`derive.engine.covariance_factor`, the regime symbols mapped back, in its simplest form."""
    if coefficient == 0:
        return sp.Integer(0)
    units = exp.units
    factor = covariance_factor(units, lead, a, b)
    back = {**units.to_user, **sides[0].to_user, **sides[1].to_user}
    opaque = Opaque()
    hidden = opaque.hide(sp.powsimp(coefficient.xreplace(back) * factor, combine="exp"))
    return opaque.show(_simplest(hidden))


# ---------------------------------------------------------------------------------------------
# The correlation across coordinates of the SDE's Brownian motions
# ---------------------------------------------------------------------------------------------
def on_coordinate(expr: sp.Expr, spec: Optimizer | str, suffix: str) -> sp.Expr:
    """An expression of the per-coordinate SDE (user units) written for coordinate ``suffix``: g, sigma
    and the states renamed (g_i, sigma_i, x_i, ...)."""
    spec = get_optimizer(spec)
    own = (S.g, S.sigma, *spec.state_symbols)
    return sp.sympify(expr).xreplace({s: suffixed(s, suffix) for s in own})


def source_correlation(sde, pairs: PairCovariance) -> sp.Matrix | None:
    """The constant K x K matrix C(r) with pair block P = G_i C G_j^T, where G_c is the per-coordinate
    diffusion (K Brownian motions per coordinate) written for coordinate c; None where no constant C
    exists (the pair block depends on the state otherwise than through G, as SignSGD's, Lion's and
    clipping's piecewise pairs do: those need the pair matrix itself, or moment-matched increments).

    C is read off K rows of G where G is invertible, C = G_i[rows]^-1 P[rows, rows] G_j[rows]^-T, then
    G_i C G_j^T = P is checked on every entry and C must be free of g, sigma and the states. Under
    Gaussian noise RMSprop gives C = diag(r, r^2): the zeta-linear source correlates like R, the
    (zeta^2 - 1) source like R o R."""
    from itertools import combinations

    G = sp.Matrix(sde.diffusion)
    n, K = G.shape
    if K == 0:
        return sp.zeros(0, 0)
    Gi, Gj = (on_coordinate(G, sde.optimizer, c).xreplace(dict(sde.time_functions)) for c in SUFFIXES)
    P = pairs.matrix().xreplace(dict(pairs.time_functions))
    for rows in combinations(range(n), K):
        rows = list(rows)
        Si, Sj = Gi.extract(rows, list(range(K))), Gj.extract(rows, list(range(K)))
        if sp.simplify(Si.det()) == 0 or sp.simplify(Sj.det()) == 0:
            continue
        C = (Si.inv() * P.extract(rows, rows) * Sj.inv().T).applyfunc(sp.simplify)
        own = {s for s in C.free_symbols if s.name.endswith(("_i", "_j"))}
        if own:
            return None
        if any(sp.simplify(e) != 0 for e in (Gi * C * Gj.T - P)):
            return None
        return C
    return None
