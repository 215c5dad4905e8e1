"""The schema of `derive check`'s table (:mod:`derive.theory.check_table`), and how an entry
becomes its rows.

A case is one simulation setup and the rows it feeds. Two kinds, and the one-off checks:

* :class:`StationaryCase`: the discrete optimizer (a :class:`~derive.combination.Combination`)
  on f = sum_j lambda_j x_j^2/2 at one eta, sigma and set of hyperparameters; its mean stationary
  loss (:func:`derive.theory.montecarlo.stationary_loss`) is compared with one or more derived
  predictions, one row each (:class:`Prediction`). A prediction names a :class:`Law` (a derived
  result of :mod:`derive.theory.stationary` and which of its quantities is compared), its expected
  verdict and its :class:`Mutant` s: the same derivation with a deliberate error put in (a number
  changed, such as sigma doubled or theta dropped, or another derived law in its place).
* :class:`SdeGapCase`: the optimizer against its own SDE, both simulated, at two step sizes 4x
  apart (the rows of the newer built-ins; the method is in the class's docstring);
* :class:`OneOff`: a check that fits neither, a function of the sizes that builds its own rows.

Every number a prediction is evaluated at comes from the case: eta, sigma, the curvatures and the
hyperparameters (PyTorch names), turned into the SDE's symbols (rates rho = (1 - beta)/eta, ...)
by :func:`derive.theory.evaluate.parameter_values`. Each entry's ``rows(sim)`` builds its rows from
the entry and a :class:`~derive.theory.rows.Sim` alone; the seed is ``sim.seed + seed`` of the
entry, so the numbers do not depend on which entries run, or in which order or process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import sympy as sp

from ..combination import Combination
from .evaluate import parameter_values, substitute
from .exact import exact_stationary
from .montecarlo import sde_loss, stationary_loss, stationary_pair
from .quadratic import NoStationaryLawError, curvature
from .rows import Row, Sim
from .stationary import StationaryResult, stationary
from .stationary_order2 import StationaryComparison, linear_chain, stationary_comparison

#: the momentum laws of Adam(W) (:class:`derive.theory.momentum.MomentumLaws`) by quantity name
MOMENTUM = ("full", "lemma", "published")
#: burn-in rule: max(Sim.burn, this many relaxation times of the linearised SDE of the case's first law)
RELAXATION_TIMES = 6.0


# ---- derived predictions ------------------------------------------------------------------
@dataclass(frozen=True)
class Law:
    """A derived stationary expected loss on the quadratic model, summed over the curvatures.

    ``quantity`` says which one, of the law of ``combination`` (optimizer, noise, nu, regime, form):

    * ``linearised``: E f of the linearised SDE (Lyapunov equation);
    * ``exact``: E f of the exact stationary density of a one-state SDE (quadrature);
    * ``full``, ``lemma``, ``published``: lambda Var x / 2 of Adam(W)'s momentum laws;
    * ``chain``: lambda Var x / 2 of the discrete chain itself, exact in eta where it is linear with
      additive noise on the quadratic (discrete Lyapunov equation,
      :func:`derive.theory.stationary_order2.linear_chain`: PyTorch momentum, Nesterov, SGD);
    * ``order2:NAME``: lambda Var x / 2 with NAME one of the variances of
      :func:`derive.theory.stationary_order2.stationary_comparison` (``chain``, ``order 1``,
      ``order 2 (order-1 diffusion)``, ``order 2 + stationary diffusion``);
    * ``without:hessian-noise``: E f of the linearised SDE with its noise through the Hessian dropped
      (USAM's diffusion sqrt(eta) sigma instead of sqrt(eta) (I + r H) sigma: a mutant).

    ``absent_is_infinite``: where the derivation proves that no finite stationary mean exists
    (:class:`~derive.theory.quadratic.NoStationaryLawError`), predict +inf instead of raising.
    """

    combination: Combination
    quantity: str = "linearised"
    absent_is_infinite: bool = False

    def result(self) -> StationaryResult:
        c = self.combination
        return stationary(c.optimizer, c.noise, c.form, nu=c.nu, regime=c.regime)

    def value(self, lam: tuple[float, ...], numbers: dict[str, float]) -> float:
        """The prediction summed over the curvatures ``lam``, at ``numbers`` (values by symbol name)."""
        kind, _, name = self.quantity.partition(":")
        if kind == "order2":
            derived = comparison(self.combination)
            variance = derived.variances[name]
            values = {s: numbers[s.name] for s in variance.free_symbols if s.name in numbers}
            return sum(float(lj / 2 * variance.xreplace({**values, derived.curvature: lj})) for lj in lam)
        if kind == "without":
            return law_loss(without_hessian_noise(self.result(), name), lam, **numbers)
        if kind == "chain":
            return law_loss(chain_variance(self.combination), lam, **numbers)
        try:
            result = self.result()
            if kind == "linearised":
                return linearised_loss(result, lam, **numbers)
            if kind == "exact":
                return exact_loss(result, lam, **numbers)
        except NoStationaryLawError:
            if self.absent_is_infinite:
                return math.inf
            raise
        if kind in MOMENTUM:
            return law_loss(getattr(result.momentum, kind), lam, **numbers)
        raise ValueError(
            f"unknown quantity {self.quantity!r}: linearised, exact, chain, {', '.join(MOMENTUM)}, order2:NAME or without:NAME"
        )

    def formulas(self) -> dict[str, str]:
        """Texts for a row's ``symbolic`` template: ``formula`` (this quantity per coordinate) and
        ``expected_loss`` (E f of the linearised SDE per coordinate)."""
        kind, _, name = self.quantity.partition(":")
        if kind == "order2":
            return {"formula": str(sp.factor(comparison(self.combination).variances[name]))}
        if kind == "without":
            return {"formula": f"lambda/2 * {sp.factor(without_hessian_noise(self.result(), name))}"}
        if kind == "chain":
            return {"formula": str(chain_variance(self.combination))}
        try:
            result = self.result()
        except NoStationaryLawError:
            return {"formula": "no stationary law", "expected_loss": "oo"}
        texts = {"expected_loss": str(result.expected_loss)}
        if kind == "exact":
            texts["formula"] = "exact law of the SDE (quadrature)"
        elif kind in MOMENTUM:
            texts["formula"] = str(getattr(result.momentum, kind))
        else:
            texts["formula"] = texts["expected_loss"]
        return texts

    def relaxation_time(self, lam: tuple[float, ...], numbers: dict[str, float]) -> float:
        """1 / the slowest decay rate of the linearised drift A over the curvatures (SDE time)."""
        A = self.result().model.A
        slowest = math.inf
        for lj in lam:
            values = np.array(substitute(A.xreplace({curvature: lj}), numbers).evalf(), dtype=float)
            slowest = min(slowest, float(np.min(-np.linalg.eigvals(values).real)))
        return 1.0 / slowest


@lru_cache(maxsize=32)
def comparison(combination: Combination) -> StationaryComparison:
    """:func:`derive.theory.stationary_order2.stationary_comparison` of ``combination``, once per process."""
    return stationary_comparison(combination.optimizer, combination.noise, nu=combination.nu)


@lru_cache(maxsize=32)
def chain_variance(combination: Combination) -> sp.Expr:
    """The discrete chain's stationary Var x on f = lambda x^2/2, exact in eta (discrete Lyapunov
    equation of :func:`derive.theory.stationary_order2.linear_chain`), once per process."""
    chain = linear_chain(combination.optimizer, combination.noise, nu=combination.nu)
    return sp.factor(chain.covariance[0, 0])


def linearised_loss(result: StationaryResult, lam, **numbers: float) -> float:
    """Sum over coordinates of E f_j of the linearised SDE (Lyapunov equation)."""
    return sum(float(substitute(result.expected_loss.xreplace({curvature: sp.Float(lj)}), numbers)) for lj in lam)


def law_loss(var_x: sp.Expr, lam, **numbers: float) -> float:
    """Sum over coordinates of lam_j Var x_j / 2 for a stationary Var x expression."""
    return sum(lj / 2 * float(substitute(var_x.xreplace({curvature: sp.Float(lj)}), numbers)) for lj in lam)


def without_hessian_noise(result: StationaryResult, what: str) -> sp.Expr:
    """Var x of the linearised SDE of ``result`` with its noise through the Hessian dropped (``what``:
    ``hessian-noise``, the only term this mutant removes), by the same Lyapunov equation."""
    from .quadratic import linearize, lyapunov

    if what != "hessian-noise" or result.sde.hessian_noise is None:
        raise ValueError(f"without:{what}: only 'hessian-noise' of an SDE that has noise through the Hessian")
    model = linearize(replace(result.sde, hessian_noise=None), curvature)
    return sp.simplify(lyapunov(model.A, model.B)[0, 0])


def exact_loss(result: StationaryResult, lam, **numbers: float) -> float:
    """Sum over coordinates of E f_j of the exact stationary density of a one-state SDE."""
    return sum(exact_stationary(result.sde, lj, numbers).expected_loss for lj in lam)


@dataclass(frozen=True)
class Mutant:
    """A deliberately wrong prediction that the row must reject: the row's law (or ``law``) at the
    case's numbers with ``times`` multiplied in and ``values`` put in (e.g. sigma doubled:
    ``times={"sigma": 2.0}``; theta dropped: ``values={"theta": 0.0}``)."""

    name: str
    law: Law | None = None
    times: dict[str, float] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    def value(self, law: Law, lam: tuple[float, ...], numbers: dict[str, float]) -> float:
        changed = {**numbers, **{k: numbers[k] * f for k, f in self.times.items()}, **self.values}
        return (self.law or law).value(lam, changed)


@dataclass(frozen=True)
class Outcome:
    """What a note is written from: the case's numbers, the simulation's estimate and SE, and the
    values of every prediction of the case by quantity; ``quantity`` is the row's own."""

    case: StationaryCase
    numbers: dict[str, float]
    estimate: float
    se: float
    values: dict[str, float]
    quantity: str

    @property
    def predicted(self) -> float:
        return self.values[self.quantity]


