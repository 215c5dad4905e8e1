"""The derivation pipeline: update rule + noise law + scaling regime -> SDE.

Reference section 2. For a state S = (x, m, v, ...) and one step S' = S + Delta(S, g~), seven
stages, each a function from one small dataclass to the next (so each can be run and tested
alone); :func:`derive_sde` calls them in order:

1. :func:`one_step`      ``Update -> OneStep``: compose the update rule into the new value S' of
                         each state;
   :func:`at_points`     ``OneStep -> OneStep``: each gradient at another point, grad(P), written
                         about x (:mod:`derive.points`): grad + hvp(P - x) where P - x is small,
                         grad - g + gradf(P) where P is an O(1) different point free of the noise;
2. :func:`substitute`    ``OneStep -> Substituted``: put in the regime's scalings (beta = 1 -
                         eta^a rho_0, g~ = g + sigma_0 zeta / eta^b, rescaled states, k = t/dt),
                         turning beta^k into 1 - gamma with gamma = 1 - exp(lim k log beta), and
                         form Delta = eta^r (S' - S);
   :func:`eliminate_fast` ``Substituted -> Substituted``: each fast state (contracted by a factor
                         held fixed, PyTorch's momentum) eliminated by the change of variables
                         s - c m of reference section 11 (:mod:`derive.fast`);
3. :func:`isolate_signs` ``Substituted -> Isolated``: rewrite every sign, Abs, Min, Max and
                         Heaviside of an affine function a + b d of a noise draw d into indicators
                         H = 1[d > -a/b] (module :mod:`derive.expectation`); a threshold that
                         diverges as eta -> 0 gives the deterministic limit (a sign of an argument
                         growing like 1/eta becomes the sign of its leading term);
4. :func:`expand`        ``Isolated -> Expansion``: series in eta of each Delta (zeta and S held
                         as O(1) symbols);
5. :func:`average`       ``Averaging -> Averaged``: expectations over the draws (module
                         :mod:`derive.expectation`), the law filling in its moments and partial
                         moments K_n(u) = integral_0^u z^n p (K_0 = s/2, s(y) = 2F(y) - 1):
                         E[Delta] through order eta^dt and Cov[Delta] at its lowest order in eta;
6. :func:`leading`       ``Averaged -> Leading``: drift b = [eta^dt] E[Delta] (lower orders must
                         vanish); covariance GG^T = Cov[Delta]/dt at the leading order in eta of
                         the whole matrix (keeping that power of eta);
7. :func:`map_back`      ``Leading -> UserForm``: to the user's units (identity in the paper
                         regime), each entry in its simplest exact form, and a Cholesky factor G of
                         the covariance.

Stages 1 to 4 do not depend on the noise law and are cached per (optimizer, regime, held states)
by :func:`expansion`. Before them :func:`clocked` puts the regime on the clock the update rule
needs (t = k eta^2 for AdaGrad's accumulator, reference section 12); stage 2 writes a step-count
coefficient such as 1/(k + 1) as a function of t = k dt; stage 5 splits off the noise through the
Hessian (USAM's r H sigma dW), whose loading on the diffusion's columns stage 7 reads from the
Cholesky factor of the covariance augmented with the draws H acts on (:class:`derive.sde.HessianNoise`). The published forms' simplifications act through stage inputs: the
second-moment rows are left out of the covariance (``Averaging.dropped``), and the same-step
momentum is kept in the x drift by a second pass with the momentum held (``Update.hold``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache

import sympy as sp

from . import symbols as S
from .descriptors import described
from .errors import InfiniteMomentError, NoLimitError, UnknownNameError, UnsupportedUpdateError
from .expectation import Indicator, abs_moment_order, expect, is_random, isolate, moment_order, partial_order
from .fast import Elimination, NonlinearFastError, check_linear, contraction, eliminate, leading_order
from .noise import NoiseLaw, get_noise
from .opaque import Opaque, expand_outside
from .optimizers import get_optimizer
from .points import draw_at_x, grad_at, gradf, hvp, innermost, linear_hvp, random_hvps, refuse_norm
from .regimes import DROP_SECOND_MOMENT_NOISE, FORMS, PAPER, SAME_STEP_MOMENTUM, Regime, get_regime
from .sde import SDE, HessianNoise, brownian, clock_text
from .spec import Optimizer, X, next_symbol


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
    #: exponents of the states in the user's units (an accumulator on its clock: V = eta^b_user s)
    user_exponents: Mapping[str, int] = field(default_factory=dict)
    #: fast states eliminated (derive.fast), in the order they were
    eliminated: tuple[Elimination, ...] = ()
    #: step-count coefficients (1/(k + 1), ...) written as functions of t
    step_counts: tuple[sp.Expr, ...] = ()


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
    """As :class:`Substituted`, with every piecewise function of the noise written through the
    indicators of the table ``indicators`` (H = 1[draw > threshold])."""

    spec: Optimizer
    units: Units
    delta: Mapping[str, sp.Expr]
    indicators: Mapping[sp.Symbol, Indicator]
    held_next: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)


@dataclass(frozen=True)
class Expansion:
    """Delta of every state as {power of eta: coefficient} through eta^order (order = dt + 1)."""

    spec: Optimizer
    units: Units
    series: Mapping[str, Mapping[int, sp.Expr]]
    indicators: Mapping[sp.Symbol, Indicator]
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
class HessianPart:
    """The noise through the Hessian at the leading random order eta^p, p = lead/2 (USAM's
    -eta r sigma hvp(zeta)): per state its part of Delta over eta^p, a sum of c hvp(u) with u linear
    in the draws ``draws`` (regime units); ``augmented`` is Cov[Delta] at order eta^lead with one
    more row and column per draw d (as the increment eta^p d), whose Cholesky factor gives each
    draw's loading on the diffusion's columns."""

    terms: Mapping[str, sp.Expr]
    draws: tuple[sp.Symbol, ...]
    augmented: sp.ImmutableMatrix


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
    hessian: HessianPart | None = None


@dataclass(frozen=True)
class Leading:
    """Drift [eta^dt] E[Delta] per state and covariance Cov[Delta] at order eta^lead, both in
    regime units (cov and lead None when the covariance was not wanted)."""

    expansion: Expansion
    drift: Mapping[str, sp.Expr]
    cov: sp.ImmutableMatrix | None
    lead: int | None
    conditions: frozenset[str] = frozenset()
    hessian: HessianPart | None = None


@dataclass(frozen=True)
class UserForm:
    """Drift (one entry per state) and diffusion G (rows = states, one column per independent
    Brownian motion) in the user's units."""

    drift: tuple[sp.Expr, ...]
    diffusion: sp.ImmutableMatrix
    #: noise through the Hessian (USAM's sqrt(eta) r H sigma dW), None when there is none
    hessian: HessianNoise | None = None


# ---------------------------------------------------------------------------------------------
# Stages 1-4: law-independent
# ---------------------------------------------------------------------------------------------
def _running_extremum(spec: Optimizer, name: str, new: sp.Expr) -> None:
    """Refuse Max/Min of a state and an expression of the noise (AMSGrad's vhat = max(vhat, v)):
    a running maximum moves by one-sided jumps and has no limit of the form b dt + G dW."""
    states = set(spec.state_symbols)
    for atom in new.atoms(sp.Max, sp.Min):
        noisy = [
            a
            for a in atom.args
            if S.draws_in(a) or a.has(S.grad) or any(S.draw_index(s, "grad") is not None for s in a.free_symbols)
        ]
        kept = [a for a in atom.args if a in states]
        if noisy and kept:
            raise UnsupportedUpdateError(
                f"optimizer {spec.name!r}, update of {name}: {type(atom).__name__}({kept[0]}, ...) takes the running "
                f"{'maximum' if isinstance(atom, sp.Max) else 'minimum'} of the state {kept[0]} and a noisy update (as AMSGrad's "
                "vhat = max(vhat, v)); such a ratchet has no SDE limit of the form b dt + G dW, so it is not supported"
            )


