"""The positive control of the minibatch validation: linear least squares near its minimum.

Started at x* (where the full-batch reference stays, so the distance observable is |x - x*|^2), the
real SGD on minibatches and the SDE variants (:func:`derive.validate.minibatch_validation.validate_minibatch`)
reach their stationary laws; per seed, the time average of |x - x*|^2 over the steps after
``burn`` estimates E|x - x*|^2 (independent across seeds: mean and standard error over seeds).
Known answers (:mod:`derive.validate.least_squares`):

* the SDEs' closed forms with Sigma frozen at Sigma*: tr C of ``minibatch-full``, ``minibatch-diag``
  and ``isotropic`` (:func:`control_closed_forms`), whose isotropic-to-full ratio is the factor the
  validation must resolve;
* what each simulation must give exactly, the O(eta) bias included: the SGD chain's tr P
  (:func:`discrete_second_moment`), and each variant integrated by Euler with step h = eta/substeps
  (:func:`scheme_second_moment`; at h = eta the full variant's equals the chain's). The bias,
  exact-for-the-scheme minus closed form, is printed beside each resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import ValidationInputError
from .least_squares import (
    ControlClosedForms,
    LeastSquares,
    control_closed_forms,
    rotated_least_squares,
    scheme_second_moment,
)
from .minibatch_sde import VARIANTS
from .minibatch_validation import MinibatchResult, validate_minibatch

#: the z-score (in standard errors) within which a simulated value agrees with its exact value
AGREEMENT_SE = 4.0


@dataclass
class StationaryEstimate:
    label: str
    mean: float
    se: float
    exact: float  #: what this simulation must give (the chain's, or the Euler scheme's, value)
    closed_form: float  #: the continuous SDE's closed form at Sigma* (the chain: the full model's)

    @property
    def z(self) -> float:
        """(mean - exact) / se."""
        return (self.mean - self.exact) / self.se if self.se > 0 else math.inf

    @property
    def bias(self) -> float:
        """exact - closed form: the O(eta) bias of the chain or of the scheme against the closed form."""
        return self.exact - self.closed_form

    @property
    def agrees(self) -> bool:
        return abs(self.z) <= AGREEMENT_SE

    def to_json(self) -> dict:
        return {
            "mean": self.mean,
            "se": self.se,
            "exact": self.exact,
            "closed_form": self.closed_form,
            "bias": self.bias,
            "z": self.z,
            "agrees": self.agrees,
        }


@dataclass
class ControlResult:
    closed: ControlClosedForms
    estimates: dict[str, StationaryEstimate]
    validation: MinibatchResult
    burn: int
    h: float

    def difference(self, a: str = "isotropic", b: str = "minibatch-full") -> tuple[float, float, bool]:
        """(E_a - E_b, its SE, resolved: the 95% interval excludes 0); independent runs."""
        ea, eb = self.estimates[a], self.estimates[b]
        value, se = ea.mean - eb.mean, math.hypot(ea.se, eb.se)
        return value, se, abs(value) > 1.96 * se

    def text(self) -> str:
        c = self.closed
        lines = [
            f"least squares at its minimum: d = {self.validation.dim}, eta {c.eta:g}, B {c.batch}, "
            f"{len(self.validation.seeds)} seeds, {self.validation.steps} steps ({self.burn} burned), "
            f"SDE step h = {self.h:g}",
            "stationary E|x - x*|^2 (time average per seed, SE over seeds); exact = the chain's or the Euler "
            "scheme's value; bias = exact - closed form (Sigma frozen at Sigma*), the O(eta) part",
            "",
            "| run | simulated +- SE | exact | z | closed form | bias | agrees (|z| <= 4) |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, e in self.estimates.items():
            lines.append(
                f"| {label} | {e.mean:.5g} +- {e.se:.2g} | {e.exact:.5g} | {e.z:+.2f} | {e.closed_form:.5g} | "
                f"{e.bias:+.2g} | {'yes' if e.agrees else 'NO'} |"
            )
        if {"isotropic", "minibatch-full"} <= set(self.estimates):
            value, se, resolved = self.difference()
            full, iso = self.estimates["minibatch-full"], self.estimates["isotropic"]
            ratio = iso.mean / full.mean
            ratio_se = ratio * math.hypot(iso.se / iso.mean, full.se / full.mean)
            lines += [
                "",
                f"isotropic - minibatch-full: {value:+.5g} +- {se:.2g} ({'resolved' if resolved else 'not resolved'}, "
                f"{abs(value) / se:.1f} SE); ratio {ratio:.3f} +- {ratio_se:.3f}, closed form {c.ratio:.3f} "
                f"(Euler scheme: {iso.exact / full.exact:.3f})",
            ]
        return "\n".join(lines)

    def to_json(self) -> dict:
        value, se, resolved = (
            self.difference() if {"isotropic", "minibatch-full"} <= set(self.estimates) else (None,) * 3
        )
        return {
            "closed_forms": self.closed.to_json(),
            "burn": self.burn,
            "h": self.h,
            "stationary_distance": {k: e.to_json() for k, e in self.estimates.items()},
            "isotropic_minus_full": {"value": value, "se": se, "resolved": resolved},
            "validation": self.validation.to_json(),
        }


def least_squares_control(
    ls: LeastSquares | None = None,
    *,
    eta: float = 0.2,
    batch: int = 2,
    seeds=range(16),
    steps: int = 600,
    burn: int = 150,
    substeps: int = 1,
    variants=("minibatch-full", "isotropic"),
    n_boot: int = 200,
    progress=None,
) -> ControlResult:
    """Run the control (module docstring) on ``ls`` (default: :func:`rotated_least_squares` with
    N = 64, curvatures 1 and 0.1, so the isotropic-to-full factor is 3.45)."""
    if ls is None:
        ls = rotated_least_squares(n=64, curvatures=(1.0, 0.1))
    if isinstance(burn, bool) or not isinstance(burn, (int, np.integer)) or not 0 <= burn < steps:
        raise ValidationInputError(f"burn must be an integer in [0, steps), got {burn!r}")
    x_star = ls.minimum
    result = validate_minibatch(
        ls.problem(),
        "sgd",
        batch=batch,
        eta=eta,
        steps=steps,
        seeds=seeds,
        variants=variants,
        substeps=substeps,
        replicate=False,
        x0=x_star,
        n_boot=n_boot,
        top=0,  # the control's observable is |x - x*|^2 itself
        progress=progress,
    )
    closed = control_closed_forms(ls, eta, batch)
    h = eta / substeps
    continuous = {"minibatch-full": closed.trace_full, "minibatch-diag": closed.trace_diag}
    continuous["isotropic"] = closed.trace_isotropic
    estimates = {}
    for label in ("optimizer", *[v for v in VARIANTS if v in variants]):
        per_seed = result.observables[label]["distance"][:, burn + 1 :].mean(axis=1)
        mean, se = float(per_seed.mean()), float(per_seed.std(ddof=1) / math.sqrt(per_seed.size))
        if label == "optimizer":
            exact, closed_form = closed.trace_discrete, closed.trace_full
        else:
            exact = float(np.trace(scheme_second_moment(ls, eta, batch, h, label)))
            closed_form = continuous[label]
        estimates[label] = StationaryEstimate(label, mean, se, exact, closed_form)
    return ControlResult(closed, estimates, result, burn, h)
