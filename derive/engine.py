"""The derivation pipeline: update rule + noise law + scaling regime -> SDE.

Reference section 2. For a state S = (x, m, v, ...) and one step S' = S + Delta(S, g~), seven
stages, each a function from one small dataclass to the next (so each can be run and tested
alone); :func:`derive_sde` calls them in order:

1. :func:`one_step`      ``Update -> OneStep``: compose the update rule into the new value S' of
                         each state;
2. :func:`substitute`    ``OneStep -> Substituted``: put in the regime's scalings (beta = 1 -
                         eta^a rho_0, g~ = g + sigma_0 zeta / eta^b, rescaled states, k = t/dt),
                         turning beta^k into 1 - gamma with gamma = 1 - exp(lim k log beta), and
                         form Delta = eta^r (S' - S);
3. :func:`isolate_signs` ``Substituted -> Isolated``: replace each sign(a + b zeta) by sign(b) S,
                         S = sign(a/b + zeta);
4. :func:`expand`        ``Isolated -> Expansion``: series in eta of each Delta (zeta and S held
                         as O(1) symbols);
5. :func:`average`       ``Averaging -> Averaged``: expectations over zeta (module
                         :mod:`derive.expectation`), the law filling in moments and s(y) = 2F(y) - 1:
                         E[Delta] through order eta^dt and Cov[Delta] at its lowest order in eta;
6. :func:`leading`       ``Averaged -> Leading``: drift b = [eta^dt] E[Delta] (lower orders must
                         vanish); covariance GG^T = Cov[Delta]/dt at the leading order in eta of
                         the whole matrix (keeping that power of eta);
7. :func:`map_back`      ``Leading -> UserForm``: to the user's units (identity in the paper
                         regime), each entry in its simplest exact form, and a Cholesky factor G of
                         the covariance.

Stages 1 to 4 do not depend on the noise law and are cached per (optimizer, regime, held states)
by :func:`expansion`. The published forms' simplifications act through stage inputs: the
second-moment rows are left out of the covariance (``Averaging.dropped``), and the same-step
momentum is kept in the x drift by a second pass with the momentum held (``Update.hold``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

import sympy as sp

from . import symbols as S
from .errors import InfiniteMomentError, NoLimitError, UnknownNameError, UnsupportedUpdateError
from .expectation import SignAtom, expect, is_random, moment_order
from .noise import NoiseLaw, get_noise
from .optimizers import get_optimizer
from .regimes import DROP_SECOND_MOMENT_NOISE, FORMS, SAME_STEP_MOMENTUM, Regime, get_regime
from .sde import SDE
from .spec import X, Optimizer, next_symbol


# ---------------------------------------------------------------------------------------------
# The data passed from stage to stage
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Update:
    """Input of :func:`one_step`: an optimizer, the regime it will be scaled in, and the
    auxiliary states whose same-step value the x update reads as a placeholder ``<name>_next``."""

    spec: Optimizer
    regime: Regime
    hold: frozenset[str] = frozenset()
    order: int = 1  # 2: bias powers beta^k kept to O(eta) (the order-2 SDE, derive.order2)


@dataclass(frozen=True)
class OneStep:
    """S' of every state in user symbols (states, grad, k, hyperparameters); ``held`` the new
    value of each held state (x's S' reads it as ``<name>_next``)."""

    spec: Optimizer
    regime: Regime
    new: Mapping[str, sp.Expr]
    held: Mapping[str, sp.Expr] = field(default_factory=dict)
    order: int = 1


@dataclass(frozen=True)
class Units:
    """How the regime's O(1) symbols relate to the user's: state s = s_0 / eta^r(s), each regime
    symbol's expression in user units, and the bias-correction factors gamma (user units)."""

    regime: Regime
    exponents: Mapping[str, int]
    to_user: Mapping[sp.Symbol, sp.Expr]
    gammas: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Substituted:
    """Delta = eta^r (S' - S) of every state in regime symbols, with grad = g + sigma_0 zeta /
    eta^noise; ``held_next`` maps each <name>_next to that state's S' (noise not yet averaged)."""

    spec: Optimizer
    units: Units
    delta: Mapping[str, sp.Expr]
    held_next: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Isolated:
    """As :class:`Substituted`, with every sign(a + b zeta) written sign(b) S_i (table ``signs``)."""

    spec: Optimizer
    units: Units
    delta: Mapping[str, sp.Expr]
    signs: Mapping[sp.Symbol, SignAtom]
    held_next: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Expansion:
    """Delta of every state as {power of eta: coefficient} through eta^order (order = dt + 1)."""

    spec: Optimizer
    units: Units
    series: Mapping[str, Mapping[int, sp.Expr]]
    signs: Mapping[sp.Symbol, SignAtom]
    held_next: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)

    @property
    def regime(self) -> Regime:
        return self.units.regime

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(self.series)

    @property
    def order(self) -> int:
        return self.regime.dt + 1