@dataclass(frozen=True)
class Prediction:
    """One row of a :class:`StationaryCase`: the simulated estimate against ``law``.

    ``expect``: True (must agree within 4 SE), False (must be rejected: the gap resolved), None
    (shown without a verdict). ``symbolic``: the text shown as the formula, a template with the
    fields of :meth:`Law.formulas` and ``coordinates`` (the number of curvatures). ``note``: a
    footnote, or a function of the :class:`Outcome` for one that quotes results.
    """

    name: str
    law: Law
    expect: bool | None = True
    mutants: tuple[Mutant, ...] = ()
    symbolic: str = "{formula}"
    note: str | Callable[[Outcome], str] = ""
    series: str = ""
    x: float = math.nan


# ---- entries of the table ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StationaryCase:
    """The mean stationary loss of the discrete optimizer ``combination`` on sum_j lam_j x_j^2/2
    against each of ``predictions``.

    Sizes, relative to the :class:`~derive.theory.rows.Sim`: paths max(sim.paths, ``min_paths``),
    seed sim.seed + ``seed``, the window sim.window after a burn-in of ``burn``: ``relaxation``
    (max(sim.burn, 6 relaxation times of the first prediction's linearised SDE)), ``sim``
    (sim.burn) or a number b (max(sim.burn, b)), all in SDE time.
    """

    check: str
    combination: Combination
    predictions: tuple[Prediction, ...]
    eta: float
    sigma: float = 1.0
    hyper: dict[str, float] = field(default_factory=dict)
    lam: tuple[float, ...] = (1.0, 4.0)
    seed: int = 0
    burn: str | float = "relaxation"
    min_paths: int = 0

    @property
    def label(self) -> str:
        return self.predictions[0].name

    def __post_init__(self) -> None:
        quantities = [p.law.quantity for p in self.predictions]
        if not quantities or len(set(quantities)) != len(quantities):
            raise ValueError(f"{self.check}: a case needs predictions of distinct quantities, got {quantities}")

    @property
    def numbers(self) -> dict[str, float]:
        """The SDE's symbols by name (eta, sigma, each rate rho, eps, theta) at this case's values."""
        return parameter_values(self.combination.optimizer, self.eta, self.sigma, self.hyper)

    def rows(self, sim: Sim) -> list[Row]:
        numbers, first = self.numbers, self.predictions[0].law
        burn = _burn(self.burn, sim, lambda: first.relaxation_time(self.lam, numbers))
        estimate, se = stationary_loss(
            self.combination.optimizer,
            list(self.lam),
            self.eta,
            self.sigma,
            replace(sim, seed=sim.seed + self.seed, paths=max(sim.paths, self.min_paths)),
            noise=self.combination.noise,
            nu=self.combination.nu,
            hyper=self.hyper or None,
            burn=burn,
        )
        values = {p.law.quantity: p.law.value(self.lam, numbers) for p in self.predictions}
        rows = []
        for p in self.predictions:
            q = p.law.quantity
            rows.append(
                Row(
                    p.name,
                    p.symbolic.format(coordinates=len(self.lam), **p.law.formulas()),
                    values[q],
                    estimate,
                    se,
                    0.0,
                    p.note(Outcome(self, numbers, estimate, se, values, q)) if callable(p.note) else p.note,
                    expect_equal=p.expect,
                    series=p.series,
                    x=p.x,
                    mutants={m.name: m.value(p.law, self.lam, numbers) for m in p.mutants},
                )
            )
        return rows


