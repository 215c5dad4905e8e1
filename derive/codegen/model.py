"""The data a module template needs: printed kernels of one (optimizer, noise, regime, form).

:func:`module_data` returns a :class:`ModuleData` (frozen dataclasses throughout): the
:class:`SdeKernel`, the :class:`OptimizerKernel`, the :class:`NoiseSampler` and the
:class:`ModuleImports`, the runtime functions and Student-t tail functions that the printer
recorded while printing the kernels (:class:`~derive.codegen.printer.KernelPrinter`).

The SDE dS = b dt + G dW is integrated by a split-step Euler-Maruyama scheme, not plain
Euler-Maruyama. Step k advances from t_{k-1} to t_k = k*dt and evaluates the state-dependent
coefficients at the old state S_{k-1}, but the bias-correction factors gamma_j at t_k (never at
t = 0, where Adam's drift is 0/0). This mirrors the optimizer, whose step k uses 1 - beta^k:

    A_k = A_{k-1} + b_A(S_{k-1}, g, gamma(t_k)) dt + G_A(S_{k-1}, g, gamma(t_k)) sqrt(dt) xi_k,
    x_k = x_{k-1} + b_x(x_{k-1}, A_k, g, gamma(t_k)) dt + G_x(x_{k-1}, A_k, g, gamma(t_k)) sqrt(dt) xi_k,

with A the auxiliary states (m, v, ...) and xi_k independent standard normals, one per noise
source and coordinate: the auxiliary states move first and x then uses their new values, in the
order of the optimizer's update (which reads the new m and v in the x line). Without this, x
would see v_0 = 0 on the first step, and RMSprop's drift g/(sqrt(v) + eps) is g/eps there. The
states listed in ``SDE.same_step`` are the exception: the published Adam form's x drift already
contains the same-step momentum M + eta rho1 (g - M), so there x reads the old M (reading the new
one would count that O(eta) correction twice). A state declared positive (a second moment v) is
reflected, v_k = |v_{k-1} + b dt + G sqrt(dt) xi_k| (the symmetrized Euler scheme of Berkaoui,
Bossy and Diop, 2008, weak order 1): its noise can push a plain Euler step below zero near v = 0,
where sqrt(v) would be undefined. The optimizer step is the spec's update rule verbatim, with
grad = g + sigma*zeta, grad_i = g + sigma*zeta_i (independent draws of the law) and xi, xi_i
(independent standard normals), and k = 1 on the first step.

Every name the generated code owns starts with an underscore (``_T``, ``_p``, ``_c0``, ``_xi1``,
``_math``, ...); :mod:`derive.spec` refuses user names that do, so no hyperparameter or state can
capture one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numba
import sympy as sp

from .. import __version__
from .. import symbols as S
from ..combination import Combination
from ..engine import derive_sde
from ..errors import DeriveError
from ..noise import get_noise
from ..optimizers import get_optimizer
from ..points import draw_at_x, grad_at
from ..resources import TEMPLATES
from ..runtime import runtime_hash
from ..runtime.samplers import LAWS
from ..sde import clock_text
from ..spec import Optimizer
from .data import (
    Assignment,
    Coefficients,
    Draw,
    HvpVector,
    ModuleData,
    ModuleImports,
    NoiseSampler,
    OptimizerKernel,
    PointVector,
    Reads,
    SdeKernel,
    StateMap,
    UpdateLine,
)
from .printer import RUNTIME_FUNCTIONS, CodegenError, KernelPrinter, hoist
from .schemes import bounded, split_euler
from .student_t_fit import kernel_source

#: Noise laws with an exact sampler in the runtime; any other law is sampled by CDF inversion.
SAMPLERS = LAWS
#: the integrator, as the generated modules' headers and docstrings name it
SCHEME_TEXT = (
    "split-step Euler-Maruyama (scheme euler) or its Talay-Tubaro extrapolation (weak2), substeps of "
    "dt = eta/r: auxiliary states first, x with their new values, gamma_j at the end of each substep, "
    "positive states reflected (or floored)"
)


def _const_name(i: int) -> str:
    return f"_c{i}"


def _finish(consts: list[tuple[sp.Symbol, sp.Expr]], exprs: list[sp.Expr], element: set[sp.Symbol]):
    """Turn bare non-element symbols left in ``exprs`` into constants too (one tuple for all)."""
    loose = sorted({s for e in exprs for s in e.free_symbols} - element - {c for c, _ in consts}, key=str)
    extra = [(sp.Symbol(_const_name(len(consts) + i), real=True), s) for i, s in enumerate(loose)]
    sub = {s: c for c, s in extra}
    return consts + extra, [e.xreplace(sub) for e in exprs]


def _reads(exprs, params: list[str], time_functions: dict, printer: KernelPrinter) -> Reads:
    """The parameters (in ``params`` order) and time functions gamma_j that ``exprs`` use, directly
    or through gamma_j: a kernel unpacks only these."""
    syms = set().union(set(), *(sp.sympify(e).free_symbols for e in exprs))
    gammas = [(g, v) for g, v in time_functions.items() if g in syms]
    syms = syms.union(*(v.free_symbols for _, v in gammas))
    names = {s.name for s in syms}
    return Reads(
        params=tuple(n for n in params if n in names),
        gammas=tuple(Assignment(g.name, printer.code(v)) for g, v in gammas),
    )


def _coefficients(exprs, params: list[str], time_functions: dict, printer: KernelPrinter) -> Coefficients:
    """A coefficient function's body (drift or diffusion entries), printed by ``printer``."""
    lines, values = printer.cse_lines(list(exprs), "_e")
    return Coefficients(_reads(exprs, params, time_functions, printer), tuple(lines), tuple(values))


