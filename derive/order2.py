"""Order-2 SDEs: stochastic modified equations of weak order 2 (reference section 8).

Li, Tai, E (JMLR 2019): the chain S' = S + Delta is approximated to weak order 2 by

    dS = (b0 + eta b1) dt + sqrt(eta) G dW

when the first two one-step moments agree up to O(eta^3). In the paper regime (dt = eta) write
E[Delta | S] = eta c0 + eta^2 c1 + O(eta^3) and Cov[Delta | S] = eta^2 Sigma0 + O(eta^3). The
SDE's one-step mean is eta b + (eta^2/2)(d_t b + (b . grad_S) b) + O(eta^3), hence

    b0 = c0,    b1 = c1 - (1/2)(b0 . grad_S) b0 - (1/2) d_t b0,    G G^T = Sigma0,

G the full form's order-1 diffusion. Per coordinate i, b0_i depends on x_i explicitly (weight
decay), on g_i = d_i f(x) and on the auxiliary states of coordinate i, so with d g_i/d x_j = H_ij

    (b0 . grad_S) b0_i = (d b0_i/d g) (H b0_x)_i + (d b0_i/d x) b0_x,i + sum_aux (d b0_i/d s) b0_s,i:

one Hessian-vector product per step, printed ``hvp(EXPR)`` (:class:`hvp`): coordinate i of H times
the vector whose coordinates are EXPR, here EXPR = b0_x. d_t acts on the bias factors
gamma_j(t) = 1 - exp(-rho_j t) (d_t gamma_j = rho_j (1 - gamma_j)) and on explicit t. c1 is the
eta^2 coefficient of the engine's expansion of E[Delta], with the bias powers kept to O(eta):
(1 - eta rho)^(k+1) = exp(-rho t)(1 - eta rho - eta rho^2 t/2 + O(eta^2)), t = k eta the time at
which the step starts (:func:`derive.engine._bias_powers` with ``exact``).

The correction differentiates the drift, so the drift must be differentiable: an update with
sign(a + b zeta) needs a law whose s(y) = 2F(y) - 1 is smooth (s' = 2p with p even and smooth on
the real line: not Laplace, not uniform), and a drift containing sign, Abs, Min, Max, Heaviside or
Piecewise of the state or g (Signum's -sign(m)) is refused. Only the full form of the paper regime
is order 2: the published forms drop the second-moment noise, so their one-step second moments
differ at O(eta^2), and the noise-dominated regime (dt = eta^2) is not expanded this way.

:func:`derive.engine.derive_sde` with ``order=2`` runs the engine's stages and calls
:func:`check_request`, :func:`differentiable_law` and :func:`with_correction` from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import sympy as sp

from . import symbols as S
from .errors import DeriveError
from .noise import NoiseLaw
from .parsing import ExpressionError, parse_number
from .points import gradf, hvp
from .regimes import Regime
from .sde import SDE, brownian
from .spec import Optimizer

ORDERS = (1, 2)
#: Curvature of the diagonal quadratic f = lambda x^2/2 per coordinate (as derive.theory.quadratic).
CURVATURE = sp.Symbol("lambda", positive=True)
#: Functions whose presence in a drift (with a state, g or t inside) makes it non-differentiable.
NON_SMOOTH = (sp.sign, sp.Abs, sp.Heaviside, sp.Piecewise, sp.Min, sp.Max, sp.DiracDelta, sp.floor, sp.ceiling)
_FACTOR_TERMS = 8  # numerators with more terms are printed expanded (see _one_fraction)
_PRODUCT = sp.Symbol("hvp_b0x")  # stands for hvp(b0_x) while b1 is assembled


class NoOrder2Error(DeriveError, ValueError):
    """The combination has no order-2 SDE (published form, noise-dominated regime, a law whose
    s(y) is not smooth, a drift that is not differentiable)."""


def _refuse(spec: Optimizer, law: NoiseLaw, reason: str) -> NoOrder2Error:
    return NoOrder2Error(f"no order-2 SDE for {spec.name} under {law.label}: {reason}")


def check_request(spec: Optimizer, law: NoiseLaw, regime: Regime, form: str, order: int) -> None:
    """Refuse an order other than 1 or 2, a published form and a regime other than the paper's."""
    if order not in ORDERS:
        raise NoOrder2Error(f"order {order!r} is not supported; allowed: {', '.join(map(str, ORDERS))}")
    if form != "full":
        raise _refuse(
            spec,
            law,
            f"form {form!r}: no published form is order 2 (without the second-moment noise "
            "the one-step second moments differ at O(eta^2)); use form 'full'",
        )
    if regime.dt != 1:
        raise _refuse(
            spec,
            law,
            f"the {regime.name} regime (dt = eta^{regime.dt}): order 2 is derived in the "
            "paper regime (dt = eta) only; use regime 'paper'",
        )