def one_step(update: Update) -> OneStep:
    """Stage 1: the new value of every state after one step (the update rule composed in order)."""
    spec = update.spec
    new = spec.step_map(update.hold)
    for name, value in new.items():
        _running_extremum(spec, name, value)
    held = {h: spec.step_map()[h] for h in sorted(update.hold)}
    return OneStep(spec, update.regime, new, held, update.order)


def at_points(step: OneStep) -> OneStep:
    """Stage 1b: every gradient at another point, grad(P) or grad_i(P), written about x
    (:mod:`derive.points`): with delta = P - x of order eta^a in the regime (``radius``
    hyperparameters as sqrt(dt)), a > 0 gives grad + hvp(delta) (the same draw), provided that the
    O(|delta|^2) remainder is beyond the order of the SDE; a <= 0 gives the gradient field there,
    grad - g + gradf(P), provided that delta is free of the noise. norm(...) is refused."""
    spec, regime = step.spec, step.regime
    for name, value in step.new.items():
        found = refuse_norm(value)
        if found is not None:
            raise UnsupportedUpdateError(
                f"{_where(spec, regime, name)}: {found} is the Euclidean norm over all coordinates (as normalised "
                "SAM's r*grad/norm(grad)); it couples every coordinate, and the engine derives coordinate-wise "
                "SDEs, so it is not supported (USAM, x - eta*grad(x + r*grad), is)"
            )
    if not any(v.has(grad_at) for v in (*step.new.values(), *step.held.values())):
        return step
    size = _sizer(spec, regime, step.new)
    exponents, _ = _exponents(spec, regime, step.new)
    need = regime.dt + 1

    def resolve(expr: sp.Expr, name: str) -> sp.Expr:
        while expr.has(grad_at):
            for atom in innermost(expr):
                expr = expr.xreplace({atom: _point(expr, atom, name)})
        return expr

    def _point(expr: sp.Expr, atom: grad_at, name: str) -> sp.Expr:
        where = f"{_where(spec, regime, name)}: {atom}"
        delta = sp.expand(atom.point - X)
        if delta == 0:
            return draw_at_x(atom)
        order = size(delta)
        random = bool(delta.free_symbols & {S.grad_draw(i) for i in range(10)} or S.draws_in(delta))
        if order is None:
            raise UnsupportedUpdateError(f"{where}: the size in eta of P - x = {delta} is not decided")
        if order > 0:
            placeholder = sp.Dummy("G")
            coefficient = sp.diff(expr.xreplace({atom: placeholder}), placeholder)
            weight = size(coefficient)
            if weight is not None and weight + exponents.get(name, 0) + 2 * order < need:
                raise UnsupportedUpdateError(
                    f"{where}: P - x = {delta} is of order eta^{order}, so the second-order term of the gradient's "
                    f"expansion about x, of order eta^{weight + exponents.get(name, 0) + 2 * order} in Delta {name}, is "
                    f"within the order of the SDE (eta^{regime.dt}); it needs the third derivative of f: not supported"
                )
            return draw_at_x(atom) + hvp(delta)
        if random:
            raise UnsupportedUpdateError(
                f"{where}: P - x = {delta} is of order eta^{order} and depends on the noise; the gradient at a random "
                "point that does not approach x has no expansion about x, so there is no SDE (a hyperparameter that "
                "scales the distance, as SAM's r, takes the role 'radius': r = r0*sqrt(eta))"
            )
        return draw_at_x(atom) - S.g + gradf(atom.point)

    new = {name: resolve(value, name) for name, value in step.new.items()}
    held = {name: resolve(value, name) for name, value in step.held.items()}
    return replace(step, new=new, held=held)


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
        elif role == "fixed_decay":  # beta = 1 - c with 0 < c < 1 (see symbols.sign_in_unit_interval)
            c = S.complement_symbol(name)
            subs[sym] = 1 - c
            to_user[c] = 1 - sym
        elif role == "weight_decay":
            th0 = regime.scaled(sym, regime.weight_decay, positive=False)
            subs[sym] = th0 * eta**regime.weight_decay
            to_user[th0] = sym / eta**regime.weight_decay
        elif role == "noise_scale":  # scales like sigma
            tau0 = regime.scaled(sym, regime.noise)
            subs[sym] = tau0 / eta**regime.noise
            to_user[tau0] = sym * eta**regime.noise
    sigma0 = regime.scaled(S.sigma, regime.noise)
    to_user[sigma0] = S.sigma * eta**regime.noise
    t0 = regime.scaled(S.t, regime.dt - regime.clock)
    to_user[t0] = S.t * eta ** (regime.dt - regime.clock)
    return subs, to_user, sigma0, t0


def _exponents(spec: Optimizer, regime: Regime, new: Mapping[str, sp.Expr]) -> tuple[dict[str, int], dict[str, int]]:
    """r(s) of every state in the regime (s = s_0 / eta^r) and in the user's units (nonzero only for
    an accumulator on its clock: V = eta^b_user s)."""
    exponents, user = {}, {}
    for name in new:
        acc = regime.accumulator(name)
        if acc is not None:
            exponents[name], user[name] = acc
        else:
            exponents[name] = 0 if name == "x" else regime.state_exponent(_grad_degree(new[name]))
    return exponents, user


def _state_symbol(spec: Optimizer, name: str, r: int) -> sp.Symbol:
    """The regime symbol of a state: itself, or ``<name>_0`` when it is rescaled (r != 0)."""
    sym = dict(zip(spec.state_names, spec.state_symbols, strict=True))[name]
    return sym if r == 0 else sp.Symbol(f"{name}_0", positive=bool(sym.is_positive), real=True)


def _sizer(spec: Optimizer, regime: Regime, new: Mapping[str, sp.Expr]):
    """size(expr): the order in eta (a half-integer) of an expression of the update rule in the
    regime, noise draws, g and the states counted O(1), a ``radius`` hyperparameter as
    r0 * eta^(dt/2) (SAM's r = r0 sqrt(eta) in the paper regime), H as O(1); None if undecided."""
    hyper_subs, _, sigma0, t0 = _regime_symbols(spec, regime)
    h = sp.Symbol("_h", positive=True)  # eta = h^2
    exponents, _ = _exponents(spec, regime, new)
    subs = dict(hyper_subs)
    for name, role in spec.hyper.items():
        if role == "radius":
            subs[spec.hyper_symbols()[name]] = spec.hyper_symbols()[name] * h**regime.dt
    for name, sym in zip(spec.state_names, spec.state_symbols, strict=True):
        if name in exponents:
            subs[sym] = _state_symbol(spec, name, exponents[name]) / S.eta ** exponents[name]
    for i in range(0, 10):
        subs[S.grad_draw(i)] = S.g + sigma0 * S.law_draw(i) / S.eta**regime.noise
    subs[S.k] = t0 / S.eta**regime.dt
    opaque = sp.Dummy("f", positive=True)

    def size(expr: sp.Expr) -> sp.Rational | None:
        expr = expr.replace(lambda e: isinstance(e, hvp), lambda e: e.args[0])
        expr = expr.replace(lambda e: isinstance(e, gradf), lambda e: opaque)
        expr = sp.powsimp(expr.xreplace(subs).xreplace({S.eta: h**2}))
        if expr == 0:
            return sp.oo
        try:
            return sp.Rational(expr.leadterm(h)[1], 2)
        except (ValueError, NotImplementedError, TypeError):
            return None

    return size