def _sde_kernel(sde, spec: Optimizer, printer: KernelPrinter) -> SdeKernel:
    """The SDE's kernels, printed by ``printer``."""
    states = list(sde.state)
    K = sde.noise_sources
    dt, sqdt = sp.Symbol("_dt", positive=True), sp.Symbol("_sqdt", positive=True)
    xis = [sp.Symbol(f"_xi{j + 1}", real=True) for j in range(K)]
    element = set(states) | {S.g} | set(xis)
    positive = any(s.is_positive for s in states)
    boundary = sp.Symbol("_boundary", real=True)  # B of max(v, B v): -1 reflects, 0 is an absorbing floor
    drift, u = hvp_split(sde)
    drift, point = gradf_split(drift)
    if point is not None:
        element.add(GP)
    step_drift, w = drift, u
    if sde.hessian_noise is not None:
        step_drift, w = hessian_step(sde, drift, u, dt, xis, sqdt, element)
    if w is not None:
        element.add(HV)
    step = split_euler(
        states,
        step_drift,
        sde.diffusion,
        dt,
        xis,
        sqdt=sqdt,
        same_step=sde.same_step,
        bound=lambda e: bounded(e, boundary),
    )
    fresh = {s: sp.Symbol(f"_n_{s.name}", real=True) for s in states[1:]}
    new_x = step.x + HV if sde.hessian_noise is not None else step.x
    exprs = [new_x, *step.aux] + ([w] if w is not None else []) + ([point] if point is not None else [])
    consts, rewritten = hoist(exprs, element | set(fresh.values()), "_c")
    consts, rewritten = _finish(consts, rewritten, element | set(fresh.values()))
    n = len(states)
    aux_lines, aux_out = printer.cse_lines(rewritten[1:n], "_a")
    x_lines, (x_out,) = printer.cse_lines(rewritten[:1], "_e")
    step = aux_lines + [f"{fresh[s]} = {e}" for s, e in zip(states[1:], aux_out, strict=False)] + x_lines
    hvp = point_kernel = None
    if point is not None:
        point_lines, (point_out,) = printer.cse_lines(rewritten[-1:], "_e")
        point_kernel = PointVector(text=str(point), lines=tuple(point_lines), value=point_out)
        rewritten = rewritten[:-1]
    if w is not None:
        hvp_lines, (hvp_out,) = printer.cse_lines(rewritten[n:], "_e")
        noise = sde.hessian_noise is not None
        hvp = HvpVector(text=str(sde.explicit(w)), lines=tuple(hvp_lines), value=hvp_out, noise=noise)
    params = [s.name for s in sde.parameters] + (["_boundary"] if positive else [])
    base, power = (sde.clock / S.k).as_base_exp()
    if base != S.eta or not power.is_Integer:
        raise CodegenError(f"the clock t = {sde.clock} is not k*eta**p with an integer p")
    return SdeKernel(
        text=sde.to_text(),
        states=tuple(s.name for s in states),
        params=tuple(params),
        sources=K,
        xis=tuple(x.name for x in xis),
        initial=tuple(_initial_value(sde.initial.get(s.name, 0.0)) for s in states[1:]),
        rates={S.rate_name(b): b for b in spec.hypers_with_role("decay")},
        coupling=_coupling(sde, spec),
        drift=_coefficients(drift, params, sde.time_functions, printer),
        diffusion=_coefficients(sde.diffusion, params, sde.time_functions, printer),
        consts=tuple(Assignment(c.name, printer.code(e)) for c, e in consts),
        consts_reads=_reads([e for _, e in consts], params, sde.time_functions, printer),
        step=tuple(step),
        results=(x_out, *(fresh[s].name for s in states[1:])),
        hvp=hvp,
        point=point_kernel,
        clock=clock_text(sde.clock),
        clock_power=int(power),
        start_steps=sde.start.steps,
        start_reason=sde.start.reason,
        state_map=_state_map(sde, spec, printer),
    )