def _smooth_density(law: NoiseLaw) -> sp.Lambda | None:
    """p(y) as one expression smooth on the whole real line, or None where the density is not:
    a bounded support (uniform), or not an even smooth function (Laplace's exp(-|y|)/2)."""
    if law.bound != sp.oo:
        return None
    w, y = sp.Symbol("w", positive=True), sp.Symbol("y", real=True)
    right = law.density(w).subs(w, y)  # the density's formula for y > 0, continued to every y
    if right.has(*NON_SMOOTH) or sp.simplify(right - right.subs(y, -y)) != 0:
        return None
    return sp.Lambda(y, right)


class SmoothLaw:
    """A law as :func:`derive.engine.average` uses it, with its partial moments K_n(u) = integral_0^u
    z^n p(z) dz (K_0 = s/2) kept as unevaluated smooth functions of u (d K_n/du = u^n p(u)), so the
    drift can be differentiated without the law's piecewise or sign(u) forms; everything else is the
    law's own. :func:`with_correction` evaluates K_n after differentiating (:meth:`restore`)."""

    def __init__(self, law: NoiseLaw, density: sp.Lambda):
        self.law, self._density, self._functions = law, density, {}

    def __getattr__(self, name: str):
        return getattr(self.law, name)

    def _function(self, n: int) -> type:
        if n not in self._functions:
            density = self._density

            def fdiff(self, argindex=1):
                u = self.args[0]
                return u**n * density(u)

            self._functions[n] = type(f"K{n}_smooth", (sp.Function,), {"nargs": 1, "fdiff": fdiff})
        return self._functions[n]

    def partial(self, n: int, u: sp.Expr) -> sp.Expr:
        return self._function(n)(u)  # the engine writes u's argument symbols out before d/dg

    def sign_tail(self, y: sp.Expr) -> None:
        return None  # K_0 stays one smooth function

    def restore(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with every K_n(u) evaluated by the law."""
        functions = {f: n for n, f in self._functions.items()}
        return expr.replace(lambda e: type(e) in functions, lambda e: self.law.partial(functions[type(e)], e.args[0]))


def differentiable_law(spec: Optimizer, law: NoiseLaw, piecewise: bool) -> NoiseLaw | SmoothLaw:
    """The law to average with: itself when the update has no piecewise function of the noise, else
    a :class:`SmoothLaw` (refused when the density is not smooth: the drift's derivative needs p')."""
    if not piecewise:
        return law
    density = _smooth_density(law)
    if density is None:
        y = sp.Symbol("y", real=True)
        raise _refuse(
            spec,
            law,
            f"the update takes a piecewise function (sign, clip, ...) of the noisy gradient and "
            f"s(y) = 2F(y) - 1 = {law.s(y)} is not smooth; the order-2 drift differentiates the "
            "law's partial moments (s' = 2p), so it needs a law with a smooth density "
            "(gaussian, student-t, cauchy)",
        )
    return SmoothLaw(law, density)


def _non_smooth_part(expr: sp.Expr, variables: set[sp.Symbol]) -> sp.Expr | None:
    for node in sp.preorder_traversal(expr):
        if isinstance(node, NON_SMOOTH) and node.free_symbols & variables:
            return node
    return None


def _time_rates(gammas: Mapping[sp.Symbol, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
    """d gamma/dt for each gamma = 1 - exp(L(t)), written in gamma: -L'(t) (1 - gamma)."""
    return {
        gamma: sp.diff(value, S.t).xreplace({1 - value: 1 - gamma, sp.expand(1 - value): 1 - gamma})
        for gamma, value in gammas.items()
    }


def _one_fraction(expr: sp.Expr) -> sp.Expr:
    """expr over one denominator, cancelled and factored (a long numerator only has its common
    factors pulled out), computed with every positive symbol s
    written as w**2 (so cancellation through sqrt(s) is exact). Each term is factored before the
    terms are put over one denominator: the engine's expanded denominators, such as
    4 eps**2 gamma2**(3/2) + 8 eps gamma2 sqrt(v) + 4 sqrt(gamma2) v, then share their factors and
    the common denominator stays small (40x faster than cancelling the plain sum for AdamW)."""
    roots = {sym: sp.Symbol(f"sqrt_{sym.name}", positive=True) for sym in expr.free_symbols if sym.is_positive}
    rational = expr.xreplace({sym: w**2 for sym, w in roots.items()})
    combined = sp.together(sp.Add(*[sp.factor(a) for a in sp.Add.make_args(rational)]))
    numerator, denominator = sp.fraction(sp.cancel(combined))
    small = len(sp.Add.make_args(numerator)) <= _FACTOR_TERMS  # factoring a long numerator is slow and rarely shorter
    result = (sp.factor(numerator) if small else sp.factor_terms(numerator)) / sp.factor(denominator)
    return result.xreplace({w: sp.sqrt(sym) for sym, w in roots.items()})


def simplest(expr: sp.Expr) -> sp.Expr:
    """The shortest (in operations) of ``expr``, its :func:`_one_fraction` form, and both with their
    products of exponentials combined into one (exp(a) exp(b) = exp(a + b))."""
    expr = sp.sympify(expr)
    if expr.is_Atom:
        return expr
    forms = [expr, _one_fraction(expr)]
    if expr.has(sp.exp):
        combined = [sp.powsimp(f, combine="exp") for f in forms]
        forms += [f.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.factor(e.args[0]))) for f in combined]
    return min(forms, key=sp.count_ops)


