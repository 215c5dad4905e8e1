"""What an SDE says beyond b and G: fast states eliminated, clocks, step-count coefficients,
gradients at other points, noise through the Hessian, and where a simulator starts it.

:func:`described` reads them from the engine's stage data (the regime's clock and accumulators,
the eliminations of :mod:`derive.fast`, the step-count coefficients) and writes them into the SDE
object (:class:`derive.sde.SDE`: ``clock``, ``state_map``, ``eliminated``, ``defined_for``,
``start``) and its provenance; an SDE without any of them is returned unchanged, so every SDE
derived before these existed prints as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import sympy as sp

from . import symbols as S
from .fast import Elimination
from .order2 import simplest
from .points import gradf, hvp
from .regimes import Regime
from .sde import SDE, Start, clock_text
from .spec import Optimizer


def _short(expr: sp.Expr, to_user: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr:
    """``expr`` (regime units) in the user's units, the shorter of its simplest one-fraction form and
    its factored form after cancelling (which cancels the powers of eta the regime's units leave),
    computed while a fixed EMA factor is still its positive complement c = 1 - beta."""
    complements = {c: v for c, v in to_user.items() if c.name.startswith("one_minus_")}
    user = expr.xreplace({c: v for c, v in to_user.items() if c not in complements})
    return min((simplest(user), sp.factor(sp.cancel(user))), key=sp.count_ops).xreplace(complements)


def described(
    sde: SDE,
    spec: Optimizer,
    reg: Regime,
    to_user: Mapping[sp.Symbol, sp.Expr],
    eliminations: Sequence[Elimination] = (),
    step_counts: Sequence[sp.Expr] = (),
) -> SDE:
    """``sde`` with the descriptors of fast states (``eliminations``, their coefficients in regime
    units written back with ``to_user``), the regime's clock and accumulators, step-count
    coefficients and gradients at other points (:class:`derive.sde.SDE`), and their provenance;
    unchanged when none applies."""
    symbols = dict(zip(spec.state_names, spec.state_symbols, strict=True))
    lines: list[str] = []
    state_map: dict[str, sp.Expr] = {}
    eliminated: dict[str, str] = {}
    for record in eliminations:
        m = symbols[record.state]
        factor = _short(record.factor, to_user)
        fixed = [n for n, r in spec.hyper.items() if r == "fixed_decay" and record.factor.has(S.complement_symbol(n))]
        for name, c in record.shifts.items():
            c_user = _short(c, to_user)
            state_map[name] = state_map.get(name, symbols[name]) - c_user * m
        eliminated[record.state] = (
            f"a fast state: {record.state} <- {factor}*{record.state} + ... relaxes in O(1) steps"
            + (f" ({', '.join(fixed)} held fixed, role fixed_decay)" if fixed else "")
            + " and enters the other updates linearly: removed by the change of variables of reference section 11"
            + (f" ({', '.join(record.shifts)} - c*{record.state}, see state_map)" if record.shifts else "")
        )
        lines.append(f"fast state {record.state} eliminated: {eliminated[record.state]}")
    for name, _b, b_user in reg.accumulators:
        if b_user:
            state_map[name] = S.eta**b_user * symbols[name]
    lines += [f"state {name} of the SDE stands for {value} of the optimizer" for name, value in state_map.items()]
    clock = S.k * S.eta**reg.clock
    if reg.accumulators:
        names = ", ".join(n for n, _, _ in reg.accumulators)
        lines.append(
            f"clock t = {clock_text(clock)}: {names} accumulates without decay (it grows like the step count), so on t = k*eta "
            f"x would freeze; the regime is put on dt = eta**{reg.dt} with "
            + ", ".join(f"{n} = {n}_0/eta**{b}" for n, b, _ in reg.accumulators)
            + f" and eps = eps_0/eta**{reg.eps}, written back on t = {clock_text(clock)} with "
            + ", ".join(f"{n} of the SDE = {v}" for n, v in state_map.items() if n in names.split(", "))
        )
    defined_for = ""
    if step_counts:
        exprs = [sde.explicit(e) for e in (*sde.drift, *sde.diffusion)]
        if any(sp.denom(sp.together(e)).has(S.t) for e in exprs):
            defined_for = "t > 0"
        lines.append(
            "step-count coefficients written in t = "
            + f"{clock_text(clock)}: "
            + "; ".join(f"{c} = {sp.together(c.xreplace({S.k: S.t / S.eta**reg.clock}))}" for c in step_counts)
        )
    if any(e.has(gradf) for e in (*sde.drift, *sde.diffusion)):
        lines.append(
            "gradient at another point: gradf(P), the gradient of f at P (P - x of order 1, free of the noise)"
        )
    if any(e.has(hvp) for e in (*sde.drift, *sde.diffusion)) or sde.hessian_noise is not None:
        lines.append(
            "gradient at a nearby point: grad(P) = grad + hvp(P - x) + O(|P - x|^2) (the same draw), the remainder "
            "beyond the order of the SDE; a 'radius' hyperparameter counts as r0*sqrt(eta) for that order and is "
            "kept as written"
        )
    if sde.hessian_noise is not None:
        lines.append(
            f"noise through the Hessian: {sde.hessian_noise}, with dW_j the Brownian increment of column j "
            "(one Hessian-vector product of a random vector per step)"
        )
    if not (lines or state_map):
        return sde
    start = _start(replace(sde, clock=clock), spec, reg, bool(step_counts))
    return replace(
        sde,
        clock=clock,
        state_map=state_map,
        eliminated=eliminated,
        defined_for=defined_for,
        start=start,
        provenance=(*sde.provenance, *lines),
    )


def _start(sde: SDE, spec: Optimizer, reg: Regime, step_counts: bool) -> Start:
    """Where a simulator starts the SDE: at t = 0 from the optimizer's initial state, unless a
    coefficient is not integrable at t = 0 from there (AdaGrad from V(0) = 0: x's noise variance
    ~ 1/t), then after the optimizer's first step, at t = one step. Each accumulator starting at 0
    is replaced by its initial growth V = b_V t, and each coefficient by its leading term in eta
    (AdaGrad's eta*eps vanishes); a leading power of t at or below -1 is not integrable."""
    if not (reg.accumulators or step_counts):
        return Start()
    initial = {
        sym: (sde.state[0] if s.init == "x" else sp.nsimplify(s.init))
        for s, sym in zip(spec.state, spec.state_symbols[1:], strict=True)
        if sym in sde.state
    }
    zero = {sym for sym, v in initial.items() if v == 0 and reg.accumulator(sym.name) is not None}
    covariance = sde.diffusion * sde.diffusion.T
    at_start = {sym: v for sym, v in initial.items() if sym not in zero}
    growth = {
        sym: sde.explicit(sde.drift[sde.state.index(sym)]).xreplace({**at_start, **dict.fromkeys(zero, 0)}) * S.t
        for sym in zero
    }
    step = sde.clock.xreplace({S.k: 1})
    for i, name in enumerate(sde.state_names):
        for what, expr in (("drift", sde.drift[i]), ("noise variance", covariance[i, i])):
            expr = sde.explicit(expr).xreplace(at_start)
            if expr == 0 or not (zero or expr.has(S.t)):
                continue
            try:
                lead = expr.leadterm(S.eta)[0] if expr.has(S.eta) else expr
                power = sp.powsimp(lead.xreplace(growth)).leadterm(S.t)[1] if lead.has(S.t) or growth else 0
            except (ValueError, NotImplementedError, TypeError):
                continue
            if power <= -1:
                starts = ", ".join(f"{sym} = {sp.nsimplify(0)}" for sym in zero)
                return Start(
                    time=step,
                    steps=1,
                    reason=f"from the optimizer's initial state ({starts}) the {what} of {name} behaves like "
                    f"t**({power}) near t = 0, which is not integrable: start after the optimizer's first step, at "
                    f"t = {step}, from its state then (mapped by state_map), or give "
                    + ", ".join(str(sym) for sym in zero)
                    + " an initial value > 0",
                )
    if step_counts:
        return Start(
            reason="from the optimizer's initial state, its coefficients with 1/t evaluated at the end of each "
            "step (t = k*dt, k >= 1), as the bias corrections; they stay bounded there"
        )
    return Start()