def _burn(rule: str | float, sim: Sim, relaxation: Callable[[], float]) -> float:
    if rule == "sim":
        return sim.burn
    if rule == "relaxation":
        return max(sim.burn, RELAXATION_TIMES * relaxation())
    return max(sim.burn, float(rule))


@dataclass(frozen=True)
class SdeGapCase:
    """The optimizer ``combination`` against its own SDE, both simulated (independent streams, so
    the SEs add in quadrature), at the two steps ``etas`` (4x apart), with the rates rho = (1 -
    beta)/eta of ``rates`` and every other hyperparameter (``hyper``) held fixed.

    An order-1 SDE differs from its optimizer by a true O(eta) bias. The stationary loss is itself
    of order eta, so that bias is O(eta) relative to it: the relative gap r(eta) = (L_opt -
    L_sde)/L_sde shrinks like eta. Rows:

    * larger step: the gap with its SE, shown without a verdict;
    * smaller step, when the gap is resolved (> 4 SE) at the larger step: the gap shrinks like eta,
      i.e. the measured gap equals r(eta_large) (eta_small/eta_large) L_sde(eta_small) within 4 SE
      (both SEs propagated); its mutant: a gap that does not shrink (the same relative gap at both
      steps);
    * otherwise: the SDE agrees with the optimizer within 4 SE at the smaller step, and the note
      prints the largest O(eta) bias compatible with the larger step (|gap| + 4 SE there, scaled by
      the step ratio) beside the resolution 4 SE; its mutant: the SDE simulated with sigma
      ``mutant_sigma`` times too large (one more SDE run at the smaller step, on the same seed).

    Seeds sim.seed + ``seed`` + the step's index; paths max(sim.paths, ``min_paths``); burn-in
    ``burn`` as in :class:`StationaryCase` (``sim`` or a number). ``sde_sigma_scale`` != 1 simulates
    a deliberately wrong SDE (mutation tests). A user optimizer whose file is not installed gives
    one row without a verdict.
    """

    check: str
    label: str
    combination: Combination
    sigma: float = 1.0
    hyper: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    lam: tuple[float, ...] = (1.0, 4.0)
    etas: tuple[float, float] = (0.04, 0.01)
    seed: int = 0
    burn: str | float = "sim"
    mutant_sigma: float = 1.1
    sde_sigma_scale: float = 1.0
    min_paths: int = 0

    def hyper_at(self, eta: float) -> dict[str, float]:
        """The hyperparameters at step ``eta``: beta = 1 - eta rho for each rate, the rest fixed."""
        return {**self.hyper, **{name: 1.0 - eta * rho for name, rho in self.rates.items()}}

    def rows(self, sim: Sim) -> list[Row]:
        optimizer = str(self.combination.optimizer)
        if ".py:" in optimizer and not Path(optimizer.rpartition(":")[0]).is_file():
            return [
                Row(
                    self.label,
                    "examples/ not installed",
                    math.nan,
                    math.nan,
                    math.inf,
                    0.0,
                    "skipped: run from a checkout of the repository",
                    expect_equal=None,
                )
            ]
        burn, lam = _burn(self.burn, sim, _no_relaxation), list(self.lam)
        sim = replace(sim, paths=max(sim.paths, self.min_paths))
        measured = []
        for i, eta in enumerate(self.etas):
            (opt, opt_se), (sde, sde_se) = stationary_pair(
                self.combination,
                lam,
                eta,
                self.sigma,
                replace(sim, seed=sim.seed + self.seed + i),
                burn,
                self.hyper_at(eta),
                self.sde_sigma_scale,
            )
            measured.append((opt, sde, math.hypot(opt_se, sde_se)))
        (opt_l, sde_l, se_l), (opt_s, sde_s, se_s) = measured
        (eta_l, eta_s), label = self.etas, self.label
        ratio = eta_s / eta_l
        gap_l, gap_s = opt_l - sde_l, opt_s - sde_s
        rows = [
            Row(
                f"{label}: stationary loss, SDE vs optimizer, eta={eta_l}",
                "E f of the SDE (simulated)",
                sde_l,
                opt_l,
                se_l,
                0.0,
                f"O(eta) bias at eta={eta_l}: {gap_l:+.3g} = {abs(gap_l) / se_l:.1f} SE "
                f"({gap_l / sde_l:+.1%} of the loss); shown, no verdict",
                expect_equal=None,
                series=label,
                x=eta_l,
            )
        ]
        if abs(gap_l) > 4 * se_l:  # the bias is resolved at the larger step: test how it scales
            expected = gap_l / sde_l * ratio * sde_s
            spread = se_l / sde_l * ratio * sde_s
            rows.append(
                Row(
                    f"{label}: the SDE-optimizer gap shrinks like eta ({eta_l} -> {eta_s})",
                    f"gap({eta_s}) = gap({eta_l})/L_sde({eta_l}) x {ratio:g} x L_sde({eta_s})",
                    expected,
                    gap_s,
                    math.hypot(se_s, spread),
                    0.0,
                    f"relative gap {gap_l / sde_l:+.1%} -> {gap_s / sde_s:+.1%} "
                    f"(expected {gap_l / sde_l * ratio:+.1%}); at eta={eta_s} the gap is {abs(gap_s) / se_s:.1f} SE",
                    series=label,
                    x=eta_s,
                    mutants={"a gap that does not shrink (same relative gap at both steps)": gap_l / sde_l * sde_s},
                )
            )
            return rows
        bound = (abs(gap_l) + 4 * se_l) / sde_l * ratio * sde_s
        below = bound < 4 * se_s
        wrong = sde_loss(
            self.combination,
            lam,
            eta_s,
            self.sigma * self.mutant_sigma * self.sde_sigma_scale,
            replace(sim, seed=sim.seed + self.seed + 1),
            burn,
            self.hyper_at(eta_s),
        )
        rows.append(
            Row(
                f"{label}: stationary loss, SDE vs optimizer, eta={eta_s}",
                "E f of the SDE (simulated)",
                sde_s,
                opt_s,
                se_s,
                0.0,
                f"O(eta) bias here at most {bound:.2g} (eta={eta_l}: |gap| + 4 SE, x {ratio:g} relative) "
                + (
                    f"< resolution 4 SE = {4 * se_s:.2g}: below resolution"
                    if below
                    else f">= resolution 4 SE = {4 * se_s:.2g}: the row cannot exclude it"
                ),
                series=label,
                x=eta_s,
                mutants={f"the SDE with sigma {100 * (self.mutant_sigma - 1):.0f}% too large (simulated)": wrong},
            )
        )
        return rows


