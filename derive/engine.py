"""The derivation pipeline: update rule + noise law + scaling regime -> SDE.

Reference section 2. For a state S = (x, m, v, ...) and one step S' = S + Delta(S, g~):

1. ``one_step``     compose the update rule into Delta for each state;
2. ``substitute``   put in the regime's scalings (beta = 1 - eta^a rho_0, g~ = g + sigma_0 zeta /
                    eta^b, rescaled states, k = t/dt), turning beta^k into 1 - gamma with
                    gamma = 1 - exp(lim k log beta);
3. ``isolate_signs`` replace each sign(a + b zeta) by sign(b) S, S = sign(a/b + zeta);
4. ``expand``       series in eta of each Delta (zeta and S held as O(1) symbols);
5. ``average``      expectations over zeta (module :mod:`derive.expectation`), the law filling in
                    moments and s(y) = 2F(y) - 1;
6. ``leading``      drift b = [eta^dt] E[Delta]; covariance GG^T = Cov[Delta]/dt at the leading
                    order in eta of the whole matrix (keeping that power of eta);
7. ``map_back``     to the user's units (identity in the paper regime), the published
                    simplifications, and a Cholesky factor G of the covariance.

Steps 1 to 4 do not depend on the noise law and are cached per (optimizer, regime).
"""
from __future__ import annotations

from dataclasses import dataclass, field
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
# Steps 1-4: law-independent
# ---------------------------------------------------------------------------------------------
@dataclass
class Expansion:
    """Delta of every state as a series in eta, in the regime's O(1) symbols."""

    spec: Optimizer
    regime: Regime
    states: tuple[str, ...]
    exponents: dict[str, int]  # r(s): user state s = s_0 / eta^r
    series: dict[str, dict[int, sp.Expr]]  # state -> {order: coefficient}
    signs: dict[sp.Symbol, SignAtom]
    to_user: dict[sp.Symbol, sp.Expr]  # regime symbol -> expression in user units
    gammas: dict[sp.Symbol, sp.Expr]  # gamma symbol -> definition (user units)
    order: int
    held_next: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)  # m_next -> m' (scaled)


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


def _bias_powers(expr: sp.Expr, hyper_subs: dict, t0: sp.Symbol, regime: Regime, gammas: dict, to_user: dict, where: str) -> sp.Expr:
    """Replace beta^k by its limit exp(lim_{eta->0} k log beta) =: 1 - gamma, k = t/dt."""
    replace = {}
    k_of_t = t0 / S.eta**regime.dt
    for p in expr.atoms(sp.Pow):
        if not p.exp.has(S.k):
            continue
        if p.base.has(S.k):
            raise UnsupportedUpdateError(f"{where}: the step count k appears in the base of {p}; only powers beta**(expression in k) are supported")
        log_rate = sp.limit(p.exp.subs(S.k, k_of_t) * sp.log(p.base.xreplace(hyper_subs)), S.eta, 0)
        if log_rate == 0:
            replace[p] = sp.Integer(1)
        elif log_rate == -sp.oo:
            replace[p] = sp.Integer(0)
        elif log_rate.is_negative:
            name = S.bias_name(p.base.name) if isinstance(p.base, sp.Symbol) else f"gamma_{len(gammas) + 1}"
            gamma = sp.Symbol(name, positive=True)
            gammas[gamma] = 1 - sp.exp(log_rate.xreplace(to_user))
            replace[p] = 1 - gamma
        else:
            raise UnsupportedUpdateError(f"{where}: the power {p} has no limit in (0, 1] as eta -> 0 (k log base -> {log_rate})")
    out = expr.xreplace(replace)
    if out.has(S.k):
        raise UnsupportedUpdateError(f"{where}: the step count k appears outside a power beta**k in {out}; "
                                     "only bias corrections of the form beta**k are supported")
    return out


def _isolate_signs(expr: sp.Expr, signs: dict[sp.Symbol, SignAtom], where: str) -> sp.Expr:
    """sign(a + b zeta) -> sign(b) * S with S = sign(a/b + zeta) (one placeholder per distinct a/b)."""
    replace = {}
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
        replace[atom] = orientation * sym
    return expr.xreplace(replace)


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