def _state_map(sde, spec: Optimizer, printer: KernelPrinter) -> StateMap | None:
    """The SDE's states as functions of the optimizer's (``SDE.state_map``; an SDE state without an
    entry is the optimizer's state of that name), printed by ``printer``; None where the states are
    the optimizer's. A simulator starts the SDE at the map of the optimizer's start (burned-in
    momentum: u = x - c*m; AdaGrad after its first step: V = eta**2*s) and a coupled run lines the
    two up through it."""
    if not sde.state_map:
        return None
    by_name = dict(zip(spec.state_names, spec.state_symbols, strict=False))
    exprs = []
    for s in sde.state:
        if s.name in sde.state_map:
            exprs.append(sde.state_map[s.name])
        elif s.name in by_name:
            exprs.append(by_name[s.name])
        else:
            raise CodegenError(f"the SDE state {s.name} is neither an optimizer state nor in the SDE's state_map")
    opt_states = set(by_name.values())
    reads = set().union(*(sp.sympify(e).free_symbols for e in exprs)) - opt_states
    gammas = [(g, v) for g, v in sde.time_functions.items() if g in reads]
    reads = (reads - {g for g, _ in gammas}).union(*(v.free_symbols for _, v in gammas)) - {S.t}
    lines, values = printer.cse_lines(exprs, "_e")
    return StateMap(
        text={n: str(v) for n, v in sde.state_map.items()},
        params=tuple(sorted(r.name for r in reads)),
        gammas=tuple(Assignment(g.name, printer.code(v)) for g, v in gammas),
        lines=tuple(lines),
        values=tuple(values),
    )


#: the element symbol that stands for coordinate i of H u in an order-2 kernel
HV = sp.Symbol("_hv", real=True)


def hessian_step(sde, drift, u, dt, xis, sqdt, element) -> tuple[list[sp.Expr], sp.Expr]:
    """The drift without its Hessian term and w, the one vector a step applies H to, for an SDE with
    noise through the Hessian (USAM: dx = -(g + r hvp(g)) dt + sqrt(eta) sigma dW + sqrt(eta) r sigma hvp(dW)).

    A step of x adds a hvp(u) dt + c hvp(v(dW)) = (H w)_i with w = a u dt + c v(sqrt(dt) xi): H is
    linear, so the drift's and the noise's Hessian terms take one Hessian-vector product, provided
    that a and c are the same in every coordinate (free of the states and g) and that x is the only
    state with Hessian terms (else :class:`CodegenError`). ``drift`` has hvp(u) as :data:`HV`."""
    from ..sde import brownian

    noise = sde.hessian_noise
    coeffs = [sde.explicit(c) for c in noise.coefficients]
    slopes = [sp.diff(b, HV) for b in drift]
    if any(c != 0 for c in coeffs[1:]) or any(a != 0 for a in slopes[1:]):
        raise CodegenError("noise through the Hessian in a state other than x; the kernels apply H to x's step only")
    a, c = slopes[0], coeffs[0]
    if sp.diff(a, HV) != 0 or (set().union(a.free_symbols, c.free_symbols) & element):
        raise CodegenError(
            f"the Hessian terms of x, ({a}) hvp(u) dt + ({c}) {noise}, have coefficients that differ between "
            "coordinates; the kernels compute one Hessian-vector product per step"
        )
    vector = noise.vector.xreplace({brownian(j + 1): sqdt * xi for j, xi in enumerate(xis)})
    w = c * vector + (a * u * dt if u is not None else 0)
    return [drift[0].xreplace({HV: 0}), *drift[1:]], w


