"""The typed data a module template renders (built by :mod:`derive.codegen.model`).

Every field holds source text already printed by :class:`~derive.codegen.printer.KernelPrinter`
or a plain value written into the module; the templates (``templates/*.j2``) only arrange it. All
classes are frozen: a rendering cannot change what the generator computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Assignment:
    """One line ``name = value`` of a kernel: ``value`` is printed kernel code."""

    name: str
    value: str


@dataclass(frozen=True)
class Reads:
    """What a kernel function reads before its own lines: ``params``, the parameters it uses (each
    unpacked from the parameter vector ``_p`` at its index in the kernel's ``params``, in that
    order), and ``gammas``, the time functions gamma_j(t) it uses (assignments)."""

    params: tuple[str, ...]
    gammas: tuple[Assignment, ...]


@dataclass(frozen=True)
class Coefficients:
    """A function of the module returning a tuple of printed expressions (``drift``, ``diffusion``):
    ``reads`` (parameters, gamma_j), ``lines`` (common-subexpression assignments, source lines),
    ``values`` (the returned entries, in order; the diffusion row-major)."""

    reads: Reads
    lines: tuple[str, ...]
    values: tuple[str, ...]


@dataclass(frozen=True)
class HvpVector:
    """The vector u of an order-2 SDE's Hessian-vector product H u: ``text``, u in SymPy notation
    (the module's HVP_VECTOR); ``lines`` and ``value``, coordinate i of u as kernel code in the
    state, g and the per-step constants."""

    text: str
    lines: tuple[str, ...]
    value: str
    #: True where u also carries the step's noise through the Hessian (USAM): u is then the whole
    #: step's vector, drift vector times dt plus the Hessian noise's vector in the normals, and H u is
    #: added to x as it is (``_sde_u`` and ``_sde_vector`` take the normals)
    noise: bool = False


@dataclass(frozen=True)
class PointVector:
    """The point P of a gradient at another point (reference section 12): ``text``, P in SymPy
    notation; ``lines`` and ``value``, coordinate i of P as kernel code in the state, g (the
    optimizer: and the step's draws) and the per-step constants. A step computes P for every
    coordinate, evaluates the landscape's gradient there (one gradient evaluation), then updates."""

    text: str
    lines: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class StateMap:
    """How the SDE's states stand for the optimizer's where they differ (``SDE.state_map``; reference
    section 11: the SDE's x is x - c*m of the optimizer, a fast state m eliminated; section 12:
    AdaGrad's s of the SDE is eta**2*s; templates/state_map.py.j2).

    ``text``: SDE state name -> its expression in the optimizer's states (the module's STATE_MAP);
    ``params``: the values the map reads (STATE_MAP_PARAMS: hyperparameters, rates, eta, in order);
    ``gammas``: the time functions gamma_j(t) it uses; ``lines`` and ``values``: every SDE state of
    one coordinate as kernel code in the optimizer's states (STATE order), an SDE state that is an
    optimizer state of the same name copied."""

    text: dict[str, str]
    params: tuple[str, ...]
    gammas: tuple[Assignment, ...]
    lines: tuple[str, ...]
    values: tuple[str, ...]


@dataclass(frozen=True)
class SdeKernel:
    """The printed SDE dS = b dt + G dW of one combination (templates/sde_step.py.j2).

    ``text``: the SDE in SymPy notation (header); ``states``: S, x first; ``params``: the
    SDE_PARAMS (``_boundary`` last where a state is positive); ``sources``: Brownian motions per
    coordinate; ``xis``: their per-substep normals' names (_xi1, ...); ``initial``: the auxiliary
    states' initial values; ``rates``: rate name -> decay hyperparameter (RATES);
    ``coupling``: the module's COUPLING, ``{"state", "sign"}`` or None; ``drift``, ``diffusion``:
    the scalar coefficient functions; ``consts``: the per-substep constants (hoisted state-free
    subexpressions, _c0, ...) and ``consts_reads``, what computing them reads; ``step``: the lines
    of one split-step substep of one coordinate and ``results``, its new state (x first);
    ``hvp``: u of the Hessian-vector product (order 2) or None."""

    text: str
    states: tuple[str, ...]
    params: tuple[str, ...]
    sources: int
    xis: tuple[str, ...]
    initial: tuple[float, ...]
    rates: dict[str, str]
    coupling: dict[str, Any] | None
    drift: Coefficients
    diffusion: Coefficients
    consts: tuple[Assignment, ...]
    consts_reads: Reads
    step: tuple[str, ...]
    results: tuple[str, ...]
    hvp: HvpVector | None
    #: gradf(P) in the drift (schedule-free SGD): P, whose gradient the kernels read as ``_gp``
    point: PointVector | None = None
    #: the clock: one optimizer step is dt = eta**clock_power of SDE time (``clock``: t after step k)
    clock: str = "k*eta"
    clock_power: int = 1
    #: where a simulator starts the SDE: after this many optimizer steps (``SDE.start``), and why
    start_steps: int = 0
    start_reason: str = ""
    #: the SDE's states in the optimizer's, where they differ (None: the same)
    state_map: StateMap | None = None


@dataclass(frozen=True)
class Draw:
    """One noise draw of an optimizer step: ``name`` (zeta, zeta_i, xi, xi_i) and ``kind``:
    ``"law"`` (a draw of the gradient-noise law) or ``"gaussian"`` (an injected standard normal)."""

    name: str
    kind: str


@dataclass(frozen=True)
class UpdateLine:
    """One line of the update rule, ``target = value``, after the lines ``pre`` (its common
    subexpressions) it needs."""

    pre: tuple[str, ...]
    target: str
    value: str


@dataclass(frozen=True)
class OptimizerKernel:
    """The printed update rule of one optimizer (templates/optimizer_step.py.j2).

    ``states``: x and the auxiliary states; ``params``: the OPT_PARAMS (hyperparameters, sigma);
    ``initial``: every state's initial value; ``draws``: the noise draws of one step, in the order
    drawn; ``consts``: the per-step constants (_c0, ...) and ``consts_reads``, what computing them
    reads (``k``, the step number, among its params where used); ``body``: the update lines of one
    coordinate, the stochastic gradients first."""

    states: tuple[str, ...]
    params: tuple[str, ...]
    initial: tuple[float, ...]
    draws: tuple[Draw, ...]
    consts: tuple[Assignment, ...]
    consts_reads: Reads
    body: tuple[UpdateLine, ...]
    #: grad(P) in the update rule (USAM, schedule-free SGD): P, whose true gradient the kernels read as ``_gp``
    point: PointVector | None = None


@dataclass(frozen=True)
class NoiseSampler:
    """The gradient-noise law zeta and how the module samples it (templates/noise.py.j2).

    ``kind``: a runtime sampler (gaussian, student-t, cauchy, laplace, uniform) or ``"cdf"``
    (inversion of the user's CDF by bisection); ``nu``: Student-t degrees of freedom (else None);
    ``label``: the law as the header names it; ``cdf``: F(z) of ``_z`` as kernel code (for the
    ``cdf`` sampler and the quantile coupling), None for the Gaussian or where it is not compiled."""

    kind: str
    nu: float | None
    label: str
    cdf: str | None


@dataclass(frozen=True)
class ModuleImports:
    """What the printed kernels call beyond ``math``, as the printer recorded it: ``runtime``, the
    (module, function) pairs imported as ``_function``, in :data:`~derive.codegen.printer.RUNTIME_FUNCTIONS`
    order; ``student_t_tails``, the sources of the straight-line Student-t CDF functions the module
    defines (derive/codegen/student_t_fit.py), sorted by name."""

    runtime: tuple[tuple[str, str], ...]
    student_t_tails: tuple[str, ...]


@dataclass(frozen=True)
class ModuleData:
    """Everything templates/module.py.j2 renders for one combination.

    Provenance: ``version``, ``sympy_version``, ``numba_version``, ``key`` (module_key),
    ``runtime_hash``, ``scheme_text`` (the integrator), ``spec_text`` (the spec); ``combination``:
    the module's COMBINATION (optimizer, noise label, regime, form, order where not 1); ``order``:
    the SDE's order; ``sde``: the SDE kernel, or None with ``sde_unavailable`` saying why;
    ``opt``, ``noise``, ``imports``: the optimizer kernel, the noise sampler, the imports."""

    version: str
    sympy_version: str
    numba_version: str
    key: str
    runtime_hash: str
    scheme_text: str
    spec_text: str
    combination: dict[str, Any]
    order: int
    sde: SdeKernel | None
    sde_unavailable: str | None
    opt: OptimizerKernel
    noise: NoiseSampler
    imports: ModuleImports

    def template_names(self) -> dict[str, Any]:
        """The fields as the template's top-level names (not recursively converted)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