def correction(
    spec: Optimizer, c0: Mapping[str, sp.Expr], c1: Mapping[str, sp.Expr], gammas: Mapping[sp.Symbol, sp.Expr]
) -> dict[str, sp.Expr]:
    """b1 = c1 - (1/2)(b0 . grad_S) b0 - (1/2) d_t b0 per state, b0 = c0, with hvp(b0_x) written
    as the placeholder symbol ``hvp_b0x`` (so each b1 is affine in it)."""
    states = dict(zip(spec.state_names, spec.state_symbols, strict=True))
    rates = _time_rates(gammas)
    out = {}
    for name in spec.state_names:
        b = c0[name]
        transport = sp.diff(b, S.g) * _PRODUCT + sp.diff(b, states["x"]) * c0["x"]
        transport += sum((c0[aux] * sp.diff(b, sym) for aux, sym in states.items() if aux != "x"), sp.Integer(0))
        time = sp.diff(b, S.t) + sum((sp.diff(b, gamma) * rate for gamma, rate in rates.items()), sp.Integer(0))
        out[name] = c1[name] - transport / 2 - time / 2
    return out


def with_correction(
    first: SDE,
    spec: Optimizer,
    law: NoiseLaw | SmoothLaw,
    c0: Mapping[str, sp.Expr],
    c1: Mapping[str, sp.Expr],
    gammas: Mapping[sp.Symbol, sp.Expr],
    conditions: frozenset[str],
    to_user: Mapping[sp.Symbol, sp.Expr] | None = None,
) -> SDE:
    """The order-2 SDE: ``first`` (the full order-1 SDE) with its drift b0 replaced by b0 + eta b1.

    c0, c1 are the eta and eta^2 coefficients of E[Delta] averaged under ``law`` (from
    :func:`differentiable_law`) in the regime's symbols, written back with ``to_user`` after
    simplifying; each coefficient is printed in its :func:`simplest` form."""
    back = dict(to_user or {})
    variables = set(first.state) | {S.g, S.t}
    for name in spec.state_names:
        for what, value in (("drift", c0[name]), ("eta^2 coefficient of E[Delta]", c1[name])):
            bad = _non_smooth_part(value, variables)
            if bad is not None:
                raise NoOrder2Error(
                    f"no order-2 SDE for {spec.name} under {first.noise}: the {what} of {name}, "
                    f"{value}, is not differentiable (it contains {bad}); the order-2 drift "
                    "differentiates it"
                )
    raw = correction(spec, c0, c1, gammas)
    restore = law.restore if isinstance(law, SmoothLaw) else (lambda e: e)
    u = first.drift_of("x")
    b1, shown_c1 = [], []
    for name in spec.state_names:
        value = sp.expand(restore(raw[name]))
        factor = value.coeff(_PRODUCT)
        b1.append(
            (simplest(sp.expand(value - factor * _PRODUCT)) + simplest(factor) * _PRODUCT)
            .xreplace(back)
            .xreplace({_PRODUCT: hvp(u)})
        )
        shown_c1.append(simplest(restore(c1[name])).xreplace(back))
    drift = tuple(b + S.eta * b_1 for b, b_1 in zip(first.drift, b1, strict=True))
    provenance = (
        *first.provenance,
        "order 2 (Li, Tai, E): drift b0 + eta b1, b1 = c1 - (1/2)(b0 . grad_S) b0 - (1/2) d_t b0, with "
        "E[Delta] = eta c0 + eta^2 c1 (the expansion one order further; bias powers (1 - eta rho)^(k+1) kept to "
        "O(eta), t = k eta the start of the step); d g_i/d x_j = H_ij enters only through hvp(u) = H u; "
        "diffusion: the full form's order-1 diffusion",
        *(f"c1 of {n}: {c}" for n, c in zip(spec.state_names, shown_c1, strict=True)),
    )
    return replace(
        first,
        drift=drift,
        conditions=tuple(sorted(set(first.conditions) | set(conditions))),
        provenance=provenance,
        order=2,
        correction=tuple(b1),
    )