@dataclass(frozen=True)
class Averaging:
    """Input of :func:`average`: an expansion, the law, the states whose rows of the covariance
    are left out (published forms drop the second-moment noise), and whether the covariance is
    wanted at all (the held pass of a published form needs only the mean)."""

    expansion: Expansion
    law: NoiseLaw
    dropped: frozenset[str] = frozenset()
    covariance: bool = True
    order: int = 1  # E[Delta] through eta^(dt + order - 1) (order 2: the eta^2 coefficient c1 too)


@dataclass(frozen=True)
class Averaged:
    """E[Delta] by power of eta (through eta^dt); Cov[Delta] at its lowest power ``lead``
    (cov None: not computed, because not wanted or the mean already diverges (lead None too),
    or because lead < dt, which :func:`leading` reports); the averaged same-step values; the conditions the law's moments
    needed (on symbolic parameters)."""

    expansion: Expansion
    law: NoiseLaw
    mean: Mapping[str, Mapping[int, sp.Expr]]
    cov: sp.ImmutableMatrix | None
    lead: int | None
    conditions: frozenset[str] = frozenset()
    held_next: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Leading:
    """Drift [eta^dt] E[Delta] per state and covariance Cov[Delta] at order eta^lead, both in
    regime units (cov and lead None when the covariance was not wanted)."""

    expansion: Expansion
    drift: Mapping[str, sp.Expr]
    cov: sp.ImmutableMatrix | None
    lead: int | None
    conditions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserForm:
    """Drift (one entry per state) and diffusion G (rows = states, one column per independent
    Brownian motion) in the user's units."""

    drift: tuple[sp.Expr, ...]
    diffusion: sp.ImmutableMatrix


# ---------------------------------------------------------------------------------------------
# Stages 1-4: law-independent
# ---------------------------------------------------------------------------------------------
def one_step(update: Update) -> OneStep:
    """Stage 1: the new value of every state after one step (the update rule composed in order)."""
    spec = update.spec
    held = {h: spec.step_map()[h] for h in sorted(update.hold)}
    return OneStep(spec, update.regime, spec.step_map(update.hold), held, update.order)


def _regime_symbols(spec: Optimizer, regime: Regime):
    """Substitutions user-hyperparameter -> regime expression, and regime symbol -> user units."""
    eta = S.eta
    hyper = spec.hyper_symbols()
    subs: dict[sp.Symbol, sp.Expr] = {}
    to_user: dict[sp.Symbol, sp.Expr] = {}
    for name, role in spec.hyper.items():
        sym = hyper[name]
        if role == "lr":
            subs[sym] = eta
        elif role == "decay":
            rho = sp.Symbol(S.rate_name(name), positive=True)
            rho0 = regime.scaled(rho, regime.decay - 1)
            subs[sym] = 1 - eta**regime.decay * rho0
            to_user[rho0] = rho * eta ** (1 - regime.decay)
        elif role == "eps":
            eps0 = regime.scaled(sym, regime.eps, positive=False)
            subs[sym] = eps0 / eta**regime.eps
            to_user[eps0] = sym * eta**regime.eps
        elif role == "weight_decay":
            th0 = regime.scaled(sym, regime.weight_decay, positive=False)
            subs[sym] = th0 * eta**regime.weight_decay
            to_user[th0] = sym / eta**regime.weight_decay
    sigma0 = regime.scaled(S.sigma, regime.noise)
    to_user[sigma0] = S.sigma * eta**regime.noise
    t0 = regime.scaled(S.t, regime.dt - 1)
    to_user[t0] = S.t * eta ** (regime.dt - 1)
    return subs, to_user, sigma0, t0