def gradf_split(drift) -> tuple[list[sp.Expr], sp.Expr | None]:
    """The drift with gradf(P) replaced by :data:`GP` (coordinate i of the true gradient at P, which a
    step evaluates at the old state: P of every coordinate, then one gradient there), and P (None if
    the drift has no gradf). Two different points would need two gradients: refused."""
    from ..points import gradf

    found = sorted({a.args[0] for b in drift for a in sp.sympify(b).atoms(gradf)}, key=sp.default_sort_key)
    if not found:
        return list(drift), None
    if len(found) > 1:
        raise CodegenError(
            f"the drift takes the gradient at {len(found)} different points ({', '.join(map(str, found))}); "
            "the kernels evaluate the gradient at one other point per step"
        )
    return [sp.sympify(b).replace(lambda e: isinstance(e, gradf), lambda e: GP) for b in drift], found[0]


def hvp_split(sde) -> tuple[list[sp.Expr], sp.Expr | None]:
    """The drift with every hvp(u) replaced by :data:`HV`, and u (None if the drift has no hvp).

    An order-2 drift applies H to one vector, u = b0_x up to a constant factor (derive.order2), so
    a step computes u for every coordinate first, then H u (one product), then the update. Two
    different vectors would need two products: refused (:class:`CodegenError`)."""
    from ..order2 import hvp

    found = sorted({h.args[0] for b in sde.drift for h in sp.sympify(b).atoms(hvp)}, key=sp.default_sort_key)
    if not found:
        return list(sde.drift), None
    if len(found) > 1:
        raise CodegenError(
            f"the drift applies the Hessian to {len(found)} different vectors ({', '.join(map(str, found))}); "
            "the kernels compute one Hessian-vector product per step"
        )
    (u,) = found
    return [sp.sympify(b).replace(lambda e: isinstance(e, hvp), lambda e: HV) for b in sde.drift], u


#: a representative point at which the sign of the coupling is read off (any point where the
#: optimizer's step depends on the noise will do): hyperparameters by role, sigma = 1, g = 0.3
_PROBE_ROLES = {
    "lr": 0.01,
    "decay": 0.9,
    "fixed_decay": 0.9,
    "eps": 1e-8,
    "weight_decay": 0.01,
    "noise_scale": 1.0,
    "const": 1.0,
    "positive": 1.0,
    "radius": 0.05,
}