def _bias_powers(
    expr: sp.Expr,
    hyper_subs: dict,
    t0: sp.Symbol,
    regime: Regime,
    gammas: dict,
    to_user: dict,
    where: str,
    exact: bool = False,
    counts: list | None = None,
) -> sp.Expr:
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
            raise UnsupportedUpdateError(
                f"{where}: the step count k appears in the base of {p}; only powers beta**(expression in k) are supported"
            )
        base = p.base.xreplace(hyper_subs)
        log_power = p.exp.subs(S.k, k_of_t) * sp.log(base)
        if not base.has(S.eta) and S.sign_in_unit_interval(sp.log(base)) == -1:
            # a factor held fixed in (0, 1) (beta1 with role fixed_decay): beta^k -> 0 after O(1) steps
            log_rate = -sp.oo if sp.limit(p.exp.subs(S.k, k_of_t), S.eta, 0) == sp.oo else sp.limit(log_power, S.eta, 0)
        else:
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
            raise UnsupportedUpdateError(
                f"{where}: the power {p} has no limit in (0, 1] as eta -> 0 (k log base -> {log_rate})"
            )
    out = expr.xreplace(replace_)
    if out.has(S.k):
        if exact:
            raise UnsupportedUpdateError(
                f"{where}: the step count k appears outside a power beta**k in {out}; the order-2 SDE supports "
                "only bias corrections of the form beta**k"
            )
        found = sorted({p for p in out.atoms(sp.Pow) if p.has(S.k)} or {S.k}, key=sp.default_sort_key)
        for c in found:  # a step-count coefficient such as 1/(k + 1) = eta^dt/(t + eta^dt): a function of t
            power = sp.Integer(0)
            try:
                power = c.xreplace({S.k: k_of_t}).xreplace(hyper_subs).leadterm(S.eta)[1]
            except (ValueError, NotImplementedError, TypeError):
                pass
            if not power.is_integer:
                raise UnsupportedUpdateError(
                    f"{where}: the step count k appears outside a power beta**k in {c}, which becomes "
                    f"{c.xreplace({S.k: k_of_t.xreplace(to_user)})} in t: a fractional power of eta, which the "
                    "expansion does not support (coefficients such as 1/(k + 1) = eta/(t + eta) are)"
                )
        if counts is not None:
            counts += found
        out = out.xreplace({S.k: k_of_t})
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
    exponents, user_exponents = _exponents(spec, regime, step.new)
    state_subs = {}
    for name, sym in zip(spec.state_names, spec.state_symbols, strict=False):
        r = exponents[name]
        scaled = _state_symbol(spec, name, r)
        state_subs[sym] = scaled / eta**r
        if r:
            to_user[scaled] = sym * eta ** (r - user_exponents.get(name, 0))
    grads = {
        S.grad_draw(i): S.g + sigma0 * S.law_draw(i) / eta**regime.noise
        for i in sorted({S.draw_index(s, "grad") for e in step.new.values() for s in e.free_symbols} - {None})
    }
    subs = {**hyper_subs, S.grad: S.g + sigma0 * S.zeta / eta**regime.noise, **grads, **state_subs}
    local = {*state_subs.values(), S.g}

    def regime_units(expr: sp.Expr) -> sp.Expr:
        expr = expr.xreplace(subs)
        return linear_hvp(expr, {*local, *S.draws_in(expr)}) if expr.has(hvp) else expr

    gammas: dict[sp.Symbol, sp.Expr] = {}
    counts: list[sp.Expr] = []
    delta = {}
    for name, sym in zip(spec.state_names, spec.state_symbols, strict=False):
        new = _bias_powers(
            step.new[name], hyper_subs, t0, regime, gammas, to_user, _where(spec, regime, name), step.order >= 2, counts
        )
        delta[name] = sp.powsimp(eta ** exponents[name] * (regime_units(new) - sym.xreplace(subs)))
    held_next = {}
    for h, new in step.held.items():
        where = f"optimizer {spec.name!r}, same-step value of {h}"
        held_next[next_symbol(h)] = regime_units(
            _bias_powers(new, hyper_subs, t0, regime, gammas, to_user, where, step.order >= 2, counts)
        )
    units = Units(regime, exponents, to_user, gammas, user_exponents, step_counts=tuple(dict.fromkeys(counts)))
    return Substituted(spec, units, delta, held_next)


def eliminate_fast(sub: Substituted) -> Substituted:
    """Stage 2b: every fast state (a state contracted by a factor held fixed, :mod:`derive.fast`)
    eliminated by the change of variables u_s = s - c_s m of reference section 11; the result has
    the slow states only (``units.eliminated`` records each elimination)."""
    spec, regime = sub.spec, sub.units.regime
    symbols = {n: _state_symbol(spec, n, sub.units.exponents[n]) for n in sub.delta}
    delta, held = dict(sub.delta), dict(sub.held_next)
    done: list[Elimination] = []
    while True:
        fast = [
            (n, a0)
            for n in delta
            if n != "x"
            and (a0 := contraction(delta[n], symbols[n], _coefficients, _where(spec, regime, n))) is not None
        ]
        if not fast:
            break
        name, a0 = fast[0]
        try:
            for other, _ in fast:
                check_linear(delta, symbols, other)
            delta, record = eliminate(
                delta, symbols, name, a0, _coefficients, regime.dt, lambda s: _where(spec, regime, s)
            )
        except NonlinearFastError as exc:
            raise UnsupportedUpdateError(_nonlinear_fast_message(spec, regime, exc)) from None
        held = {k: v.xreplace({symbols[name]: 0}) for k, v in held.items()}
        done.append(record)
    if not done:
        return sub
    return replace(sub, delta=delta, held_next=held, units=replace(sub.units, eliminated=tuple(done)))


def _nonlinear_fast_message(spec: Optimizer, regime: Regime, exc: NonlinearFastError) -> str:
    """One line naming the construct of the update rule that applies a nonlinear function to a fast state."""
    construct = _user_construct(spec, exc.fast) or str(exc.atom)
    fixed = [n for n, r in spec.hyper.items() if r == "fixed_decay"]
    return (
        f"optimizer {spec.name!r} ({regime.name} regime): {construct} is a nonlinear function of the fast state "
        f"{exc.fast} ({exc.fast} is contracted by a factor held fixed"
        + (f", {' or '.join(fixed)} with role fixed_decay" if fixed else "")
        + f", so it relaxes in O(1) steps); its SDE would need the summed autocorrelation of {construct} along the "
        f"path of {exc.fast}, which has no closed form, so it is not supported (with a factor 1 - eta*rho, role "
        f"'decay', {exc.fast} is slow and the SDE keeps it as a state)"
    )


def _user_construct(spec: Optimizer, name: str) -> str | None:
    """The first function application of the update rule, as written, whose argument depends on
    state ``name`` (directly or through temporaries)."""
    sym = dict(zip(spec.state_names, spec.state_symbols, strict=True))[name]
    depends = {sym}
    for target, expr in spec.parsed():
        found = [
            node
            for node in sp.preorder_traversal(expr)
            if (isinstance(node, sp.Function) or (node.is_Pow and not (node.exp.is_Integer and node.exp > 0)))
            and node.free_symbols & depends
            and not isinstance(node, (hvp, grad_at))
        ]
        if found:
            return str(min(found, key=sp.count_ops))  # the innermost: sqrt(v), not 1/(eps + sqrt(v))
        if expr.free_symbols & depends:
            depends.add(sp.Symbol(target, real=True))
    return None


def isolate_signs(sub: Substituted) -> Isolated:
    """Stage 3: every sign, Abs, Min, Max and Heaviside of the noise in Delta (and in the held
    same-step values) rewritten into indicators H = 1[draw > threshold], one per distinct
    (draw, threshold) (see :mod:`derive.expectation`)."""
    table: dict[sp.Symbol, Indicator] = {}
    regime = sub.units.regime
    variables = (
        S.g,
        *sub.spec.state_symbols,
        *[s for s in sub.units.to_user if s.name.endswith("_0") and s.name[:-2] in sub.spec.state_names],
    )
    delta = {name: isolate(d, table, _where(sub.spec, regime, name), variables) for name, d in sub.delta.items()}
    held = {
        sym: isolate(v, table, f"optimizer {sub.spec.name!r}, same-step value of {sym}", variables)
        for sym, v in sub.held_next.items()
    }
    return Isolated(sub.spec, sub.units, delta, table, held)