def parse_curvature(text: object) -> sp.Expr:
    """The curvature of the diagonal quadratic: a real number, or 'lambda' (:data:`CURVATURE`)."""
    if isinstance(text, str) and text.strip() == "lambda":
        return CURVATURE
    try:
        value = sp.nsimplify(parse_number(text, "curvature"), rational=True)
    except ExpressionError as exc:
        raise DeriveError(
            f"curvature must be a real number or 'lambda' (symbolic), got {text!r}: {exc.reason}"
        ) from None
    except (TypeError, ValueError):
        value = None
    if value is None or not value.is_number or not value.is_real or not value.is_finite:
        raise DeriveError(f"curvature must be a real number or 'lambda' (symbolic), got {text!r}")
    return value


def on_curvature(sde: SDE, lam: sp.Expr = CURVATURE) -> SDE:
    """``sde`` on the diagonal quadratic f = sum lam x_i^2/2: g = lam x, hvp(u) = lam u and
    gradf(P) = lam P; the noise through the Hessian, c hvp(sum_j a_j dW_j), joins the diffusion
    as c lam a_j in column j."""
    x = sde.state[0]

    def put(expr: sp.Expr) -> sp.Expr:
        expr = sp.sympify(expr).replace(lambda e: isinstance(e, hvp), lambda e: lam * e.args[0])
        expr = expr.replace(lambda e: isinstance(e, gradf), lambda e: lam * e.args[0])
        return sp.factor_terms(sp.expand(expr.xreplace({S.g: lam * x})))

    diffusion = sp.Matrix(sde.diffusion)
    if sde.hessian_noise is not None:
        noise = sde.hessian_noise
        for i, c in enumerate(noise.coefficients):
            for j in range(diffusion.shape[1]):
                diffusion[i, j] += c * lam * sp.diff(noise.vector, brownian(j + 1))
    note = f"on the diagonal quadratic f = {lam}*x**2/2 per coordinate: g = {lam}*x, hvp(u) = {lam}*u"
    return replace(
        sde,
        drift=tuple(put(b) for b in sde.drift),
        diffusion=sp.ImmutableMatrix(diffusion.applyfunc(put)),
        correction=tuple(put(b) for b in sde.correction),
        provenance=(*sde.provenance, note),
        curvature=lam,
        hessian_noise=None,
    )