def _bias_powers(expr: sp.Expr, hyper_subs: dict, t0: sp.Symbol, regime: Regime, gammas: dict, to_user: dict, where: str,
                 exact: bool = False) -> sp.Expr:
    """Replace beta^k by its limit exp(lim_{eta->0} k log beta) =: 1 - gamma, k = t/dt.

    ``exact`` (order 2): k = t/dt + 1, the step count of the step that starts at time t, and the
    O(eta) part kept: beta^k = (1 - gamma)(1 + eta l1), l1 = lim (k log beta - log_rate)/eta
    (paper regime: (1 - eta rho)^(k+1) = exp(-rho t)(1 - eta rho - eta rho^2 t/2 + O(eta^2)))."""
    replace_ = {}
    k_of_t = t0 / S.eta**regime.dt + (1 if exact else 0)
    for p in expr.atoms(sp.Pow):
        if not p.exp.has(S.k):
            continue
        if p.base.has(S.k):
            raise UnsupportedUpdateError(f"{where}: the step count k appears in the base of {p}; only powers beta**(expression in k) are supported")
        log_power = p.exp.subs(S.k, k_of_t) * sp.log(p.base.xreplace(hyper_subs))
        log_rate = sp.limit(log_power, S.eta, 0)
        next_order = sp.Integer(1)
        if exact and log_rate != -sp.oo:
            next_order = 1 + S.eta * sp.limit((log_power - log_rate) / S.eta, S.eta, 0)
        if log_rate == 0:
            replace_[p] = next_order
        elif log_rate == -sp.oo:
            replace_[p] = sp.Integer(0)
        elif log_rate.is_negative:
            name = S.bias_name(p.base.name) if isinstance(p.base, sp.Symbol) else f"gamma_{len(gammas) + 1}"
            gamma = sp.Symbol(name, positive=True)
            gammas[gamma] = 1 - sp.exp(log_rate.xreplace(to_user))
            replace_[p] = (1 - gamma) * next_order
        else:
            raise UnsupportedUpdateError(f"{where}: the power {p} has no limit in (0, 1] as eta -> 0 (k log base -> {log_rate})")
    out = expr.xreplace(replace_)
    if out.has(S.k):
        raise UnsupportedUpdateError(f"{where}: the step count k appears outside a power beta**k in {out}; "
                                     "only bias corrections of the form beta**k are supported")
    return out


def _grad_degree(expr: sp.Expr) -> int | None:
    """Degree of a new state value in the stochastic gradient (None if not polynomial in it)."""
    try:
        return sp.Poly(expr, S.grad).degree()
    except sp.PolynomialError:
        return None


def _where(spec: Optimizer, regime: Regime, name: str) -> str:
    return f"optimizer {spec.name!r} ({regime.name} regime), update of {name}"


def substitute(step: OneStep) -> Substituted:
    """Stage 2: the regime's scalings put into Delta = eta^r (S' - S) of every state."""
    spec, regime, eta = step.spec, step.regime, S.eta
    hyper_subs, to_user, sigma0, t0 = _regime_symbols(spec, regime)
    exponents = {name: (0 if name == "x" else regime.state_exponent(_grad_degree(step.new[name]))) for name in spec.state_names}
    state_subs = {}
    for name, sym in zip(spec.state_names, spec.state_symbols):
        r = exponents[name]
        scaled = sym if r == 0 else sp.Symbol(f"{name}_0", positive=bool(sym.is_positive), real=True)
        state_subs[sym] = scaled / eta**r
        if r:
            to_user[scaled] = sym * eta**r
    subs = {**hyper_subs, S.grad: S.g + sigma0 * S.zeta / eta**regime.noise, **state_subs}
    gammas: dict[sp.Symbol, sp.Expr] = {}
    delta = {}
    for name, sym in zip(spec.state_names, spec.state_symbols):
        new = _bias_powers(step.new[name], hyper_subs, t0, regime, gammas, to_user, _where(spec, regime, name), step.order >= 2)
        delta[name] = sp.powsimp(eta ** exponents[name] * (new.xreplace(subs) - sym.xreplace(subs)))
    held_next = {}
    for h, new in step.held.items():
        where = f"optimizer {spec.name!r}, same-step value of {h}"
        held_next[next_symbol(h)] = _bias_powers(new, hyper_subs, t0, regime, gammas, to_user, where, step.order >= 2).xreplace(subs)
    return Substituted(spec, Units(regime, exponents, to_user, gammas), delta, held_next)