def _laurent(expr: sp.Expr, order: int) -> dict[int, sp.Expr] | None:
    """The coefficients of ``expr`` if it is a Laurent polynomial in eta (function applications
    free of eta held opaque), through eta**order; None otherwise."""
    opaque = Opaque(keep=lambda f: not f.has(S.eta))
    hidden = opaque.hide(expr)
    for node in sp.preorder_traversal(hidden):
        if node.has(S.eta) and (
            isinstance(node, sp.Function)
            or (node.is_Pow and node.base != S.eta and not (node.exp.is_Integer and node.exp > 0))
        ):
            return None  # eta in a denominator or under a function: not a Laurent polynomial
    out: dict[int, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(hidden)):
        coeff, power = term.as_independent(S.eta, as_Add=False)
        base, exponent = power.as_base_exp() if power != 1 else (S.eta, sp.Integer(0))
        if base != S.eta or not exponent.is_Integer:
            return None
        if exponent <= order:
            out[int(exponent)] = out.get(int(exponent), 0) + opaque.show(coeff)
    return {n: c for n, c in out.items() if c != 0}


def _coefficients(expr: sp.Expr, order: int, where: str) -> dict[int, sp.Expr]:
    """Taylor coefficients of expr in eta up to eta**order (negative powers kept)."""
    if not expr.has(S.eta):
        return {0: expr} if expr != 0 else {}
    fast = _laurent(expr, order)
    if fast is not None:
        return fast
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


def _taylor(expr: sp.Expr, order: int, where: str) -> dict[int, sp.Expr]:
    """Taylor coefficients of ``expr`` in eta through eta**order by derivatives at eta = 0 (several
    times faster than the series of the nested square roots a change of variables leaves); the
    series of :func:`_coefficients` where a derivative is not finite at 0 (a Laurent term)."""
    if not expr.has(S.eta):
        return {0: expr} if expr != 0 else {}
    low = leading_order(expr)  # expr = eta^low * f(eta), f(0) finite: fewer derivatives
    if low is None:
        return {}
    low = int(low) if low.is_integer and low > 0 else 0
    out, f = {}, sp.powsimp(sp.expand_power_base(expr / S.eta**low, force=False))
    if f.subs(S.eta, 0).has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        f = sp.together(f)  # eps_0/eta + sqrt(v_0/eta**2) in one fraction: finite at eta = 0
    for n in range(order + 1 - low):
        value = f.subs(S.eta, 0)
        if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            return _coefficients(expr, order, where)
        if value != 0:
            out[n + low] = sp.expand(value / sp.factorial(n))
        f = sp.diff(f, S.eta)
    return out


def expand(iso: Isolated, one_fraction: bool = True) -> Expansion:
    """Stage 4: each Delta as its Taylor coefficients in eta through eta^(dt + 1) (``one_fraction``:
    Delta put over one denominator first, faster for the order-1 rules, slower for order 2's)."""
    order = iso.units.regime.dt + 1
    shifted = {name for record in iso.units.eliminated for name in record.shifts}
    if iso.units.regime.accumulators:  # on an accumulator's clock (a new path): Taylor coefficients, faster
        series = {
            name: _taylor(sp.together(d), order, _where(iso.spec, iso.units.regime, name))
            for name, d in iso.delta.items()
        }
        return Expansion(iso.spec, iso.units, _within_radius(series, iso), iso.indicators, iso.held_next)
    series = {
        name: _coefficients(sp.together(d) if one_fraction else d, order, _where(iso.spec, iso.units.regime, name))
        for name, d in iso.delta.items()
        if name not in shifted
    }
    for name in shifted:  # u = s - c m: term by term (one fraction would multiply the denominators), then
        where = _where(iso.spec, iso.units.regime, name)  # the terms that cancel (c R against the rule's) cancel
        total: dict[int, sp.Expr] = {}
        for term in sp.Add.make_args(iso.delta[name]):
            for n, c in _taylor(term, order, where).items():
                total[n] = total.get(n, 0) + c
        series[name] = {
            n: (_canonical(c) if n <= iso.units.regime.dt and not c.has(*iso.indicators) else c)
            for n, c in total.items()
        }
    series = {name: series[name] for name in iso.delta}
    return Expansion(iso.spec, iso.units, _within_radius(series, iso), iso.indicators, iso.held_next)


def _within_radius(series: dict[str, dict[int, sp.Expr]], iso: Isolated) -> dict[str, dict[int, sp.Expr]]:
    """The coefficients without their terms of order dt + 1 or more once each ``radius``
    hyperparameter counts as r0*eta^(dt/2) (r**2 eta: nested gradients at nearby points); the
    others, as r*eta, are kept with r as written (section 12: r H sigma stays in the diffusion).
    Identity for an optimizer without a radius."""
    radii = [iso.spec.hyper_symbols()[n] for n in iso.spec.hypers_with_role("radius")]
    if not radii:
        return series
    dt = iso.units.regime.dt
    out = {}
    for name, coefficients in series.items():
        out[name] = {}
        for n, c in coefficients.items():
            terms = sp.Add.make_args(expand_outside(c))
            power = [sum(t.as_powers_dict().get(r, 0) for r in radii) for t in terms]
            kept = [t for t, k in zip(terms, power, strict=True) if n + sp.Rational(dt, 2) * k < dt + 1]
            if kept:
                out[name][n] = sp.Add(*kept)
    return out


@cache
def expansion(spec: Optimizer, regime: Regime, hold: frozenset[str] = frozenset(), order: int = 1) -> Expansion:
    """Stages 1-4 (law-independent), cached per optimizer, regime, set of held states and order."""
    step = at_points(one_step(Update(spec, regime, hold, order)))
    return expand(isolate_signs(eliminate_fast(substitute(step))), one_fraction=order == 1)


# ---------------------------------------------------------------------------------------------
# Stages 5-7: per law and form
# ---------------------------------------------------------------------------------------------
def _moment_value(
    sym: sp.Symbol, law: NoiseLaw, what: str, sources: Mapping[int, sp.Expr]
) -> tuple[sp.Expr, str | None]:
    """The law's value of a moment placeholder; InfiniteMomentError naming the term if infinite."""
    n = moment_order(sym)
    if n:
        value, condition = law.moment(n)
        if value == sp.oo:
            piece = f" (for the term {sources[n]})" if n in sources else ""
            raise InfiniteMomentError(
                f"{what} needs E[zeta^{n}]{piece}, which is infinite under the {law.label} law; "
                f"use a law with a finite moment of order {n}"
                + (" or form='published', which drops the second-moment noise" if n >= 4 and not piece else "")
            )
        return value, condition
    n = abs_moment_order(sym)
    value, condition = law.abs_moment(n)
    if value == sp.oo:
        raise InfiniteMomentError(
            f"{what} needs E[|zeta|^{n}] (for the term {sources.get(n, '?')}, a piece unbounded in the noise), which is "
            f"infinite under the {law.label} law; use a law with a finite moment of order {n}"
        )
    return value, condition


def _eta_limit(u: sp.Expr) -> sp.Expr | None:
    """lim_{eta -> 0} u (None if undecided); a Max or Min of thresholds by the limits of its arguments."""
    if isinstance(u, (sp.Max, sp.Min)):
        limits = [_eta_limit(a) for a in u.args]
        return None if any(v is None for v in limits) else u.func(*limits)
    try:
        coeff, power = u.leadterm(S.eta)
    except (ValueError, NotImplementedError, TypeError):
        return None
    if power > 0:
        return sp.Integer(0)
    return coeff if power == 0 else sp.sign(coeff) * sp.oo


def _pull_eta(u: sp.Expr) -> sp.Expr:
    """Max(eta^p a_1, eta^p a_2, ...) = eta^p Max(a_1, ...) (eta > 0); other arguments unchanged."""
    if not isinstance(u, (sp.Max, sp.Min)):
        return u
    parts = [a.as_independent(S.eta, as_Add=False) for a in u.args]
    powers = {p for _, p in parts}
    return powers.pop() * u.func(*[c for c, _ in parts]) if len(powers) == 1 else u


