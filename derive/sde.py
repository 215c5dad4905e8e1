"""The SDE object: state, drift, diffusion and how it was obtained.

Per coordinate i of the parameter (diagonal noise across coordinates), the SDE is

    dS = b(S, g, t) dt + G(S, g, t) dW,    S = (x, m, v, ...),  W a vector of independent
                                            Brownian motions (one column of G per source),

with g the true gradient coordinate d_i f(x). The bias-correction factors gamma_j(t) = 1 -
exp(-rho_j t) are kept as symbols in ``drift`` and ``diffusion`` (their definitions are in
``time_functions``); :meth:`SDE.explicit` substitutes them.

What a simulator of the SDE needs beyond b and G (reference sections 11 and 12):

* ``clock``: the SDE time after optimizer step k, k*eta (one step is dt = eta), or k*eta**2 on the
  clock of an accumulator (AdaGrad); a simulator's step is ``clock`` at k = 1;
* ``state_map``: each SDE state that is not the optimizer's state of the same name, as an
  expression in the optimizer's states: x - c*m where a fast state m was eliminated (``eliminated``
  says which and why; the SDE has no m), eta**2*s for an accumulator on the eta**2 clock. A
  simulator starts the SDE at ``state_map`` of the optimizer's start, and compares the optimizer's
  ``state_map`` with the SDE's states (x - c*m = x + O(eta));
* ``hessian_noise``: noise through the Hessian (USAM): state s also moves by
  coefficients[s] * hvp(vector), with vector written in the Brownian increments dW1, dW2, ... of the
  diffusion's columns: one Hessian-vector product of a random vector per step;
* gradients at another point, ``gradf(P)`` in the drift (:class:`derive.points.gradf`): coordinate i
  of grad f at the point whose coordinates are P (schedule-free SGD's Y = (1 - beta) Z + beta X);
* ``defined_for`` (e.g. 't > 0', a coefficient 1/t from a step-count factor 1/(k + 1)) and ``start``:
  the SDE time at which a simulator starts (0, or one step when the SDE is singular at t = 0 from
  the optimizer's initial state, AdaGrad from V(0) = 0) and from which state (the optimizer's initial
  state, or its state after that many steps), with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sympy as sp

from . import symbols as S


#: the Brownian increment of column j, as the vector of a Hessian-noise term writes it
def brownian(j: int) -> sp.Symbol:
    """dW_j (j from 1), the increment of the j-th Brownian motion (column j of the diffusion)."""
    return sp.Symbol(f"dW{j}", real=True)


def clock_text(clock: sp.Expr) -> str:
    """The clock as the header and JSON write it: k*eta, k*eta**2."""
    return f"k*{clock / S.k}"


def _leading(expr: sp.Expr, name: str) -> str:
    """``expr`` printed with the term that is the state ``name`` itself first (x - c*m, not -c*m + x)."""
    terms = sp.Add.make_args(expr)
    first = [t for t in terms if isinstance(t, sp.Symbol) and t.name == name]
    if not first or len(terms) == 1:
        return str(expr)
    rest = str(sp.Add(*[t for t in terms if t not in first]))
    return f"{name} - {rest[1:]}" if rest.startswith("-") else f"{name} + {rest}"


@dataclass(frozen=True)
class HessianNoise:
    """Noise through the Hessian H of f: state i also moves by ``coefficients[i] * hvp(vector)``,
    coordinate i of H times the vector whose coordinates are ``vector``, a linear form in the
    Brownian increments dW1, dW2, ... of the diffusion's columns (:func:`brownian`). USAM's
    sqrt(eta) (I + r H) sigma dW is the column sqrt(eta)*sigma of dW1 plus coefficient
    sqrt(eta)*r*sigma on hvp(dW1). Per step a simulator draws the increments, forms ``vector``,
    applies H once (one Hessian-vector product) and adds coefficients[i] times the result."""

    coefficients: tuple[sp.Expr, ...]
    vector: sp.Expr

    def __str__(self) -> str:
        return f"hvp({self.vector})"


@dataclass(frozen=True)
class Start:
    """Where a simulator starts the SDE: at SDE time ``time`` from the optimizer's state after
    ``steps`` of its steps (0: its initial state), mapped by ``SDE.state_map``; ``reason`` says why."""

    time: sp.Expr = sp.Integer(0)
    steps: int = 0
    reason: str = ""


@dataclass(frozen=True)
class SDE:
    """A derived SDE; ``diffusion`` has one row per state and one column per noise source."""

    optimizer: str
    noise: str
    regime: str
    form: str
    state: tuple[sp.Symbol, ...]
    drift: tuple[sp.Expr, ...]
    diffusion: sp.ImmutableMatrix
    time_functions: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)
    initial: dict[str, float] = field(default_factory=dict)
    conditions: tuple[str, ...] = ()
    provenance: tuple[str, ...] = ()
    noise_type: str = "diagonal across coordinates; general within a coordinate"
    #: auxiliary states whose same-step (expected new) value the x drift already contains; an
    #: integrator that updates auxiliary states before x must give x their old values
    same_step: tuple[str, ...] = ()
    #: weak order: 1, or 2 (derive.order2: drift b0 + eta b1, b1 in ``correction``, the Hessian
    #: entering through hvp(u) = H u)
    order: int = 1
    correction: tuple[sp.Expr, ...] = ()
    #: the curvature lambda when the SDE is written on the diagonal quadratic (g = lambda x)
    curvature: sp.Expr | None = None
    #: the SDE time after optimizer step k: k*eta, or k*eta**2 on an accumulator's clock
    clock: sp.Expr = S.k * S.eta
    #: SDE state name -> its expression in the optimizer's states, where they differ
    state_map: dict[str, sp.Expr] = field(default_factory=dict)
    #: optimizer states that the SDE does not have -> why (a fast state, eliminated)
    eliminated: dict[str, str] = field(default_factory=dict)
    #: noise through the Hessian (USAM), one Hessian-vector product of a random vector per step
    hessian_noise: HessianNoise | None = None
    #: where the coefficients are defined, when not for every t >= 0 (e.g. "t > 0")
    defined_for: str = ""
    #: where a simulator starts the SDE
    start: Start = field(default_factory=Start)

    # -- access -----------------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.state)

    @property
    def noise_sources(self) -> int:
        """Number of Brownian motions per coordinate (columns of the diffusion)."""
        return self.diffusion.shape[1]

    def drift_of(self, name: str) -> sp.Expr:
        return self.drift[self.state_names.index(name)]

    def covariance(self) -> sp.Matrix:
        """G G^T, the instantaneous covariance per unit time of each coordinate (without the noise
        through the Hessian, ``hessian_noise``, which correlates coordinates)."""
        return (self.diffusion * self.diffusion.T).applyfunc(sp.simplify)

    @property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        """Hyperparameters and noise parameters the SDE depends on (not states, g or t)."""
        exprs = [self.explicit(e) for e in (*self.drift, *self.diffusion, *self._hessian_exprs())]
        free = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
        free -= set(self.state) | {S.g, S.t} | {brownian(j + 1) for j in range(self.noise_sources)}
        return tuple(sorted(free, key=lambda s: s.name))

    def _hessian_exprs(self) -> tuple[sp.Expr, ...]:
        return () if self.hessian_noise is None else (*self.hessian_noise.coefficients, self.hessian_noise.vector)

    @property
    def time_dependent(self) -> bool:
        exprs = [self.explicit(e) for e in (*self.drift, *self.diffusion, *self._hessian_exprs())]
        return any(e.has(S.t) for e in exprs)

    @property
    def default_clock(self) -> bool:
        """Whether one optimizer step is dt = eta (t = k*eta)."""
        return self.clock == S.k * S.eta

    def _notes(self) -> list[str]:
        """The text lines of the new descriptors (none for an SDE that has none of them)."""
        from .points import gradf, hvp

        lines = [f"  eliminated: {name}: {why}" for name, why in self.eliminated.items()]
        lines += [
            f"  state {name} of the SDE stands for {_leading(value, name)} of the optimizer"
            for name, value in self.state_map.items()
        ]
        if self.defined_for:
            lines.append(f"  defined for {self.defined_for}")
        if self.start.reason:
            lines.append(f"  start: t = {self.start.time}: {self.start.reason}")
        exprs = (*self.drift, *self.diffusion, *self._hessian_exprs())
        if self.hessian_noise is not None or (
            self.order == 1 and self.curvature is None and any(e.has(hvp) for e in exprs)
        ):
            lines.append("  hvp(u) = H u: coordinate i of the Hessian of f times the vector whose coordinates are u")
        if any(sp.sympify(e).has(gradf) for e in exprs):
            lines.append("  gradf(P): coordinate i of the gradient of f at the point whose coordinates are P")
        return lines

    def explicit(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the bias-correction symbols gamma_j replaced by their functions of t."""
        return sp.sympify(expr).xreplace(self.time_functions)

    # -- output forms -----------------------------------------------------------------------
    def _rows(self) -> list[tuple[str, sp.Expr, list[sp.Expr]]]:
        return [(n, self.drift[i], list(self.diffusion.row(i))) for i, n in enumerate(self.state_names)]

    def _hessian_term(self, i: int) -> sp.Expr:
        return sp.Integer(0) if self.hessian_noise is None else self.hessian_noise.coefficients[i]

    def to_text(self) -> str:
        head = f"SDE of {self.optimizer} | noise {self.noise} | regime {self.regime} | form {self.form}"
        head += "" if self.default_clock else f" | clock t = {clock_text(self.clock)}"
        lines = [head + (f" | order {self.order}" if self.order != 1 else "")]
        for i, (name, b, row) in enumerate(self._rows()):
            terms = [f"({e}) dW{j + 1}" for j, e in enumerate(row) if e != 0]
            if self._hessian_term(i) != 0:
                terms.append(f"({self._hessian_term(i)}) {self.hessian_noise}")
            noise = " + ".join(terms)
            lines.append(f"  d{name} = ({b}) dt" + (f" + {noise}" if noise else ""))
        for gamma, value in self.time_functions.items():
            lines.append(f"  where {gamma} = {value}")
        if self.conditions:
            lines.append("  valid for: " + ", ".join(self.conditions))
        if self.curvature is not None:
            lines.append(f"  on f = {self.curvature}*x**2/2 per coordinate (g = {self.curvature}*x)")
        elif self.order != 1:
            lines.append("  hvp(u) = H u: coordinate i of the Hessian of f times the vector whose coordinates are u")
        lines += self._notes()
        lines.append(f"  noise sources per coordinate: {self.noise_sources}; g = d_i f(x), the true gradient")
        return "\n".join(lines)

    def to_latex(self) -> str:
        def tex(expr: sp.Expr) -> str:
            names = {s: r"\varepsilon" for s in sp.sympify(expr).free_symbols if s.name == "eps"}
            return sp.latex(expr, symbol_names=names)

        rows = []
        for i, (name, b, row) in enumerate(self._rows()):
            terms = [f"\\left({tex(e)}\\right) dW_{{{j + 1}}}" for j, e in enumerate(row) if e != 0]
            if self._hessian_term(i) != 0:
                vector = self.hessian_noise.vector.xreplace(
                    {brownian(j + 1): sp.Symbol(f"dW_{j + 1}") for j in range(self.noise_sources)}
                )
                terms.append(
                    f"\\left({tex(self._hessian_term(i))}\\right) \\operatorname{{hvp}}\\left({tex(vector)}\\right)"
                )
            noise = " + ".join(terms)
            rows.append(f"d{tex(sp.Symbol(name))} &= \\left({tex(b)}\\right) dt" + (f" + {noise}" if noise else ""))
        body = " \\\\\n".join(rows)
        where = ", ".join(f"{tex(g)} = {tex(v)}" for g, v in self.time_functions.items())
        return (
            "\\begin{aligned}\n" + body + "\n\\end{aligned}" + (f"\n\\quad \\text{{where }} {where}" if where else "")
        )

    def to_dict(self) -> dict:
        """JSON-ready: strings that ``sympy.sympify`` parses (gamma_j written out in t)."""
        return {
            "optimizer": self.optimizer,
            "noise": self.noise,
            "regime": self.regime,
            "form": self.form,
            "state": list(self.state_names),
            "drift": {n: str(self.explicit(b)) for n, b, _ in self._rows()},
            "diffusion": [[str(self.explicit(e)) for e in row] for _, _, row in self._rows()],
            "parameters": [p.name for p in self.parameters],
            "noise_sources": self.noise_sources,
            "time_dependent": self.time_dependent,
            "initial": self.initial,
            "conditions": list(self.conditions),
            "same_step": list(self.same_step),
            "order": self.order,
            **(
                {
                    "correction": {
                        n: str(self.explicit(b)) for n, b in zip(self.state_names, self.correction, strict=False)
                    }
                }
                if self.correction
                else {}
            ),
            **({"curvature": str(self.curvature)} if self.curvature is not None else {}),
            "clock": clock_text(self.clock),
            **self._new_keys(),
            "provenance": list(self.provenance),
        }

    def _new_keys(self) -> dict:
        """The JSON keys of the descriptors that apply to this SDE (absent where they do not)."""
        out: dict = {}
        if self.eliminated:
            out["eliminated"] = dict(self.eliminated)
        if self.state_map:
            out["state_map"] = {n: str(v) for n, v in self.state_map.items()}
        if self.hessian_noise is not None:
            out["hessian_noise"] = {
                "vector": str(self.hessian_noise.vector),
                "coefficients": {
                    n: str(self.explicit(c))
                    for n, c in zip(self.state_names, self.hessian_noise.coefficients, strict=True)
                },
            }
        if self.defined_for:
            out["defined_for"] = self.defined_for
        if self.start.reason:
            out["start"] = {"time": str(self.start.time), "steps": self.start.steps, "reason": self.start.reason}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def format(self, fmt: str) -> str:
        """The SDE as 'text', 'latex' or 'json'."""
        from .errors import UnknownNameError

        writers = {"text": self.to_text, "latex": self.to_latex, "json": self.to_json}
        if fmt not in writers:
            raise UnknownNameError("format", fmt, list(writers))
        return writers[fmt]()

    def __str__(self) -> str:
        return self.to_text()