def _coupling(sde, spec: Optimizer) -> dict | None:
    """How a coupled run shares the optimizer's noise with the SDE (docs/validation.md, "Coupling").

    The first Brownian motion W1 carries the zeta-linear part of the step: over one optimizer step
    its increment is ``sign`` sqrt(eta) n(zeta), with ``sign`` such that G_i1 dW1 moves the state i
    that W1 drives first the way the optimizer's noise moves it (SGD: dx = -eta sigma zeta, G = +sqrt(eta)
    sigma, sign -1). Read off at a representative point from the update rule itself: the sign of
    sum over z of (Delta_i(zeta = z) - Delta_i(zeta = -z)) G_i1, z in (1/4, 1/2, 1, 2, 4) (sign()
    updates have no derivative in zeta). Where the SDE's state is a map of the optimizer's (x - c*m),
    the map's move over one step is what W1 must reproduce. None (coupled runs refused) where the
    coupling is undefined: the SDE on another clock than t = k*eta (AdaGrad's k*eta**2: one step is
    dt = eta**2, over which the SDE's noise is not sqrt(eta) n(zeta)) or starting only after some
    optimizer steps (``SDE.start``), its states neither the optimizer's nor mapped to them by
    ``SDE.state_map``, W1 driving nothing, or a sign that cannot be read."""
    mapped = {n for n in sde.state_names if n in sde.state_map}
    lined_up = set(sde.state_names) - mapped <= set(spec.state_names) and (
        mapped or tuple(sde.state_names) == tuple(spec.state_names)
    )
    if sde.clock != S.k * S.eta or sde.start.steps or not lined_up:
        return None
    column = [sde.explicit(e) for e in sde.diffusion.col(0)]
    index = next((i for i, e in enumerate(column) if e != 0), None)
    if index is None:
        return None
    values = {n: spec.defaults.get(n, _PROBE_ROLES[r]) for n, r in spec.hyper.items()}
    lr = spec.hypers_with_role("lr")[0]
    for decay in spec.hypers_with_role("decay"):
        values[S.rate_name(decay)] = (1 - values[decay]) / values[lr]
    values.update({"eta": values[lr], "sigma": 1.0, "g": 0.3, "x": 1.0, "k": 10, "t": 10 * values[lr]})
    values.update({s: 0.5 for s in spec.state_names[1:]})
    name = sde.state_names[index]
    if name in sde.state_map:
        after = {sym: spec.step_map()[n] for n, sym in zip(spec.state_names, spec.state_symbols, strict=False)}
        new = sde.explicit(sde.state_map[name]).xreplace(after)
    else:
        new = spec.step_map()[name]
    # a gradient at another point read as the draw at x: the sign of the noise's leading part
    new = new.replace(lambda e: isinstance(e, grad_at), draw_at_x)

    def at(expr, zeta=None):
        subs = {s: values[s.name] for s in expr.free_symbols if s.name in values}
        if zeta is not None:
            subs[S.grad] = 0.3 + zeta
        return complex(sp.N(expr.xreplace(subs)))

    try:
        moved = sum(at(new, z) - at(new, -z) for z in (0.25, 0.5, 1.0, 2.0, 4.0))
        sign = moved.real * at(column[index]).real
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (sign == sign) or sign == 0 or abs(moved.imag) > 0:
        return None
    return dict(state=name, sign=1.0 if sign > 0 else -1.0)


def _opt_draws(spec: Optimizer) -> tuple[list[Draw], list[tuple[str, sp.Expr]]]:
    """The noise draws of one optimizer step, in the order they are drawn (zeta first, then the
    further law draws zeta_i of grad_i, then the injected Gaussians xi, xi_i), and the lines that
    form the stochastic gradients from them."""
    grads = sorted({i for i in (S.draw_index(d, "grad") for d in spec.draws) if i})
    gaussians = [d for d in spec.draws if S.is_gaussian_draw(d)]
    draws = [Draw("zeta", "law")] + [Draw(S.law_draw(i).name, "law") for i in grads]
    draws += [Draw(d.name, "gaussian") for d in gaussians]
    lines = [("grad", S.g + S.sigma * S.zeta)] + [(S.grad_draw(i).name, S.g + S.sigma * S.law_draw(i)) for i in grads]
    return draws, lines


#: the element symbol that stands for coordinate i of the true gradient at the point P of grad(P)
#: (optimizer kernels) or gradf(P) (SDE kernels)
GP = sp.Symbol("_gp", real=True)


def _opt_point(spec: Optimizer) -> tuple[sp.Expr | None, list[tuple[str, sp.Expr]]]:
    """The point P of the update's gradients at another point, written in the old states and the
    stochastic gradients at x (None if the update has none), and the update lines with every
    grad_i(P) replaced by its value GP + sigma*zeta_i (the same draw as grad_i at x: one minibatch).

    One point per step (one gradient evaluation besides the one at x); a second point, or a point
    that itself needs a gradient at another point, is refused (:class:`CodegenError`)."""
    by_name = dict(zip(spec.state_names, spec.state_symbols, strict=False))
    env: dict[sp.Symbol, sp.Expr] = {}
    points: set[sp.Expr] = set()
    lines = []
    for target, expr in spec.parsed():
        for atom in expr.atoms(grad_at):
            points.add(atom.point.xreplace(env))
        lines.append(
            (
                target,
                expr.replace(lambda e: isinstance(e, grad_at), lambda e: GP + S.sigma * S.law_draw(e.draw)),
            )
        )
        env[by_name.get(target, sp.Symbol(target, real=True))] = expr.xreplace(env)
    if not points:
        return None, list(spec.parsed())
    if len(points) > 1 or any(p.has(grad_at) for p in points):
        raise CodegenError(
            f"optimizer {spec.name!r} takes gradients at {len(points)} points besides x "
            f"({', '.join(sorted(map(str, points)))}); the kernels evaluate the gradient at one other point per step"
        )
    return points.pop(), lines