#: arguments u of the law's functions (thresholds free of eta), each written as one symbol while the
#: SDE is averaged and simplified (a rational function of u is then small), put back by explicit()
_ARGUMENTS: dict[sp.Expr, sp.Symbol] = {}


def argument(u: sp.Expr) -> sp.Symbol:
    """The symbol standing for the argument u of the law's functions (see :func:`explicit`)."""
    if u not in _ARGUMENTS:
        _ARGUMENTS[u] = sp.Symbol(f"_arg{len(_ARGUMENTS)}", real=True)
    return _ARGUMENTS[u]


def explicit(expr: sp.Expr) -> sp.Expr:
    """``expr`` with the argument symbols of :func:`argument` written out."""
    symbols = {v: u for u, v in _ARGUMENTS.items() if v in expr.free_symbols}
    return expr.xreplace(symbols) if symbols else expr


def _partial_value(call: sp.Expr, law: NoiseLaw, exp: Expansion, what: str, order: int | None = None) -> sp.Expr:
    """K_n(u) of the law; for u depending on eta, its expansion through eta^order (default: the
    expansion's order + 1)."""
    n, (u,) = partial_order(call), call.args
    order = exp.order + 1 if order is None else order
    if not u.has(S.eta):
        return law.partial(n, argument(u))
    u0 = _eta_limit(u)
    if u0 == 0:
        u = _pull_eta(u)
        if not isinstance(u, (sp.Max, sp.Min)):
            return law.partial_series(n, u, S.eta, order)
    elif u0 is not None and u0.is_finite and not isinstance(u, (sp.Max, sp.Min)):
        return law.partial_taylor(n, u, u0, order)
    raise UnsupportedUpdateError(
        f"{what}: the partial moment K_{n}({u}) of the law has no expansion in eta "
        f"(its argument tends to {u0 if u0 is not None else 'an undecided limit'} as eta -> 0)"
    )


def _stable_signs(expr: sp.Expr, law: NoiseLaw) -> sp.Expr:
    """Write K_0(y) = s(y)/2 = sign(y)(1 - T(y))/2 through the law's tail T = 1 - |s| where the law
    offers one (Student-t, real nu), reducing sign(y)^2 to 1: then 1 - s^2 = T(2 - T) carries no
    cancellation (at y = 0, T = 1 makes every such term vanish either way)."""
    calls = [c for c in expr.atoms(sp.Function) if partial_order(c) == 0 and not c.args[0].has(S.eta)]
    tails, replace_ = {}, {}
    for call in calls:
        y = argument(call.args[0])
        tail = law.sign_tail(y)
        if tail is None:
            continue
        sgn, tau = sp.Dummy("sgn"), sp.Dummy("tail")
        replace_[call] = sgn * (1 - tau) / 2
        tails[sgn], tails[tau] = sp.sign(y), tail
    if not replace_:
        return expr
    expr = expand_outside(expr.xreplace(replace_))
    signs = {d for d, v in tails.items() if isinstance(v, sp.sign)}
    expr = expr.replace(
        lambda e: e.is_Pow and e.base in signs and e.exp.is_Integer, lambda e: e.base ** (int(e.exp) % 2)
    )
    return expr.xreplace(tails)


def _fill_law(
    expr: sp.Expr,
    law: NoiseLaw,
    exp: Expansion,
    what: str,
    conditions: set[str],
    sources: Mapping[int, sp.Expr] | None = None,
    order: int | None = None,
) -> sp.Expr:
    """Put the law's moments, absolute moments and partial moments K_n(u) into an averaged
    expression. A moment whose coefficient cancels (pieces on finite intervals) is not needed."""
    sources = sources or {}
    needed = {sym for sym in expr.free_symbols if moment_order(sym) or abs_moment_order(sym)}
    if needed:
        expanded = expand_outside(expr)
        if any(not expanded.has(sym) for sym in needed):
            expr, needed = expanded, {sym for sym in needed if expanded.has(sym)}
    replace_ = {}
    for sym in sorted(needed, key=lambda x: x.name):
        replace_[sym], condition = _moment_value(sym, law, what, sources)
        if condition:
            conditions.add(condition)
    expr = _stable_signs(expr.xreplace(replace_), law)
    calls = [f for f in expr.atoms(sp.Function) if partial_order(f) is not None]
    if calls:
        expr = expr.xreplace({call: _partial_value(call, law, exp, what, order) for call in calls})
    return expr


def _mean_series(
    coeffs: Mapping[int, sp.Expr], exp: Expansion, law: NoiseLaw, what: str, conditions: set[str], order: int = 1
) -> dict[int, sp.Expr]:
    """E[Delta] by order in eta, through order dt + order - 1 (higher orders only feed higher orders).

    Expectations bring in eta only through s(y) with an eta-dependent y; only then is the
    mean re-expanded."""
    means = {}
    for n, c in coeffs.items():
        if n <= exp.regime.dt + order - 1:
            sources: dict[int, sp.Expr] = {}
            means[n] = _fill_law(expect(c, exp.indicators, what, sources), law, exp, what, conditions, sources)
    if not any(m.has(S.eta) for m in means.values()):
        return {n: m for n, m in means.items() if m != 0}
    return _coefficients(sum((S.eta**n * m for n, m in means.items()), sp.Integer(0)), exp.order, what)


def _random_part(c: sp.Expr, exp: Expansion) -> sp.Expr:
    """c without its terms that are free of the noise and not plain numbers: those do not change a
    covariance and would only be cancelled again (numbers are kept: sign(...) = 2H - 1 keeps the
    compact form 1 - s^2 of its variance)."""
    terms = sp.Add.make_args(expand_outside(c, keep=lambda f: not is_random(f, exp.indicators)))
    return sp.Add(*[t for t in terms if is_random(t, exp.indicators) or t.is_number])


def _covariance_series(
    exp: Expansion, law: NoiseLaw, orders: range, conditions: set[str], dropped: frozenset[str]
) -> dict[int, sp.ImmutableMatrix]:
    """Cov[Delta] by power of eta, for the powers in ``orders`` (regime units); rows and columns
    of ``dropped`` are zero. Pairs of coefficients (n, m) with n + m in ``orders`` are averaged;
    where a threshold of an indicator depends on eta the result is re-expanded (expectations only
    raise the power of eta: a piece confined to an interval of width O(eta) has a mean of that size)."""
    random = {
        n: {o: _random_part(c, exp) for o, c in exp.series[n].items() if is_random(c, exp.indicators)}
        for n in exp.states
        if n not in dropped
    }
    size = len(exp.states)
    out = {o: sp.zeros(size, size) for o in orders}
    for i, a in enumerate(exp.states):
        for j, b in enumerate(exp.states[: i + 1]):
            if a in dropped or b in dropped:
                continue
            what = f"covariance of ({a}, {b}) for {exp.spec.name} under {law.label}"
            total, sources = sp.Integer(0), {}
            for n, cn in random[a].items():
                for m, cm in random[b].items():
                    if n + m not in orders:
                        continue
                    total += S.eta ** (n + m - orders.start) * (
                        expect(cn * cm, exp.indicators, what, sources)
                        - expect(cn, exp.indicators, what, sources) * expect(cm, exp.indicators, what, sources)
                    )
            total = _fill_law(total, law, exp, what, conditions, sources, order=len(orders) - 1)
            series = _coefficients(total, len(orders) - 1, what) if total.has(S.eta) else {0: total}
            for o, c in series.items():
                if o + orders.start in out:
                    out[o + orders.start][i, j] = out[o + orders.start][j, i] = c
    return {o: sp.ImmutableMatrix(m) for o, m in out.items()}