@lru_cache(maxsize=None)
def expansion(spec: Optimizer, regime: Regime, hold: frozenset[str] = frozenset()) -> Expansion:
    """Steps 1-4 for one optimizer, regime and set of held same-step states."""
    eta = S.eta
    hyper_subs, to_user, sigma0, t0 = _regime_symbols(spec, regime)
    step = spec.step_map(hold)
    exponents = {name: (0 if name == "x" else regime.state_exponent(spec.grad_degree(name))) for name in spec.state_names}
    state_subs = {}
    for name, sym in zip(spec.state_names, spec.state_symbols):
        r = exponents[name]
        scaled = sym if r == 0 else sp.Symbol(f"{name}_0", positive=bool(sym.is_positive), real=True)
        state_subs[sym] = scaled / eta**r
        if r:
            to_user[scaled] = sym * eta**r
    subs = {**hyper_subs, S.grad: S.g + sigma0 * S.zeta / eta**regime.noise, **state_subs}
    gammas: dict[sp.Symbol, sp.Expr] = {}
    signs: dict[sp.Symbol, SignAtom] = {}
    order = regime.dt + 1
    series: dict[str, dict[int, sp.Expr]] = {}
    for name, sym in zip(spec.state_names, spec.state_symbols):
        where = f"optimizer {spec.name!r} ({regime.name} regime), update of {name}"
        new = _bias_powers(step[name], hyper_subs, t0, regime, gammas, to_user, where)
        delta = eta ** exponents[name] * (new.xreplace(subs) - sym.xreplace(subs))
        delta = _isolate_signs(sp.powsimp(delta), signs, where)
        series[name] = _coefficients(sp.together(delta), order, where)  # one fraction: faster series
    held_next = {}
    for h in hold:
        where = f"optimizer {spec.name!r}, same-step value of {h}"
        new = _bias_powers(spec.step_map()[h], hyper_subs, t0, regime, gammas, to_user, where).xreplace(subs)
        held_next[next_symbol(h)] = sp.expand(expect(new, {}, where))
    return Expansion(spec, regime, spec.state_names, exponents, series, signs, to_user, gammas, order, held_next)


# ---------------------------------------------------------------------------------------------
# Steps 5-7: per law and form
# ---------------------------------------------------------------------------------------------
def _fill_law(expr: sp.Expr, law: NoiseLaw, exp: Expansion, what: str, conditions: set[str]) -> sp.Expr:
    """Put the law's moments and s(y) into an averaged expression."""
    replace = {}
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
            replace[sym] = value
    expr = expr.xreplace(replace)
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


def _mean_series(coeffs: dict[int, sp.Expr], exp: Expansion, law: NoiseLaw, what: str, conditions: set[str]) -> dict[int, sp.Expr]:
    """E[Delta] by order in eta, through order dt (higher orders only feed higher orders).

    Expectations bring in eta only through s(y) with an eta-dependent y; only then is the
    mean re-expanded."""
    means = {n: _fill_law(expect(c, exp.signs, what), law, exp, what, conditions)
             for n, c in coeffs.items() if n <= exp.regime.dt}
    if not any(m.has(S.eta) for m in means.values()):
        return {n: m for n, m in means.items() if m != 0}
    return _coefficients(sum((S.eta**n * m for n, m in means.items()), sp.Integer(0)), exp.order, what)


def _drift(exp: Expansion, law: NoiseLaw, name: str, conditions: set[str]) -> sp.Expr:
    what = f"drift of {name} for {exp.spec.name} under {law.label} ({exp.regime.name})"
    mean = _mean_series(exp.series[name], exp, law, what, conditions)
    low = [n for n, c in mean.items() if n < exp.regime.dt and sp.simplify(c) != 0]
    if low:
        raise NoLimitError(
            f"optimizer {exp.spec.name!r} has no SDE limit in the {exp.regime.name} regime: "
            f"E[Delta {name}]/dt is of order eta^{min(low) - exp.regime.dt}, which diverges as eta -> 0")
    return mean.get(exp.regime.dt, sp.Integer(0))