def _optimizer_kernel(spec: Optimizer, printer: KernelPrinter) -> OptimizerKernel:
    """The update rule's kernels, printed by ``printer``; with a gradient at another point, grad(P),
    also the kernel of P (:func:`_opt_point`)."""
    by_name = dict(zip(spec.state_names, spec.state_symbols, strict=False))
    draws, grad_lines = _opt_draws(spec)
    element = set(by_name.values()) | {S.g} | {sp.Symbol(d.name, real=True) for d in draws}
    consts: list[tuple[sp.Symbol, sp.Expr]] = []
    point, update = _opt_point(spec)
    point_kernel = None
    if point is not None:
        point_element = element | {sp.Symbol(name, real=True) for name, _ in grad_lines}
        hoisted = []
        for target, expr in (*grad_lines, ("_pt", point)):
            new_consts, (rewritten,) = hoist([expr], point_element, "_c", start=len(consts))
            consts += new_consts
            hoisted.append((target, rewritten))
        consts, finished = _finish(consts, [e for _, e in hoisted], point_element)
        body: list[str] = []
        for i, ((target, _), e) in enumerate(zip(hoisted, finished, strict=True)):
            pre, (out,) = printer.cse_lines([e], f"_e{i}_")
            body += pre + ([f"{target} = {out}"] if i < len(hoisted) - 1 else [])
        point_kernel = PointVector(text=str(point), lines=tuple(body), value=out)
        element.add(GP)
    lines: list[tuple[str, sp.Expr]] = []
    for target, expr in (*grad_lines, *update):
        new_consts, (rewritten,) = hoist([expr], element, "_c", start=len(consts))
        consts += new_consts
        element.add(by_name.get(target, sp.Symbol(target, real=True)))
        lines.append((target, rewritten))
    consts, finished = _finish(consts, [e for _, e in lines], element)
    body = []
    for i, ((target, _), e) in enumerate(zip(lines, finished, strict=False)):
        pre, (out,) = printer.cse_lines([e], f"_e{i}_")
        body.append(UpdateLine(tuple(pre), target, out))
    params = list(spec.hyper) + ["sigma"]
    return OptimizerKernel(
        states=tuple(spec.state_names),
        params=tuple(params),
        initial=tuple(_initial_value(s.init) for s in spec.state),
        draws=tuple(draws),
        consts=tuple(Assignment(c.name, printer.code(e)) for c, e in consts),
        consts_reads=_reads([e for _, e in consts], params + ["k"], {}, printer),
        body=tuple(body),
        point=point_kernel,
    )


def _initial_value(init) -> float | str:
    """A state's initial value: a number, or ``"x"`` for a state that starts at x (schedule-free's z)."""
    return "x" if str(init) == "x" else float(init)


def _noise_sampler(noise: str, nu: object, printer: KernelPrinter) -> NoiseSampler:
    """The law's sampler; its CDF printed by ``printer``."""
    law = get_noise(noise, nu=nu)
    z = sp.Symbol("_z", real=True)
    if law.name == "student-t":
        if not (law.nu.is_number and law.nu.is_positive and law.nu.is_finite):
            raise CodegenError(f"student-t needs a numeric nu > 0 for code generation, got nu={law.nu}")
        kind, nu_value = "student-t", float(law.nu)  # Bailey's method: any nu > 0
    elif law.name in SAMPLERS:
        kind, nu_value = law.name, None
    else:
        cdf = getattr(law, "cdf", None)
        if cdf is None:
            raise CodegenError(f"noise law {law.label} has neither a built-in sampler nor a CDF to invert")
        (ysym,) = cdf.free_symbols
        return NoiseSampler("cdf", None, law.label, printer.code(cdf.xreplace({ysym: z})))
    cdf_code = None if law.name == "gaussian" else _printable_cdf(law, z, printer)
    return NoiseSampler(kind, nu_value, law.label, cdf_code)