def _isolate(expr: sp.Expr, signs: dict[sp.Symbol, SignAtom], where: str) -> sp.Expr:
    """sign(a + b zeta) -> sign(b) * S with S = sign(a/b + zeta) (one placeholder per distinct a/b)."""
    replace_ = {}
    for atom in expr.atoms(sp.sign):
        arg = atom.args[0]
        if not arg.has(S.zeta):
            continue
        try:
            poly = sp.Poly(sp.expand(arg), S.zeta)
        except sp.PolynomialError:
            poly = None
        if poly is None or poly.degree() != 1:
            raise UnsupportedUpdateError(f"{where}: the term {atom} is the sign of a non-affine function of the noise zeta; "
                                         "only sign(a + b*zeta) has a CDF rule")
        b, a = poly.coeff_monomial(S.zeta), poly.coeff_monomial(1)
        orientation = 1 if b.is_positive else (-1 if b.is_negative else None)
        if orientation is None:
            raise UnsupportedUpdateError(f"{where}: in {atom} the sign of the noise coefficient {b} is unknown")
        y = sp.simplify(a / b)
        existing = [s for s, v in signs.items() if v.y == y]
        sym = existing[0] if existing else sp.Symbol(f"S_{len(signs)}", real=True)
        signs[sym] = SignAtom(sym, y)
        replace_[atom] = orientation * sym
    return expr.xreplace(replace_)


def isolate_signs(sub: Substituted) -> Isolated:
    """Stage 3: every sign(a + b zeta) in Delta (and in the held same-step values) becomes
    sign(b) S_i, S_i = sign(a/b + zeta), one placeholder per distinct a/b."""
    signs: dict[sp.Symbol, SignAtom] = {}
    regime = sub.units.regime
    delta = {name: _isolate(d, signs, _where(sub.spec, regime, name)) for name, d in sub.delta.items()}
    held = {sym: _isolate(v, signs, f"optimizer {sub.spec.name!r}, same-step value of {sym}") for sym, v in sub.held_next.items()}
    return Isolated(sub.spec, sub.units, delta, signs, held)


def _coefficients(expr: sp.Expr, order: int, where: str) -> dict[int, sp.Expr]:
    """Taylor coefficients of expr in eta up to eta**order (negative powers kept)."""
    try:
        series = sp.series(expr, S.eta, 0, order + 1).removeO()
    except Exception as exc:  # noqa: BLE001 - SymPy raises many types here
        raise UnsupportedUpdateError(f"{where}: cannot expand {expr} in powers of eta ({exc})") from None
    out: dict[int, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand_mul(series)):
        coeff, power = term.as_independent(S.eta, as_Add=False)
        base, exponent = power.as_base_exp() if power != 1 else (S.eta, sp.Integer(0))
        if base != S.eta:
            raise UnsupportedUpdateError(f"{where}: the expansion in eta has the non-power term {term}")
        if not exponent.is_integer:
            raise UnsupportedUpdateError(f"{where}: the expansion in eta has a fractional power in {term}")
        out[int(exponent)] = out.get(int(exponent), 0) + coeff
    return {n: c for n, c in out.items() if c != 0}