def _covariance(exp: Expansion, law: NoiseLaw, conditions: set[str], dropped: set[str]) -> tuple[sp.Matrix, int]:
    """Leading-order Cov[Delta] (regime units) and its eta order L; rows of ``dropped`` are zero."""
    random = {n: {o: c for o, c in exp.series[n].items() if is_random(c, exp.signs)} for n in exp.states if n not in dropped}
    orders = [min(r) for r in random.values() if r]
    size = len(exp.states)
    if not orders:
        return sp.zeros(size, size), 0
    lead = 2 * min(orders)
    if lead < exp.regime.dt:
        raise NoLimitError(f"optimizer {exp.spec.name!r} has no SDE limit in the {exp.regime.name} regime: "
                           f"Cov[Delta]/dt is of order eta^{lead - exp.regime.dt}")
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
            total = _fill_law(total, law, exp, what, conditions)
            if total.has(S.eta):
                total = _coefficients(total, 0, what).get(0, sp.Integer(0))
            cov[i, j] = cov[j, i] = total
    return cov, lead


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


def derive_sde(optimizer: "str | Optimizer", noise: "str | NoiseLaw" = "gaussian", regime: "str | Regime" = "paper",
               form: str = "full", nu: object = None) -> SDE:
    """Derive the SDE of ``optimizer`` under the gradient-noise law ``noise`` in ``regime``.

    ``form`` is 'full' (complete leading-order drift and covariance) or 'published' (the
    regime's named simplifications: the second-moment noise dropped; in the paper regime the
    same-step momentum kept in the parameter drift). The result is in the user's units: eta,
    rho = (1 - beta)/eta, sigma, eps, theta, t = k eta, whatever the regime.
    """
    spec = get_optimizer(optimizer)
    law = get_noise(noise, nu)
    reg = get_regime(regime)
    if form not in FORMS:
        raise UnknownNameError("form", form, FORMS)
    simplifications = reg.published if form == "published" else ()
    degrees = {n: spec.grad_degree(n) for n in spec.state_names}
    second_moment = {n for n in spec.state_names[1:] if (degrees[n] or 0) >= 2}
    momentum = frozenset(n for n in spec.state_names[1:] if degrees[n] == 1)
    hold = momentum if SAME_STEP_MOMENTUM in simplifications else frozenset()
    exp = expansion(spec, reg)
    conditions: set[str] = set()

    drift = {name: _drift(exp, law, name, conditions) for name in exp.states}
    if hold:
        held = expansion(spec, reg, hold)
        drift["x"] = _drift(held, law, "x", conditions).xreplace(held.held_next)
    applied = [s for s in simplifications if (s == DROP_SECOND_MOMENT_NOISE and second_moment) or (s == SAME_STEP_MOMENTUM and hold)]
    dropped = second_moment if DROP_SECOND_MOMENT_NOISE in applied else set()
    cov, lead = _covariance(exp, law, conditions, dropped)

    # map back to user units: s = s_0 / eta^r, t_regime = eta^(dt-1) t
    back = dict(exp.to_user)
    time_scale = S.eta ** (reg.dt - 1)
    user_drift = []
    for name in exp.states:
        value = drift[name].xreplace(back) * time_scale / S.eta ** exp.exponents[name]
        user_drift.append(_simplest(value))
    scale = [S.eta ** -exp.exponents[n] for n in exp.states]
    user_cov = sp.Matrix(len(scale), len(scale), lambda i, j: _simplest(
        cov[i, j].xreplace(back) * scale[i] * scale[j] * S.eta ** (lead - reg.dt) * time_scale))
    diffusion = _cholesky(user_cov)

    provenance = [
        f"update rule of {spec.name}: " + "; ".join(f"{a} <- {b}" for a, b in spec.update),
        f"regime {reg.name}: {reg.reference}",
        f"noise {law.label}: " + (f"s(y) = 2F(y) - 1 = {law.s(sp.Symbol('y'))}" if exp.signs
                                  else "moments E[zeta^n] of the law (no sign() in the update)"),
        f"expanded in eta to order {exp.order}; drift = [eta^{reg.dt}] E[Delta], covariance at order eta^{lead} over dt",
    ]
    if applied:
        provenance.append("published simplifications: " + "; ".join(applied))
    elif form == "published":
        provenance.append("published form: no simplification applies to this optimizer in this regime")
    return SDE(
        optimizer=spec.name, noise=law.label, regime=reg.name, form=form,
        state=spec.state_symbols, drift=tuple(user_drift), diffusion=sp.ImmutableMatrix(diffusion),
        time_functions=dict(sorted(exp.gammas.items(), key=lambda item: item[0].name)), initial={s.name: s.init for s in spec.state},
        conditions=tuple(sorted(conditions)), provenance=tuple(provenance), same_step=tuple(sorted(hold)),
    )