def _lowest_random_order(exp: Expansion, dropped: frozenset[str]) -> int | None:
    """Twice the lowest power of eta at which some Delta (not dropped) depends on the noise."""
    orders = [
        min(o for o, c in exp.series[n].items() if is_random(c, exp.indicators))
        for n in exp.states
        if n not in dropped and any(is_random(c, exp.indicators) for c in exp.series[n].values())
    ]
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
        held[sym] = sp.expand(_fill_law(expect(value, exp.indicators, what), law, exp, what, conditions))
    cov, lead, hessian = None, None, None
    if job.covariance and not _diverges(mean, exp.regime.dt):  # a divergent drift is reported first (leading)
        plain, terms = _without_hessian_noise(exp)
        cov, lead = _leading_covariance(plain, law, conditions, job.dropped)
        if terms and cov is not None:
            hessian = _hessian_part(plain, terms, law, conditions, job.dropped, lead)
    return Averaged(exp, law, mean, cov, lead, frozenset(conditions), held, hessian)


def _without_hessian_noise(exp: Expansion) -> tuple[Expansion, dict[str, dict[int, sp.Expr]]]:
    """The expansion without its terms c hvp(u) with u random (the Hessian times the noise), and
    those terms by state and power of eta (empty for every optimizer without a gradient at a nearby
    random point)."""
    terms: dict[str, dict[int, sp.Expr]] = {}
    series = {}
    for name, coefficients in exp.series.items():
        series[name] = {}
        for n, c in coefficients.items():
            if random_hvps(c):
                noisy = sp.Add(*[t for t in sp.Add.make_args(expand_outside(c)) if random_hvps(t)])
                terms.setdefault(name, {})[n] = noisy
                c = expand_outside(c) - noisy
            series[name][n] = c
    return (replace(exp, series=series) if terms else exp), terms


def _hessian_part(
    plain: Expansion,
    terms: Mapping[str, Mapping[int, sp.Expr]],
    law: NoiseLaw,
    conditions: set[str],
    dropped: frozenset[str],
    lead: int,
) -> HessianPart | None:
    """The Hessian noise at the leading random order (None when it is of higher order: beyond the
    SDE, dropped like any higher-order noise), with the covariance augmented by its draws."""
    low = min(n for series in terms.values() for n in series)
    where = f"optimizer {plain.spec.name!r}: the noise through the Hessian"
    if 2 * low > lead:
        return None
    if 2 * low < lead:
        raise UnsupportedUpdateError(
            f"{where} is of order eta^{low}, below the rest of the noise (eta^{lead / 2}); not supported"
        )
    kept = {name: series.get(low, sp.Integer(0)) for name, series in terms.items()}
    draws = sorted(
        {d for e in kept.values() for a in random_hvps(e) for d in S.draws_in(a.args[0])}, key=lambda d: d.name
    )
    for name, e in kept.items():
        for t in sp.Add.make_args(e):
            (atom,) = random_hvps(t) or (None,)
            u = atom.args[0] if atom is not None else t
            if (
                atom is None
                or is_random(t / atom, plain.indicators)
                or any(sp.diff(u, d, 2) != 0 for d in draws)
                or u.has(*plain.indicators)
            ):
                raise UnsupportedUpdateError(
                    f"{where}, in the update of {name}, is {t}; only a coefficient free of the noise times H applied "
                    "to a vector linear in the noise draws is supported"
                )
    if any(name in dropped for name in kept):
        kept = {name: e for name, e in kept.items() if name not in dropped}
    series = {**plain.series, **{f"_{d.name}": {low: d} for d in draws}}
    augmented = _covariance_series(replace(plain, series=series), law, range(lead, lead + 1), conditions, dropped)
    return HessianPart(kept, tuple(draws), augmented[lead])


def _leading_covariance(
    exp: Expansion, law: NoiseLaw, conditions: set[str], dropped: frozenset[str]
) -> tuple[sp.ImmutableMatrix | None, int]:
    """Cov[Delta] at its lowest non-zero power eta^lead, and lead (cov None when lead < dt).

    Without eta in the indicators' thresholds the lowest power is twice the lowest power of eta at
    which Delta is random; otherwise the powers up to max(that, dt) + 1 are averaged and the first
    non-zero one is kept."""
    dt, size = exp.regime.dt, len(exp.states)
    syntactic = _lowest_random_order(exp, dropped)
    if syntactic is None:  # no noise at all
        return sp.ImmutableMatrix(sp.zeros(size, size)), 0
    if not any(ind.threshold.has(S.eta) for ind in exp.indicators.values()):
        if syntactic < dt:
            return None, syntactic
        return _covariance_series(exp, law, range(syntactic, syntactic + 1), conditions, dropped)[syntactic], syntactic
    for top in (max(syntactic, dt), max(syntactic, dt) + 1):
        series = _covariance_series(exp, law, range(syntactic, top + 1), conditions, dropped)
        for order, matrix in sorted(series.items()):
            if any(sp.simplify(e) != 0 for e in matrix):
                return (matrix if order >= dt else None), order
    raise UnsupportedUpdateError(
        f"optimizer {exp.spec.name!r}: Cov[Delta] vanishes through order eta^{max(syntactic, dt) + 1} "
        f"under the {law.label} law; its leading order is not resolved"
    )


def leading(avg: Averaged) -> Leading:
    """Stage 6: drift = [eta^dt] E[Delta], after checking that no lower power survives;
    NoLimitError when E[Delta]/dt or Cov[Delta]/dt diverges as eta -> 0."""
    exp = avg.expansion
    dt = exp.regime.dt
    drift = {}
    for name in exp.states:
        mean = avg.mean[name]
        low = [n for n, c in mean.items() if n < dt and sp.simplify(c) != 0]
        if low:
            raise NoLimitError(
                f"optimizer {exp.spec.name!r} has no SDE limit in the {exp.regime.name} regime: "
                f"E[Delta {name}]/dt is of order eta^{min(low) - dt}, which diverges as eta -> 0"
            )
        drift[name] = mean.get(dt, sp.Integer(0))
    if avg.cov is None and avg.lead is not None:
        raise NoLimitError(
            f"optimizer {exp.spec.name!r} has no SDE limit in the {exp.regime.name} regime: "
            f"Cov[Delta]/dt is of order eta^{avg.lead - dt}"
        )
    return Leading(exp, drift, avg.cov, avg.lead, avg.conditions, avg.hessian)


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


#: Expressions with more operations than this, and more than two function applications held
#: opaque (or more than ten times as many operations), are only tidied (see _simplest).
_FACTOR_LIMIT = 60


def _too_long(expr: sp.Expr) -> bool:
    ops = sp.count_ops(expr)
    return ops > 10 * _FACTOR_LIMIT or (ops > _FACTOR_LIMIT and len(expr.atoms(sp.Dummy)) > 2)


@lru_cache(maxsize=4096)
def _simplest(expr: sp.Expr) -> sp.Expr:
    """The shortest of ``expr``, its tidy form, its expanded tidy form, its factored canonical form
    and its partial fractions in the parameter x (all exact)."""
    if expr.is_Atom:
        return expr
    if _too_long(expr):  # factoring a long expression in many function applications costs seconds
        return min([expr, sp.factor_terms(expr)], key=sp.count_ops)
    candidates = [_tidy(expr), expr, _tidy(sp.expand(expr)), _canonical(expr)]
    if expr.has(X):
        try:
            candidates.append(sp.apart(candidates[2], X))
        except (sp.PolynomialError, NotImplementedError):
            pass  # not rational in x (e.g. erf(x)): the other forms stand
    return min(candidates, key=sp.count_ops)


def _cholesky(
    cov: sp.Matrix, last: frozenset[int] = frozenset(), positive: Mapping[sp.Symbol, sp.Expr] | None = None
) -> sp.Matrix:
    """G with G G^T = cov for a symbolic positive semi-definite cov; zero rows and pivots dropped.

    Pivots whose variance involves no function application (a polynomial in the states, such as
    rho^2 sigma^2) come first, in state order: a variance built from a CDF, such as 1 - s(y)^2, can
    vanish in floating point far in a tail, and dividing another row by its root would turn 0/0
    into NaN in a simulator. Rows in ``last`` are pivoted after all others (the noise draws that a
    Hessian-noise term needs, which must not change the states' columns). ``positive`` maps a symbol
    to a positive expression for it (a fixed EMA factor beta = 1 - c, c > 0) used to take roots, so
    that sqrt((1 - beta)**2) is 1 - beta."""
    n = cov.shape[0]
    active = [i for i in range(n) if any(cov[i, j] != 0 for j in range(n))]
    active.sort(key=lambda i: (i in last, bool(cov[i, i].atoms(sp.Dummy)) or cov[i, i].has(sp.Function), i))
    columns: list[list[sp.Expr]] = []
    residual = sp.Matrix(cov)
    for p in active:
        pivot = _simplest(residual[p, p])
        if pivot == 0:
            continue
        root = _root(pivot, positive or {})
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