def expand(iso: Isolated, one_fraction: bool = True) -> Expansion:
    """Stage 4: each Delta as its Taylor coefficients in eta through eta^(dt + 1) (``one_fraction``:
    Delta put over one denominator first, faster for the order-1 rules, slower for order 2's)."""
    order = iso.units.regime.dt + 1
    series = {name: _coefficients(sp.together(d) if one_fraction else d, order, _where(iso.spec, iso.units.regime, name))
              for name, d in iso.delta.items()}
    return Expansion(iso.spec, iso.units, series, iso.signs, iso.held_next)


@lru_cache(maxsize=None)
def expansion(spec: Optimizer, regime: Regime, hold: frozenset[str] = frozenset(), order: int = 1) -> Expansion:
    """Stages 1-4 (law-independent), cached per optimizer, regime, set of held states and order."""
    return expand(isolate_signs(substitute(one_step(Update(spec, regime, hold, order)))), one_fraction=order == 1)


# ---------------------------------------------------------------------------------------------
# Stages 5-7: per law and form
# ---------------------------------------------------------------------------------------------
def _fill_law(expr: sp.Expr, law: NoiseLaw, exp: Expansion, what: str, conditions: set[str]) -> sp.Expr:
    """Put the law's moments and s(y) into an averaged expression."""
    replace_ = {}
    for sym in expr.free_symbols:
        n = moment_order(sym)
        if n:
            value, condition = law.moment(n)
            if value == sp.oo:
                raise InfiniteMomentError(
                    f"{what} needs E[zeta^{n}], which is infinite under the {law.label} law; "
                    f"use a law with a finite moment of order {n}"
                    + (" or form='published', which drops the second-moment noise" if n >= 4 else ""))
            if condition:
                conditions.add(condition)
            replace_[sym] = value
    expr = expr.xreplace(replace_)
    s_calls = [f for f in expr.atoms(sp.Function) if f.func == sp.Function("s")]
    if s_calls:
        values = {}
        for call in s_calls:
            y = call.args[0]
            if not y.has(S.eta):
                values[call] = law.s(y)
            elif sp.limit(y, S.eta, 0) == 0:
                values[call] = law.s_series(y, S.eta, exp.order + 1)
            else:
                raise UnsupportedUpdateError(
                    f"{what}: E[sign(...)] = s({y}) has no expansion in eta (its argument does not vanish "
                    "or stay fixed as eta -> 0)")
        expr = expr.xreplace(values)
    return expr


def _mean_series(coeffs: Mapping[int, sp.Expr], exp: Expansion, law: NoiseLaw, what: str, conditions: set[str],
                 order: int = 1) -> dict[int, sp.Expr]:
    """E[Delta] by order in eta, through order dt + order - 1 (higher orders only feed higher orders).

    Expectations bring in eta only through s(y) with an eta-dependent y; only then is the
    mean re-expanded."""
    means = {n: _fill_law(expect(c, exp.signs, what), law, exp, what, conditions)
             for n, c in coeffs.items() if n <= exp.regime.dt + order - 1}
    if not any(m.has(S.eta) for m in means.values()):
        return {n: m for n, m in means.items() if m != 0}
    return _coefficients(sum((S.eta**n * m for n, m in means.items()), sp.Integer(0)), exp.order, what)


def _covariance(exp: Expansion, law: NoiseLaw, lead: int, conditions: set[str], dropped: frozenset[str]) -> sp.ImmutableMatrix:
    """Cov[Delta] at order eta^lead (regime units); rows and columns of ``dropped`` are zero."""
    random = {n: {o: c for o, c in exp.series[n].items() if is_random(c, exp.signs)} for n in exp.states if n not in dropped}
    size = len(exp.states)
    cov = sp.zeros(size, size)
    for i, a in enumerate(exp.states):
        for j, b in enumerate(exp.states[: i + 1]):
            if a in dropped or b in dropped:
                continue
            what = f"covariance of ({a}, {b}) for {exp.spec.name} under {law.label}"
            total = sp.Integer(0)
            for n, cn in random[a].items():
                cm = random[b].get(lead - n)
                if cm is None:
                    continue
                total += expect(cn * cm, exp.signs, what) - expect(cn, exp.signs, what) * expect(cm, exp.signs, what)
            cov[i, j] = cov[j, i] = _fill_law(total, law, exp, what, conditions)
    return sp.ImmutableMatrix(cov)