def _printable_cdf(law, z: sp.Symbol, printer: KernelPrinter) -> str | None:
    """F(z) = (1 + s(z))/2 as kernel code, for the quantile coupling; None where it needs a
    function the printer does not compile (Student-t with a non-integer nu: betainc). Printed by
    a scratch printer whose record ``printer`` takes only if the CDF is kept."""
    cdf = sp.simplify((1 + law.s(z)) / 2)
    if cdf.has(sp.betainc_regularized):
        return None
    scratch = KernelPrinter()
    try:
        text = scratch.code(cdf)
    except CodegenError:
        return None
    printer.absorb(scratch)
    return text


def _imports(printer: KernelPrinter) -> ModuleImports:
    """The module's imports and Student-t tail functions, from what ``printer`` recorded."""
    return ModuleImports(
        runtime=tuple(where for name, where in RUNTIME_FUNCTIONS.items() if name in printer.runtime_calls),
        student_t_tails=tuple(kernel_source(fit) for _, fit in sorted(printer.student_t_tails.items())),
    )


def spec_fingerprint(spec: Optimizer) -> str:
    """The spec as canonical text (everything that defines it), for the module key."""
    return json.dumps(
        {
            "name": spec.name,
            "hyper": list(spec.hyper.items()),
            "update": [list(a) for a in spec.update],
            "state": [[s.name, s.init, s.positive] for s in spec.state],
            "defaults": sorted(spec.defaults.items()),
        }
    )


def _files_hash(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def templates_hash() -> str:
    """SHA-256 (hex, first 16 digits) of every template."""
    return _files_hash(TEMPLATES.glob("*.j2"))


def codegen_hash() -> str:
    """SHA-256 (hex, first 16 digits) of the code generator (derive/codegen/*.py: the printer, this
    file, the integration scheme), so that a changed scheme regenerates the user modules too."""
    return _files_hash(Path(__file__).resolve().parent.glob("*.py"))


def module_key(combo: Combination, spec: Optimizer | None = None) -> str:
    """SHA-256 of what a generated module depends on: spec, law, nu, regime, form, the templates,
    the code generator, the runtime and the derive, SymPy and Numba versions. Written into every
    module (``KEY``)."""
    spec = spec or get_optimizer(combo.optimizer)
    payload = {
        "spec": spec_fingerprint(spec),
        "noise": str(combo.noise),
        "nu": str(combo.nu),
        "regime": combo.regime,
        "form": combo.form,
        "templates": templates_hash(),
        "codegen": codegen_hash(),
        "runtime": runtime_hash(),
        "derive": __version__,
        "sympy": sp.__version__,
        "numba": numba.__version__,
        **({"order": combo.order} if combo.order != 1 else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def module_data(combo: Combination) -> ModuleData:
    """Everything the module template renders, for one combination (deterministic)."""
    spec = get_optimizer(combo.optimizer)
    printer = KernelPrinter()  # records what the kept kernels call: the module's imports
    noise = _noise_sampler(combo.noise, combo.nu, printer)
    opt = _optimizer_kernel(spec, printer)
    sde_printer = KernelPrinter()  # its record is kept only if the whole SDE prints
    try:
        sde = derive_sde(spec, combo.noise, combo.regime, combo.form, nu=combo.nu, order=combo.order)
        sde_kernel, unavailable = _sde_kernel(sde, spec, sde_printer), None
        printer.absorb(sde_printer)
    except DeriveError as exc:  # no SDE (infinite moment, no limit) or none the printer can compile
        sde_kernel, unavailable = None, f"{type(exc).__name__}: {exc}"
    return ModuleData(
        version=__version__,
        sympy_version=sp.__version__,
        numba_version=numba.__version__,
        key=module_key(combo, spec),
        runtime_hash=runtime_hash(),
        scheme_text=SCHEME_TEXT,
        spec_text=spec.describe(),
        combination=dict(
            optimizer=spec.name,
            noise=noise.label,
            regime=combo.regime,
            form=combo.form,
            **({"order": combo.order} if combo.order != 1 else {}),
        ),
        order=combo.order,
        sde=sde_kernel,
        sde_unavailable=unavailable,
        opt=opt,
        noise=noise,
        imports=_imports(printer),
    )