def _no_relaxation() -> float:
    raise ValueError("an SdeGapCase has no derived law: its burn-in is 'sim' or a number")


@dataclass(frozen=True)
class OneOff:
    """A check that does not fit a case (its rows built by hand): ``function(sim) -> list[Row]``,
    given at least ``min_paths`` paths."""

    check: str
    function: Callable[[Sim], list[Row]]
    min_paths: int = 0

    @property
    def label(self) -> str:
        return self.check

    def rows(self, sim: Sim) -> list[Row]:
        return self.function(replace(sim, paths=max(sim.paths, self.min_paths)))


@dataclass(frozen=True)
class FiniteHorizonCase:
    """The optimizer ``combination`` against its own SDE, both simulated (independent streams), at a
    finite horizon: Var x_1 at SDE time ``horizon`` from the start x = ``x0`` (every coordinate) with
    the auxiliary states ``start`` (in the SDE's units) and ``opt_start`` (the optimizer's, the same
    quantities: AdaGrad's s = V/eta^2), on sum_j lam_j x_j^2/2 at step ``eta``. For the SDEs without a
    stationary law (AdaGrad's V grows like t, schedule-free SGD's 1/t coefficient).

    Var x carries the noise (the mean is the noise-free descent, the same to O(eta) in both): the row
    compares the optimizer's sample variance with the SDE's within 4 SE (each SE from the sample's
    fourth moment, (m4 - var^2)/N; the two add in quadrature); its mutant, simulated on the same seed:
    the SDE of ``mutant`` (another form, e.g. the published one without V's noise) or, with ``mutant``
    None, the SDE with sigma ``mutant_sigma`` times too large. The SDE is integrated with ``substeps``
    substeps of the optimizer's step. Seeds sim.seed + ``seed`` (+ 1 for the SDE runs); paths
    max(sim.paths, ``min_paths``)."""

    check: str
    label: str
    combination: Combination
    eta: float
    horizon: float
    x0: float = 1.0
    start: dict[str, float] = field(default_factory=dict)
    opt_start: dict[str, float] = field(default_factory=dict)
    sigma: float = 1.0
    hyper: dict[str, float] = field(default_factory=dict)
    lam: tuple[float, ...] = (1.0,)
    mutant: Combination | None = None
    mutant_label: str = ""
    mutant_sigma: float = 1.1
    substeps: int = 1
    seed: int = 0
    min_paths: int = 0
    note: str = ""

    def _states(self, names, values: dict[str, float], x0: np.ndarray, initial) -> np.ndarray | None:
        if not values:
            return None
        out = np.empty((len(names),) + x0.shape)
        out[0] = x0
        for i, name in enumerate(names[1:]):
            value = values.get(name, initial[i])
            out[1 + i] = x0 if value == "x" else value
        return out

    def _var(self, kind: str, combo: Combination, sigma: float, seed: int, paths: int) -> tuple[float, float]:
        """Var x_1 at the horizon and its SE, from the per-path states."""
        from ..simulate import clock_power, load_module, quadratic, run

        m = load_module(combo)
        x0 = np.full((paths, len(self.lam)), self.x0)
        sde = kind == "sde"
        start = (
            self._states(m.STATE, self.start, x0, m.SDE_INITIAL)
            if sde
            else self._states(m.OPT_STATE, self.opt_start, x0, m.OPT_INITIAL)
        )
        steps = max(1, round(self.horizon / self.eta ** clock_power(m)))
        r = run(
            kind, combo, x0, eta=self.eta, sigma=sigma, steps=steps, seed=seed, landscape=quadratic(list(self.lam)),
            hyper=self.hyper or None, record=[steps], keep=True, start=start, substeps=self.substeps if sde else 1,
        )  # fmt: skip
        x = r.path[-1, :, 0]
        centred = x - x.mean()
        var = float(centred.var(ddof=1))
        return var, math.sqrt(max(float((centred**4).mean()) - var**2, 0.0) / x.size)

    def rows(self, sim: Sim) -> list[Row]:
        import time

        started = time.perf_counter()
        paths = max(sim.paths, self.min_paths)
        seed = sim.seed + self.seed
        opt, opt_se = self._var("optimizer", self.combination, self.sigma, seed, paths)
        sde, sde_se = self._var("sde", self.combination, self.sigma, seed + 1, paths)
        if self.mutant is not None:
            wrong, _ = self._var("sde", self.mutant, self.sigma, seed + 1, paths)
            name = self.mutant_label or f"the {self.mutant.form} SDE (simulated)"
        else:
            wrong, _ = self._var("sde", self.combination, self.sigma * self.mutant_sigma, seed + 1, paths)
            name = f"the SDE with sigma {100 * (self.mutant_sigma - 1):.0f}% too large (simulated)"
        se = math.hypot(opt_se, sde_se)
        return [
            Row(
                f"{self.label}: Var x at t={self.horizon:g}, SDE vs optimizer, eta={self.eta:g}",
                "Var x of the SDE (simulated)",
                sde,
                opt,
                se,
                time.perf_counter() - started,
                f"{self.note}{'; ' if self.note else ''}gap {100 * (opt / sde - 1):+.1f}% = {abs(opt - sde) / se:.1f} SE "
                f"(the O(eta) bias and noise; resolution {400 * se / sde:.1f}%); mutant {100 * (wrong / sde - 1):+.0f}%",
                series=self.label,
                x=self.eta,
                mutants={name: wrong},
            )
        ]