def _lowest_random_order(exp: Expansion, dropped: frozenset[str]) -> int | None:
    """Twice the lowest power of eta at which some Delta (not dropped) depends on the noise."""
    orders = [min(o for o, c in exp.series[n].items() if is_random(c, exp.signs))
              for n in exp.states if n not in dropped and any(is_random(c, exp.signs) for c in exp.series[n].values())]
    return 2 * min(orders) if orders else None


def _diverges(mean: Mapping[str, Mapping[int, sp.Expr]], dt: int) -> bool:
    """Whether some E[Delta] has a non-zero power of eta below dt (then there is no SDE limit)."""
    return any(n < dt and sp.simplify(c) != 0 for series in mean.values() for n, c in series.items())


def average(job: Averaging) -> Averaged:
    """Stage 5: E[Delta] through order eta^dt, and Cov[Delta] at the lowest order eta^lead at
    which Delta is random (the law's moments and s(y) filled in)."""
    exp, law = job.expansion, job.law
    conditions: set[str] = set()
    mean = {}
    for name in exp.states:
        what = f"drift of {name} for {exp.spec.name} under {law.label} ({exp.regime.name})"
        mean[name] = _mean_series(exp.series[name], exp, law, what, conditions, job.order)
    held = {}
    for sym, value in exp.held_next.items():
        what = f"same-step value {sym} for {exp.spec.name} under {law.label}"
        held[sym] = sp.expand(_fill_law(expect(value, exp.signs, what), law, exp, what, conditions))
    cov, lead = None, None
    if job.covariance and not _diverges(mean, exp.regime.dt):  # a divergent drift is reported first (leading)
        lead = _lowest_random_order(exp, job.dropped)
        if lead is None:  # no noise at all
            cov, lead = sp.ImmutableMatrix(sp.zeros(len(exp.states), len(exp.states))), 0
        elif lead >= exp.regime.dt:
            cov = _covariance(exp, law, lead, conditions, job.dropped)
    return Averaged(exp, law, mean, cov, lead, frozenset(conditions), held)


def leading(avg: Averaged) -> Leading:
    """Stage 6: drift = [eta^dt] E[Delta], after checking that no lower power survives; the
    covariance's eta^0 coefficient where s(y) brought eta into it; NoLimitError when E[Delta]/dt
    or Cov[Delta]/dt diverges as eta -> 0."""
    exp = avg.expansion
    dt = exp.regime.dt
    drift = {}
    for name in exp.states:
        mean = avg.mean[name]
        low = [n for n, c in mean.items() if n < dt and sp.simplify(c) != 0]
        if low:
            raise NoLimitError(
                f"optimizer {exp.spec.name!r} has no SDE limit in the {exp.regime.name} regime: "
                f"E[Delta {name}]/dt is of order eta^{min(low) - dt}, which diverges as eta -> 0")
        drift[name] = mean.get(dt, sp.Integer(0))
    if avg.cov is None and avg.lead is not None:
        raise NoLimitError(f"optimizer {exp.spec.name!r} has no SDE limit in the {exp.regime.name} regime: "
                           f"Cov[Delta]/dt is of order eta^{avg.lead - dt}")
    cov = avg.cov
    if cov is not None and cov.has(S.eta):  # s(y) with an eta-dependent y: keep the eta^0 coefficient
        cov = sp.ImmutableMatrix(len(exp.states), len(exp.states), lambda i, j: _coefficients(
            cov[i, j], 0, f"covariance of ({exp.states[i]}, {exp.states[j]}) for {exp.spec.name} under {avg.law.label}"
        ).get(0, sp.Integer(0)) if cov[i, j].has(S.eta) else cov[i, j])
    return Leading(exp, drift, cov, avg.lead, avg.conditions)