def _root(pivot: sp.Expr, positive: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr:
    """sqrt(pivot), with the symbols of ``positive`` written through their positive forms while the
    root is taken (and written back after)."""
    used = {s: v for s, v in positive.items() if pivot.has(s)}
    if not used:
        return sp.sqrt(sp.factor_terms(pivot))
    back = {}
    for sym, value in used.items():
        (c,) = value.free_symbols
        back[c] = sp.solve(sp.Eq(sym, value), c)[0]
    return sp.sqrt(sp.factor_terms(sp.factor(pivot.xreplace(used)))).xreplace(back)


def map_back(lead: Leading) -> UserForm:
    """Stage 7: drift and diffusion in the user's units, each entry in its simplest exact form.

    A state s = s_0 / eta^r and regime time t_regime = eta^(dt-1) t: the drift of s is
    eta^(dt-1) b_0 / eta^r, the covariance eta^(dt-1) eta^(lead-dt) Cov_0 / eta^(r_i + r_j)
    (the eta^(lead-dt) is the power kept in front of the noise); G is its Cholesky factor.
    Function applications are simplified as opaque symbols (see :mod:`derive.opaque`), and the
    arguments of the law's functions as single symbols (see :func:`argument`), written out last.
    """
    exp, units = lead.expansion, lead.expansion.units
    reg = units.regime
    back = dict(units.to_user)
    time_scale = S.eta ** (reg.dt - reg.clock)
    opaque = Opaque()
    variables = [
        S.g,
        *exp.spec.state_symbols,
        *[s for s in back if s.name.endswith("_0") and s.name[:-2] in exp.spec.state_names],
    ]

    def user(e: sp.Expr, factor: sp.Expr = sp.S.One) -> sp.Expr:
        """The simplest of e and e collected in g and the states (in regime units, where a fixed
        EMA factor's complement 1 - beta is still one positive symbol), in user units."""
        regime_units = Opaque()
        hidden = regime_units.hide(sp.powsimp(e, combine="exp"))
        forms = [hidden]
        if hidden.is_Add and not _too_long(hidden):
            forms.append(sp.collect(sp.expand(hidden), [v for v in variables if hidden.has(v)], func=sp.factor))
        return min(
            (_simplest(opaque.hide(regime_units.show(f).xreplace(back)) * factor) for f in forms), key=sp.count_ops
        )

    def written_out(e: sp.Expr) -> sp.Expr:  # function applications back, then the law's arguments
        e = opaque.show(e)
        return e.xreplace({y: explicit(y).xreplace(back) for y in e.free_symbols if explicit(y) is not y})

    relative = {n: units.exponents[n] - units.user_exponents.get(n, 0) for n in exp.states}
    drift = tuple(written_out(user(lead.drift[n], time_scale / S.eta ** relative[n])) for n in exp.states)
    size = len(exp.states)
    if lead.cov is None:
        return UserForm(drift, sp.ImmutableMatrix(sp.zeros(size, 0)))
    scale = [S.eta ** -relative[n] for n in exp.states]
    user_cov = sp.Matrix(
        size, size, lambda i, j: user(lead.cov[i, j], scale[i] * scale[j] * S.eta ** (lead.lead - reg.dt) * time_scale)
    )
    positive = {v: c for c, v in back.items() if c.name.startswith("one_minus_") and isinstance(v, sp.Add)}
    positive = {next(iter(v.free_symbols)): 1 - c for v, c in positive.items()}
    if lead.hessian is None:
        return UserForm(drift, sp.ImmutableMatrix(_cholesky(user_cov, positive=positive).applyfunc(written_out)))
    part, n = lead.hessian, size
    rows = len(part.draws)
    factor = S.eta ** (lead.lead - reg.dt) * time_scale
    augmented = sp.Matrix(
        n + rows,
        n + rows,
        lambda i, j: (
            user_cov[i, j]
            if i < n and j < n
            else user(part.augmented[i, j], (scale[i] if i < n else 1) * (scale[j] if j < n else 1) * factor)
        ),
    )
    G = _cholesky(augmented, last=frozenset(range(n, n + rows)), positive=positive).applyfunc(written_out)
    increments = [brownian(c + 1) for c in range(G.shape[1])]
    loading = {
        d: sum((G[n + k, c] * increments[c] for c in range(G.shape[1])), sp.Integer(0))
        for k, d in enumerate(part.draws)
    }
    coefficients, vector = _hessian_noise(exp.states, part.terms, exp.spec.name)
    vector = sp.factor_terms(vector.xreplace(back).xreplace(loading))
    local = {*exp.spec.state_symbols, S.g, *increments}
    kappa, vector = vector.as_independent(*local, as_Add=False) if vector.is_Mul else (sp.Integer(1), vector)
    hessian = HessianNoise(
        tuple(
            written_out(_simplest(opaque.hide(c.xreplace(back) * scale[i] * kappa))) for i, c in enumerate(coefficients)
        ),
        vector,
    )
    return UserForm(drift, sp.ImmutableMatrix(G[:n, :]), hessian)


def _hessian_noise(
    states: tuple[str, ...], terms: Mapping[str, sp.Expr], optimizer: str
) -> tuple[list[sp.Expr], sp.Expr]:
    """(c_s per state, u): each state's Hessian noise as c_s hvp(u) with one vector u for all
    states (one Hessian-vector product per step); refused when the states' terms need two."""
    atoms = sorted({a for e in terms.values() for a in random_hvps(e)}, key=sp.default_sort_key)
    rows = {n: [sp.expand(terms.get(n, sp.Integer(0))).coeff(a) for a in atoms] for n in states}
    reference = next(row for row in rows.values() if any(c != 0 for c in row))
    k0 = next(k for k, c in enumerate(reference) if c != 0)
    alpha = [sp.cancel(c / reference[k0]) for c in reference]
    coefficients = []
    for name in states:
        c = rows[name][k0]
        if any(sp.cancel(rows[name][k] - c * alpha[k]) != 0 for k in range(len(atoms))):
            raise UnsupportedUpdateError(
                f"optimizer {optimizer!r}: the noise through the Hessian needs two different Hessian-vector products "
                "of the noise per step (the states apply H to different combinations of the draws); not supported"
            )
        coefficients.append(c)
    vector = sp.Add(*[a * atom.args[0] for a, atom in zip(alpha, atoms, strict=True)])
    return coefficients, vector


#: clock exponents tried above the regime's dt when a state accumulates (reference section 12)
_CLOCKS = 6


@lru_cache(maxsize=64)
def clocked(spec: Optimizer, regime: Regime) -> Regime:
    """``regime`` on the clock the update rule needs (see :mod:`derive.regimes`): itself unless a
    state accumulates without decay, i.e. s' - s is free of s and of an order in eta below dt (AdaGrad's
    s = s + grad**2). Then dt = eta^a with s = s_0/eta^b, b = a - (the order of E[s' - s]), eps =
    eps_0/eta^(b/2), for the smallest a > dt at which the parameter's mean increment is of order
    eta^a exactly (law-independent: the law's moments as symbols); user units are those of the paper
    regime's clock."""
    new = spec.step_map()
    size = _sizer(spec, regime, new)
    symbols = dict(zip(spec.state_names, spec.state_symbols, strict=True))
    accumulating = []
    for name in spec.state_names[1:]:
        increment = new[name] - symbols[name]
        if increment.has(grad_at) or sp.diff(increment, symbols[name]) != 0 or increment == 0:
            continue
        order = size(increment)
        if order is not None and order < regime.dt:
            accumulating.append(name)
    if not accumulating:
        return regime
    user = clocked(spec, PAPER) if regime != PAPER else None
    flat = replace(regime, accumulators=tuple((n, 0, 0) for n in accumulating))
    iso = isolate_signs(substitute(at_points(one_step(Update(spec, flat)))))  # the accumulators' rows only:
    rows = {n: _coefficients(sp.together(iso.delta[n]), flat.dt + 1, _where(spec, flat, n)) for n in accumulating}
    exp0 = Expansion(spec, iso.units, rows, iso.indicators)
    mean_order = {n: _mean_order(exp0, n) for n in accumulating}
    for a in range(regime.dt + 1, regime.dt + _CLOCKS + 1):
        b = {n: a - mean_order[n] for n in accumulating}
        if any(v % 2 for v in b.values()):
            continue
        accumulators = tuple(
            (n, b[n], (user.accumulator(n) or (b[n], b[n]))[1] if user else b[n]) for n in accumulating
        )
        candidate = replace(
            regime, dt=a, eps=max(b.values()) // 2, accumulators=accumulators, clock=user.clock if user else a
        )
        try:
            exp = expansion(spec, candidate)
        except UnsupportedUpdateError:
            continue
        if _mean_order(exp, "x") == a:
            return candidate
    raise NoLimitError(
        f"optimizer {spec.name!r} has no SDE limit in the {regime.name} regime: {', '.join(accumulating)} accumulates "
        f"without decay, and no clock t = k*eta**a (a = {regime.dt + 1} ... {regime.dt + _CLOCKS}) balances it with the "
        "parameter's increment"
    )


def _mean_order(exp: Expansion, name: str) -> int | None:
    """The lowest power of eta of E[Delta name] with the law's moments as symbols (None if it vanishes
    through the expansion's order)."""
    for n, c in sorted(exp.series[name].items()):
        mean = expect(c, exp.indicators, f"the mean increment of {name}")
        if mean != 0 and sp.expand(mean) != 0 and leading_order(mean) is not None:  # read at random points
            return n
    return None


@lru_cache(maxsize=256)
def _pipeline(
    spec: Optimizer, law: NoiseLaw, reg: Regime, hold: frozenset[str], dropped: frozenset[str]
) -> tuple[UserForm, Leading]:
    """Stages 1 to 7 for one optimizer, law, regime, held states and dropped rows (a published
    form that simplifies nothing shares the full form's result)."""
    exp = expansion(spec, reg)  # stages 1-4
    result = leading(average(Averaging(exp, law, dropped)))  # stages 5-6
    if hold:  # the x drift with the same-step momentum kept: x reads m_next = E[m']
        held = average(Averaging(expansion(spec, reg, hold), law, dropped, covariance=False))
        x_drift = leading(held).drift["x"].xreplace(held.held_next)
        result = replace(result, drift={**result.drift, "x": x_drift}, conditions=result.conditions | held.conditions)
    return map_back(result), result  # stage 7


def derive_sde(
    optimizer: str | Optimizer,
    noise: str | NoiseLaw = "gaussian",
    regime: str | Regime = "paper",
    form: str = "full",
    nu: object = None,
    order: int = 1,
) -> SDE:
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
    reg = clocked(spec, reg)
    exp = expansion(spec, reg)
    simplifications = reg.published if form == "published" else ()
    degrees = {n: spec.grad_degree(n) for n in exp.states}
    second_moment = frozenset(n for n in exp.states[1:] if (degrees[n] or 0) >= 2)
    momentum = frozenset(n for n in exp.states[1:] if degrees[n] == 1)
    read = frozenset(
        n for n in momentum if spec.step_map(frozenset({n}))["x"].has(next_symbol(n))
    )  # x reads the new value
    hold = read if SAME_STEP_MOMENTUM in simplifications else frozenset()
    applied = [
        s
        for s in simplifications
        if (s == DROP_SECOND_MOMENT_NOISE and second_moment) or (s == SAME_STEP_MOMENTUM and hold)
    ]
    dropped = second_moment if DROP_SECOND_MOMENT_NOISE in applied else frozenset()

    user, result = _pipeline(spec, law, reg, hold, dropped)

    provenance = [
        f"update rule of {spec.name}: " + "; ".join(f"{a} <- {b}" for a, b in spec.update),
        f"regime {reg.name}: {reg.reference}",
        f"noise {law.label}: "
        + (
            f"s(y) = 2F(y) - 1 = {law.s(sp.Symbol('y'))}; partial moments K_n(u) = integral_0^u z^n p(z) dz"
            if exp.indicators
            else "moments E[zeta^n] of the law (no piecewise function of the noise)"
        ),
        f"expanded in eta to order {exp.order}; drift = [eta^{reg.dt}] E[Delta], covariance at order eta^{result.lead} over dt",
    ]
    if exp.indicators:
        provenance.append(
            "piecewise functions of the noise through indicators: "
            + "; ".join(
                f"{h} = 1[{a.draw} > {a.threshold.xreplace(exp.units.to_user)}]" for h, a in exp.indicators.items()
            )
        )
    if applied:
        provenance.append("published simplifications: " + "; ".join(applied))
    elif form == "published":
        provenance.append("published form: no simplification applies to this optimizer in this regime")
    symbols = dict(zip(spec.state_names, spec.state_symbols, strict=True))
    sde = SDE(
        optimizer=spec.name,
        noise=law.label,
        regime=reg.name,
        form=form,
        state=tuple(symbols[n] for n in exp.states),
        drift=user.drift,
        diffusion=user.diffusion,
        time_functions=dict(sorted(exp.units.gammas.items(), key=lambda item: item[0].name)),
        initial={s.name: s.init for s in spec.state if s.name in exp.states},
        conditions=tuple(sorted(result.conditions)),
        provenance=tuple(provenance),
        same_step=tuple(sorted(hold)),
        hessian_noise=user.hessian,
    )
    return described(sde, spec, reg, exp.units.to_user, exp.units.eliminated, exp.units.step_counts)


def _derive_order2(spec: Optimizer, law: NoiseLaw, reg: Regime, form: str, order: int) -> SDE:
    """The weak order-2 SDE (:mod:`derive.order2`): the full order-1 SDE, E[Delta] one order
    further (bias powers kept to O(eta)), and the drift correction b1 from c0 and c1."""
    from . import order2

    order2.check_request(spec, law, reg, form, order)
    first = derive_sde(spec, law, reg, "full")
    beyond = [
        what
        for what, present in (
            ("a fast state eliminated", first.eliminated),
            ("noise through the Hessian", first.hessian_noise is not None),
            (f"the clock t = {clock_text(first.clock)}", not first.default_clock),
            ("a step-count coefficient", first.defined_for or first.start.reason),
            ("a gradient at another point", any(e.has(hvp) or e.has(gradf) for e in first.drift)),
        )
        if present
    ]
    if beyond:
        raise order2.NoOrder2Error(
            f"no order-2 SDE for {spec.name} under {law.label}: its order-1 SDE has {', '.join(beyond)}, which the "
            "order-2 expansion (reference section 8) does not cover; use order 1"
        )
    exp = expansion(spec, reg, order=2)
    averaged_with = order2.differentiable_law(spec, law, bool(exp.indicators))
    avg = average(Averaging(exp, averaged_with, covariance=False, order=2))
    c0 = {n: explicit(b) for n, b in leading(avg).drift.items()}  # the law's arguments written out: d/dg sees them
    c1 = {n: explicit(avg.mean[n].get(reg.dt + 1, sp.Integer(0))) for n in exp.states}
    # paper regime: the units map back only a fixed EMA factor's complement c = 1 - beta, after simplifying in c
    return order2.with_correction(
        first, spec, averaged_with, c0, c1, exp.units.gammas, avg.conditions, exp.units.to_user
    )
