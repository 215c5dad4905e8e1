"""The SDE object: state, drift, diffusion and how it was obtained.

Per coordinate i of the parameter (diagonal noise across coordinates), the SDE is

    dS = b(S, g, t) dt + G(S, g, t) dW,    S = (x, m, v, ...),  W a vector of independent
                                            Brownian motions (one column of G per source),

with g the true gradient coordinate d_i f(x). The bias-correction factors gamma_j(t) = 1 -
exp(-rho_j t) are kept as symbols in ``drift`` and ``diffusion`` (their definitions are in
``time_functions``); :meth:`SDE.explicit` substitutes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sympy as sp

from . import symbols as S


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
        """G G^T, the instantaneous covariance per unit time."""
        return (self.diffusion * self.diffusion.T).applyfunc(sp.simplify)

    @property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        """Hyperparameters and noise parameters the SDE depends on (not states, g or t)."""
        exprs = [self.explicit(e) for e in (*self.drift, *self.diffusion)]
        free = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
        free -= set(self.state) | {S.g, S.t}
        return tuple(sorted(free, key=lambda s: s.name))

    @property
    def time_dependent(self) -> bool:
        exprs = [self.explicit(e) for e in (*self.drift, *self.diffusion)]
        return any(e.has(S.t) for e in exprs)

    def explicit(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with the bias-correction symbols gamma_j replaced by their functions of t."""
        return sp.sympify(expr).xreplace(self.time_functions)

    # -- output forms -----------------------------------------------------------------------
    def _rows(self) -> list[tuple[str, sp.Expr, list[sp.Expr]]]:
        return [(n, self.drift[i], list(self.diffusion.row(i))) for i, n in enumerate(self.state_names)]

    def to_text(self) -> str:
        head = f"SDE of {self.optimizer} | noise {self.noise} | regime {self.regime} | form {self.form}"
        lines = [head + (f" | order {self.order}" if self.order != 1 else "")]
        for name, b, row in self._rows():
            noise = " + ".join(f"({e}) dW{j + 1}" for j, e in enumerate(row) if e != 0)
            lines.append(f"  d{name} = ({b}) dt" + (f" + {noise}" if noise else ""))
        for gamma, value in self.time_functions.items():
            lines.append(f"  where {gamma} = {value}")
        if self.conditions:
            lines.append("  valid for: " + ", ".join(self.conditions))
        if self.curvature is not None:
            lines.append(f"  on f = {self.curvature}*x**2/2 per coordinate (g = {self.curvature}*x)")
        elif self.order != 1:
            lines.append("  hvp(u) = H u: coordinate i of the Hessian of f times the vector whose coordinates are u")
        lines.append(f"  noise sources per coordinate: {self.noise_sources}; g = d_i f(x), the true gradient")
        return "\n".join(lines)

    def to_latex(self) -> str:
        def tex(expr: sp.Expr) -> str:
            names = {s: r"\varepsilon" for s in sp.sympify(expr).free_symbols if s.name == "eps"}
            return sp.latex(expr, symbol_names=names)

        rows = []
        for name, b, row in self._rows():
            noise = " + ".join(f"\\left({tex(e)}\\right) dW_{{{j + 1}}}" for j, e in enumerate(row) if e != 0)
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
            "provenance": list(self.provenance),
        }

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