def _tidy(expr: sp.Expr) -> sp.Expr:
    """A readable form: common factors pulled out (which also cancels powers of eta), each
    additive term over one denominator, without expanding powers of sums."""
    expr = sp.factor_terms(expr)
    return sp.factor_terms(sp.Add(*[sp.factor_terms(sp.together(a)) for a in sp.Add.make_args(expr)]))


def _canonical(expr: sp.Expr) -> sp.Expr:
    """Factored canonical form, computed with every positive symbol s written as w**2, so that
    sqrt(s) is the polynomial variable w and cancellation through sqrt(s) is exact."""
    roots = {sym: sp.Symbol(f"sqrt_{sym.name}", positive=True) for sym in expr.free_symbols if sym.is_positive}
    rational = expr.xreplace({sym: w**2 for sym, w in roots.items()})
    result = sp.factor(sp.cancel(rational))
    return result.xreplace({w: sp.sqrt(sym) for sym, w in roots.items()})


@lru_cache(maxsize=4096)
def _simplest(expr: sp.Expr) -> sp.Expr:
    """The shortest of ``expr``, its tidy form, its factored canonical form and its partial
    fractions in the parameter x (all exact)."""
    if expr.is_Atom:
        return expr
    candidates = [expr, _tidy(expr), _canonical(expr)]
    if expr.has(X):
        try:
            candidates.append(sp.apart(candidates[2], X))
        except (sp.PolynomialError, NotImplementedError):
            pass  # not rational in x (e.g. erf(x)): the other forms stand
    return min(candidates, key=sp.count_ops)


def _cholesky(cov: sp.Matrix) -> sp.Matrix:
    """G with G G^T = cov for a symbolic positive semi-definite cov; zero rows and pivots dropped."""
    n = cov.shape[0]
    active = [i for i in range(n) if any(cov[i, j] != 0 for j in range(n))]
    columns: list[list[sp.Expr]] = []
    residual = sp.Matrix(cov)
    for p in active:
        pivot = _simplest(residual[p, p])
        if pivot == 0:
            continue
        root = sp.sqrt(pivot)
        col = [sp.Integer(0)] * n
        for i in active:
            if i == p:
                col[i] = root
            elif active.index(i) > active.index(p):
                col[i] = _simplest(residual[i, p] / root)
        for i in active:
            for j in active:
                residual[i, j] = _canonical(residual[i, j] - col[i] * col[j])
        columns.append(col)
    if not columns:
        return sp.zeros(n, 0)
    return sp.Matrix([[c[i] for c in columns] for i in range(n)])


def map_back(lead: Leading) -> UserForm:
    """Stage 7: drift and diffusion in the user's units, each entry in its simplest exact form.

    A state s = s_0 / eta^r and regime time t_regime = eta^(dt-1) t: the drift of s is
    eta^(dt-1) b_0 / eta^r, the covariance eta^(dt-1) eta^(lead-dt) Cov_0 / eta^(r_i + r_j)
    (the eta^(lead-dt) is the power kept in front of the noise); G is its Cholesky factor.
    """
    exp, units = lead.expansion, lead.expansion.units
    reg = units.regime
    back = dict(units.to_user)
    time_scale = S.eta ** (reg.dt - 1)
    drift = tuple(_simplest(lead.drift[n].xreplace(back) * time_scale / S.eta ** units.exponents[n]) for n in exp.states)
    size = len(exp.states)
    if lead.cov is None:
        return UserForm(drift, sp.ImmutableMatrix(sp.zeros(size, 0)))
    scale = [S.eta ** -units.exponents[n] for n in exp.states]
    user_cov = sp.Matrix(size, size, lambda i, j: _simplest(
        lead.cov[i, j].xreplace(back) * scale[i] * scale[j] * S.eta ** (lead.lead - reg.dt) * time_scale))
    return UserForm(drift, sp.ImmutableMatrix(_cholesky(user_cov)))


