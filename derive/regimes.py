"""Scaling regimes: how hyperparameters, noise and states scale with eta, and what dt one step is.

A regime is given by exponents. With user-unit symbols (those of the paper regime: beta = 1 - eta
rho, sigma, eps, theta, time t = k eta) and O(1) regime symbols (marked ``_0``):

    1 - beta = eta**decay * rho_0     sigma = sigma_0 / eta**noise     eps = eps_0 / eta**eps
    theta    = eta**weight_decay * theta_0        dt = eta**dt        state s = s_0 / eta**r(s)

where r(s) = noise * 2*floor(d/2) for a state whose new value has degree d in the stochastic
gradient (Malladi et al.'s u = eta^2 v is the case d = 2). Mapping back to user units is the
substitution rho_0 = rho eta^(1-decay), sigma_0 = sigma eta^noise, ..., plus the change of
time t_regime = eta^(dt-1) t, which multiplies the drift by eta^(dt-1) and the diffusion by
eta^((dt-1)/2). In the paper regime every exponent is trivial and both maps are the identity.

A ``radius`` hyperparameter (SAM's r) is counted as r_0 * eta**(dt/2) (r = r0 sqrt(eta) in the paper
regime) only to decide the size of P - x in a gradient at another point, grad(P) (see
:func:`derive.engine.at_points`); the SDE keeps r as written.

**Clocks** (reference section 12). A state that accumulates without decay (AdaGrad's s = s + grad**2)
grows like the step count, and on the clock t = k eta the parameter freezes. :func:`derive.engine.clocked`
then puts the regime on another clock: dt = eta**a with the accumulator rescaled, s = s_0 / eta**b,
b = a - (the order in eta of the mean increment of s), and a the smallest exponent for which the
parameter's mean increment is of order eta**a (paper regime: a = b = 2, V = eta^2 s, t = k eta^2).
eps, which regularises sqrt(s), is held at the size of sqrt(s): eps = eps_0 / eta**(b/2), as the
noise-dominated regime does for v (so the SDE keeps sqrt(V) + eta*eps). The user's units of such an
optimizer are those of its paper-regime clock: t = k*eta**clock and V = eta**b_user s, with
``clock`` and b_user of the paper regime (the map back divides by eta**(dt - clock) in time and
by eta**(b - b_user) in the state).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .errors import UnknownNameError

#: Named simplifications a published form may apply (see derive.engine).
DROP_SECOND_MOMENT_NOISE = "drop second-moment noise"
SAME_STEP_MOMENTUM = "same-step momentum in the parameter drift"


@dataclass(frozen=True)
class Regime:
    """Exponents of a scaling regime and the simplifications of its published forms."""

    name: str
    dt: int
    decay: int
    noise: int
    eps: int
    weight_decay: int
    published: tuple[str, ...]
    reference: str
    #: the clock of the user's units, t = k * eta**clock (1 unless a state accumulates: see clocks above)
    clock: int = 1
    #: accumulating states (name, b, b_user): s = s_0 / eta**b in this regime, V = eta**b_user * s in user units
    accumulators: tuple[tuple[str, int, int], ...] = ()

    def scaled(self, user: sp.Symbol, exponent: int, positive: bool = True) -> sp.Symbol:
        """The O(1) regime symbol standing for ``user`` (the same symbol when exponent is 0)."""
        if exponent == 0:
            return user
        return sp.Symbol(f"{user.name}_0", **({"positive": True} if positive else {"nonnegative": True}))

    def state_exponent(self, degree: int | None) -> int:
        """r in s = s_0 / eta**r for a state of the given degree in the stochastic gradient."""
        return self.noise * 2 * ((degree or 0) // 2)

    def accumulator(self, name: str) -> tuple[int, int] | None:
        """(b, b_user) of an accumulating state (None for any other state)."""
        return next(((b, user) for n, b, user in self.accumulators if n == name), None)


PAPER = Regime(
    "paper",
    dt=1,
    decay=1,
    noise=0,
    eps=0,
    weight_decay=0,
    published=(DROP_SECOND_MOMENT_NOISE, SAME_STEP_MOMENTUM),
    reference="Compagnoni et al., ICLR 2025: beta = 1 - eta rho, sigma, eps, theta O(1), dt = eta",
)
NOISE_DOMINATED = Regime(
    "noise-dominated",
    dt=2,
    decay=2,
    noise=1,
    eps=1,
    weight_decay=1,
    published=(DROP_SECOND_MOMENT_NOISE,),
    reference="Malladi et al., NeurIPS 2022: sigma = sigma0/eta, eps = eps0/eta, "
    "1 - beta = c eta^2, dt = eta^2, u = eta^2 v",
)

REGIMES = {r.name: r for r in (PAPER, NOISE_DOMINATED)}
FORMS = ("full", "published")


def get_regime(name: str | Regime) -> Regime:
    if isinstance(name, Regime):
        return name
    if name not in REGIMES:
        raise UnknownNameError("regime", name, list(REGIMES))
    return REGIMES[name]
