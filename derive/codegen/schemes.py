"""The integration schemes of the generated SDE simulators, written once, symbolically.

An SDE of the tool, per coordinate, is dS = b(S, g, t) dt + G(S, g, t) dW with S = (x, a_1, ...)
(x the parameter, a the auxiliary states m, v, ...), K independent Brownian motions W per
coordinate (G has K columns, which need not commute) and g = d_i f(x) the true gradient.

``euler`` -- split-step Euler-Maruyama, weak order 1. One step of length h from t to t + h:

    a' = a + b_a(S, g, t + h) h + G_a(S, g, t + h) sqrt(h) xi,
    x' = x + b_x(x, a', g, t + h) h + G_x(x, a + b_a h, g, t + h) sqrt(h) xi,

xi ~ N(0, I_K) per coordinate. The auxiliary states move first and x's drift reads their new values,
as the optimizer's update reads the new m and v; x's diffusion reads them at the noise-free
predictor a + b_a h. States in ``same_step`` (whose same-step value the x drift already contains,
the published Adam form) are read old. The time functions gamma_j(t) are evaluated at the end of
the step (never at t = 0, where Adam's drift is 0/0). Reading a' in the drift changes the one-step
mean and covariance by O(h^2) (E b_x(a') = b_x(a) + O(h)); reading the predictor in the diffusion
changes the covariance by O(h^2) and the mean not at all. Reading a' there instead would not do:
where x and a share a Brownian motion (RMSprop(W), Adam(W): W1 drives x and v), E[G_x(a') sqrt(h)
xi] = (d G_x / d a) G_a h + O(h^2), a drift of order eta that the SDE does not have and that does not
shrink with h (tests/test_split_predictor.py). So the split step has the weak order of
Euler-Maruyama, 1: E phi(X_T^h) = E phi(X_T) + C(T) h + O(h^2) for smooth coefficients
(Talay and Tubaro 1990; the expansion holds for any one-step scheme whose one-step moments have
expansions in h, which this one has).

A state declared positive (a second moment v) gets a boundary rule after the step, because the
full-form V noise does not vanish at V = 0 and a step can land below 0, where sqrt(v) is undefined:
``reflect`` (v' = |v'|, the symmetrized Euler scheme of Berkaoui, Bossy and Diop 2008) or
``floor`` (v' = max(v', 0), an absorbing floor). The rule is chosen at run time through the
constant ``B`` of :func:`bounded`: max(v', B v') with B = -1 (reflect) or 0 (floor).

``weak2`` -- Talay-Tubaro extrapolation of ``euler``, weak order 2:

    E phi(X_T) = 2 E phi(X_T^{h/2}) - E phi(X_T^h) + O(h^2),

computed from one Brownian path per simulated path: the fine run takes 2r substeps of h/2 per
optimizer step with normals xi_1, xi_2, ..., the coarse run r substeps of h with (xi_1 + xi_2)/sqrt 2,
..., so the two runs are strongly coupled and 2 phi(fine) - phi(coarse) has about the variance of
phi(fine). Only expectations are extrapolated (per path, 2 phi(fine) - phi(coarse) is an unbiased
estimate of the extrapolated E phi; the "path" 2 X^{h/2} - X^h is not a sample of anything).
Why this scheme and not a Runge-Kutta one: docs/codegen.md, "Integrators".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp

from ..runtime.schemes import BOUNDARIES, SCHEMES  # noqa: F401 - the names, shared with code that runs kernels


def bounded(expr: sp.Expr, B: sp.Expr) -> sp.Expr:
    """max(expr, B expr): |expr| for B = -1 (reflection), max(expr, 0) for B = 0 (absorbing floor)."""
    return sp.Max(expr, B * expr, evaluate=False)


@dataclass(frozen=True)
class SplitStep:
    """One split Euler step: ``aux[i]`` is the new value of the auxiliary state ``states[i + 1]``
    in the old state; ``x`` is the new x in the old x and the symbols ``fresh`` (new auxiliary
    values; states in ``same_step`` are read old and have no fresh symbol in ``x``)."""

    states: tuple[sp.Symbol, ...]
    aux: tuple[sp.Expr, ...]
    x: sp.Expr
    fresh: dict[sp.Symbol, sp.Symbol]

    def composed(self) -> list[sp.Expr]:
        """The new value of every state as a function of the old state alone."""
        back = {self.fresh[s]: new for s, new in zip(self.states[1:], self.aux, strict=False) if s in self.fresh}
        return [self.x.xreplace(back), *self.aux]


def split_euler(
    states: Sequence[sp.Symbol],
    drift: Sequence[sp.Expr],
    diffusion: sp.Matrix,
    dt: sp.Expr,
    xis: Sequence[sp.Symbol],
    *,
    sqdt: sp.Expr | None = None,
    same_step: Sequence[str] = (),
    bound: Callable[[sp.Expr], sp.Expr] | None = None,
    fresh_prefix: str = "_n_",
    noise_at: str = "predictor",
) -> SplitStep:
    """The split-step Euler-Maruyama update of one coordinate (see the module docstring).

    ``noise_at``: where x's diffusion reads the auxiliary states it reads new. ``"predictor"``
    (every generated module): at the noise-free predictor a + b_a h, so the step's mean is the SDE's
    to O(h^2) (the drift still reads a': E b_x(a') = b_x(a) + O(h)). ``"new"``: at their new values
    a', which carry the step's noise G_a sqrt(h) xi; when x and a share a Brownian motion (RMSprop:
    W1 drives x and v), E[G_x(a') sqrt(h) xi] = (d G_x/d a) G_a h is a drift the SDE does not have.
    Both G are O(sqrt(eta)), so it is O(eta) and does not shrink with h (kept to show that drift in
    tests; the order-1 modules used it before issue 16).
    ``drift`` and ``diffusion`` are evaluated wherever the caller put the time (the generated code
    evaluates gamma_j at the end of the step); ``bound`` is applied to the new value of every state
    declared positive (``Symbol(..., positive=True)``); None leaves it unbounded."""
    states = tuple(states)
    sqdt = sp.sqrt(dt) if sqdt is None else sqdt
    K = diffusion.shape[1]
    if noise_at not in ("new", "predictor"):
        raise ValueError(f"noise_at must be 'new' or 'predictor', got {noise_at!r}")
    new = [
        s + b * dt + sum(diffusion[i, j] * sqdt * xis[j] for j in range(K))
        for i, (s, b) in enumerate(zip(states, drift, strict=False))
    ]
    if bound is not None:
        new = [bound(e) if s.is_positive else e for s, e in zip(states, new, strict=False)]
    fresh = {s: sp.Symbol(f"{fresh_prefix}{s.name}", real=True) for s in states[1:] if s.name not in same_step}
    x = new[0].xreplace(fresh)
    if noise_at == "predictor":
        predictor = {fresh[s]: s + b * dt for s, b in zip(states[1:], drift[1:], strict=False) if s in fresh}
        x = (
            states[0]
            + drift[0].xreplace(fresh) * dt
            + sum(diffusion[0, j].xreplace(fresh).xreplace(predictor) * sqdt * xis[j] for j in range(K))
        )
        if bound is not None and states[0].is_positive:
            x = bound(x)
    return SplitStep(states, tuple(new[1:]), x, fresh)