def derive_sde(optimizer: "str | Optimizer", noise: "str | NoiseLaw" = "gaussian", regime: "str | Regime" = "paper",
               form: str = "full", nu: object = None, order: int = 1) -> SDE:
    """Derive the SDE of ``optimizer`` under the gradient-noise law ``noise`` in ``regime``.

    ``form`` is 'full' (complete leading-order drift and covariance) or 'published' (the
    regime's named simplifications: the second-moment noise dropped; in the paper regime the
    same-step momentum kept in the parameter drift). The result is in the user's units: eta,
    rho = (1 - beta)/eta, sigma, eps, theta, t = k eta, whatever the regime. ``order`` 2 gives
    the weak order-2 SDE (drift b0 + eta b1, :mod:`derive.order2`; paper regime, full form).
    """
    spec = get_optimizer(optimizer)
    law = get_noise(noise, nu)
    reg = get_regime(regime)
    if form not in FORMS:
        raise UnknownNameError("form", form, FORMS)
    if order != 1:
        return _derive_order2(spec, law, reg, form, order)
    simplifications = reg.published if form == "published" else ()
    degrees = {n: spec.grad_degree(n) for n in spec.state_names}
    second_moment = frozenset(n for n in spec.state_names[1:] if (degrees[n] or 0) >= 2)
    momentum = frozenset(n for n in spec.state_names[1:] if degrees[n] == 1)
    hold = momentum if SAME_STEP_MOMENTUM in simplifications else frozenset()
    applied = [s for s in simplifications if (s == DROP_SECOND_MOMENT_NOISE and second_moment) or (s == SAME_STEP_MOMENTUM and hold)]
    dropped = second_moment if DROP_SECOND_MOMENT_NOISE in applied else frozenset()

    exp = expansion(spec, reg)                                    # stages 1-4
    result = leading(average(Averaging(exp, law, dropped)))       # stages 5-6
    if hold:  # the x drift with the same-step momentum kept: x reads m_next = E[m']
        held = average(Averaging(expansion(spec, reg, hold), law, dropped, covariance=False))
        x_drift = leading(held).drift["x"].xreplace(held.held_next)
        result = replace(result, drift={**result.drift, "x": x_drift}, conditions=result.conditions | held.conditions)
    user = map_back(result)                                       # stage 7

    provenance = [
        f"update rule of {spec.name}: " + "; ".join(f"{a} <- {b}" for a, b in spec.update),
        f"regime {reg.name}: {reg.reference}",
        f"noise {law.label}: " + (f"s(y) = 2F(y) - 1 = {law.s(sp.Symbol('y'))}" if exp.signs
                                  else "moments E[zeta^n] of the law (no sign() in the update)"),
        f"expanded in eta to order {exp.order}; drift = [eta^{reg.dt}] E[Delta], covariance at order eta^{result.lead} over dt",
    ]
    if applied:
        provenance.append("published simplifications: " + "; ".join(applied))
    elif form == "published":
        provenance.append("published form: no simplification applies to this optimizer in this regime")
    return SDE(
        optimizer=spec.name, noise=law.label, regime=reg.name, form=form,
        state=spec.state_symbols, drift=user.drift, diffusion=user.diffusion,
        time_functions=dict(sorted(exp.units.gammas.items(), key=lambda item: item[0].name)),
        initial={s.name: s.init for s in spec.state},
        conditions=tuple(sorted(result.conditions)), provenance=tuple(provenance), same_step=tuple(sorted(hold)),
    )


def _derive_order2(spec: Optimizer, law: NoiseLaw, reg: Regime, form: str, order: int) -> SDE:
    """The weak order-2 SDE (:mod:`derive.order2`): the full order-1 SDE, E[Delta] one order
    further (bias powers kept to O(eta)), and the drift correction b1 from c0 and c1."""
    from . import order2

    order2.check_request(spec, law, reg, form, order)
    first = derive_sde(spec, law, reg, "full")
    exp = expansion(spec, reg, order=2)
    averaged_with = order2.differentiable_law(spec, law, bool(exp.signs))
    avg = average(Averaging(exp, averaged_with, covariance=False, order=2))
    c1 = {n: avg.mean[n].get(reg.dt + 1, sp.Integer(0)) for n in exp.states}
    return order2.with_correction(first, spec, averaged_with, leading(avg).drift, c1, exp.units.gammas, avg.conditions)
