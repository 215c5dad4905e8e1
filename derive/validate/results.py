"""What a validation measured, and its text and JSON forms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .fidelity import Difference, Fidelity


@dataclass
class Trajectory:
    """Loss of one simulator at every recorded step (``loss[run, step]``, NaN after a divergence)."""

    label: str
    description: str
    loss: np.ndarray
    diverged: dict | None = None  #: {"step": k, "seed": s} of the first non-finite value
    seconds: float = 0.0

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return self.loss.mean(axis=0)

    @property
    def se(self) -> np.ndarray:
        n = self.loss.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):
            return self.loss.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(self.loss.shape[1])


@dataclass
class Result:
    """Everything one validation run measured; ``fidelity[label]`` for each SDE (and the replicate),
    ``differences`` between the SDEs (paired, so resolved or not)."""

    model: str
    optimizer: str
    noise: str
    eta: float
    sigma: float
    steps: int
    seeds: list[int]
    hyper: dict
    dim: int
    trajectories: dict[str, Trajectory]
    integrator: str = "euler, 1 substep of eta/1"
    coupled: bool = True
    fidelity: dict[str, Fidelity] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    record: np.ndarray | None = None  #: recorded step numbers (default: every step)
    unit: str = "seeds"  #: what the bands and the bootstrap run over (seeds, or paths on a quadratic)

    @property
    def step_numbers(self) -> np.ndarray:
        return np.arange(self.steps + 1) if self.record is None else np.asarray(self.record)

    def table(self) -> str:
        """The fidelity table (markdown): one row per SDE, the uncoupled optimizer replicate last."""
        lines = [
            f"SDEs integrated by {self.integrator}; "
            + ("coupled with the optimizer (shared noise), " if self.coupled else "independent noise, ")
            + f"fidelity = mean relative gap of the mean loss, +- its bootstrap SE over {self.unit} [95% interval]",
            "",
            "| compared with the optimizer | fidelity +- SE | 95% interval | final mean loss |",
            "|---|---|---|---|",
        ]
        ref = self.trajectories["optimizer"]
        lines.append(f"| optimizer ({ref.description}) | - | - | {_fmt(ref.mean[-1])} |")
        for label, fid in self.fidelity.items():
            t = self.trajectories[label]
            name = f"{label} ({t.description})" + (" DIVERGED" if t.diverged else "")
            ci = "n/a" if not math.isfinite(fid.low) else f"[{fid.low:.4f}, {fid.high:.4f}]"
            val = "n/a" if not math.isfinite(fid.value) else f"{fid.value:.4f} +- {fid.se:.4f}"
            lines.append(f"| {name} | {val} | {ci} | {_fmt(t.mean[-1])} |")
        if self.differences:
            lines += [
                "",
                "| difference of fidelities (paired) | value +- SE | 95% interval | resolved |",
                "|---|---|---|---|",
            ]
            for d in self.differences:
                ci = "n/a" if not math.isfinite(d.low) else f"[{d.low:.4f}, {d.high:.4f}]"
                lines.append(
                    f"| {d.a} - {d.b} | {d.value:+.4f} +- {d.se:.4f} | {ci} | {'yes' if d.resolved else 'no'} |"
                )
        return "\n".join(lines)

    def to_json(self) -> dict:
        def clean(a):
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]

        return {
            "model": self.model,
            "unit": self.unit,
            "recorded_steps": [int(k) for k in self.step_numbers],
            "optimizer": self.optimizer,
            "noise": self.noise,
            "eta": self.eta,
            "integrator": self.integrator,
            "coupled": self.coupled,
            "sigma": self.sigma,
            "steps": self.steps,
            "seeds": list(self.seeds),
            "hyper": self.hyper,
            "parameters": self.dim,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
            "fidelity": {k: v.to_json() for k, v in self.fidelity.items()},
            "differences": [d.to_json() for d in self.differences],
            "trajectories": {
                k: {
                    "description": t.description,
                    "diverged": t.diverged,
                    "seconds": round(t.seconds, 2),
                    "mean_loss": clean(t.mean),
                    "se_loss": clean(t.se),
                }
                for k, t in self.trajectories.items()
            },
        }


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"
