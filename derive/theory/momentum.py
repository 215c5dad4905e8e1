"""Three stationary laws of x for an optimizer with momentum (Adam(W)), side by side.

Each is the linearised stationary Var x on f = lambda x^2/2 (Lyapunov equation), derived from an
SDE object, and the factors between them are computed (cancelled quotients), not typed in:

* the **published SDE**: its x drift carries the same-step momentum, -(M + eta rho1 (g - M)) /
  (sqrt V + eps) in place of -M/(sqrt V + eps), without the noise that term would bring. For the
  linearised model (theta = 0) this scales Var x by beta1^2 P / (P + eta lambda), P = sigma + eps:
  about -19% at beta1 = 0.9. A lone O(eta) drift term is not a consistent correction (reference 8
  gives the consistent order-2 drift); the discrete optimizer does not follow this law;
* the **full SDE, momentum kept**: the Lyapunov equation of (x, m), Var x =
  eta rho1 sigma^2 / (2 P (rho1 + theta)(lambda + theta P)) for AdamW;
* the **paper's lemma form**: the rho1 -> oo limit of the full law (momentum eliminated),
  (eta/2)(H Sigma^-1/2 + theta)^-1 at eps = 0; equal to the full law when theta << rho1.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import symbols as S
from ..errors import DeriveError
from ..optimizers import get_optimizer
from .quadratic import NoStationaryLawError, linear_law


@dataclass(frozen=True)
class MomentumLaws:
    """Var x of the published SDE, of the full SDE (momentum kept) and its rho -> oo limit."""

    optimizer: str
    rate: sp.Symbol  #: the momentum rate rho1 = (1 - beta1)/eta
    full: sp.Expr | None
    lemma: sp.Expr | None
    published: sp.Expr | None
    missing: tuple[str, ...] = ()  #: why a law is absent (e.g. the full form needs a finite 4th moment)

    @property
    def beta(self) -> sp.Symbol:
        return sp.Symbol(self.rate.name.replace("rho", "beta"), positive=True)

    def _in_beta(self, expr: sp.Expr) -> sp.Expr:
        """expr with rho = (1 - beta)/eta, so that 1 - eta rho = beta appears."""
        return sp.factor(sp.simplify(expr.xreplace({self.rate: (1 - self.beta) / S.eta})))

    @property
    def published_over_full(self) -> sp.Expr | None:
        if self.published is None or self.full is None:
            return None
        return sp.factor(sp.cancel(self.published / self.full))

    @property
    def published_over_full_no_decay(self) -> sp.Expr | None:
        """The factor at theta = 0, written with beta: beta^2 P / (P + eta lambda) for Adam."""
        factor = self.published_over_full
        if factor is None:
            return None
        theta = [s for s in factor.free_symbols if s.name == "theta"]
        return self._in_beta(factor.xreplace({t: 0 for t in theta}))

    @property
    def full_over_lemma(self) -> sp.Expr | None:
        if self.full is None or self.lemma is None:
            return None
        return sp.factor(sp.cancel(self.full / self.lemma))

    def laws(self) -> list[tuple[str, str, sp.Expr | None]]:
        """(key, name, Var x) of the three laws, published SDE first."""
        r = self.rate
        return [
            (
                "published_sde",
                f"published SDE (same-step term eta*{r}*(g - m) in the x drift, no matching noise)",
                self.published,
            ),
            ("full_momentum_kept", "full SDE, momentum kept (Lyapunov equation of x and m)", self.full),
            ("lemma_limit", f"paper's lemma form: the {r} -> oo limit of the full law", self.lemma),
        ]

    def to_text(self) -> str:
        lines = [f"  three stationary laws of x (linearised about the minimum; {self.rate} = (1 - {self.beta})/eta):"]
        for _, name, value in self.laws():
            lines.append(f"    {name}:")
            lines.append(f"      Var x = {value if value is not None else 'not available'}")
        if self.published_over_full is not None:
            lines.append(f"    published / full = {self.published_over_full}")
            lines.append(f"      at theta = 0: {self.published_over_full_no_decay}")
        if self.full_over_lemma is not None:
            lines.append(f"    full / lemma = {self.full_over_lemma}")
        lines += [f"    ({reason})" for reason in self.missing]
        lines.append(
            "    The published SDE's same-step term alone is an inconsistent O(eta) correction (no matching noise);"
        )
        lines.append(
            f"    the consistent correction is the order-2 drift (`derive sde {self.optimizer} --order 2`, docs/order2.md). "
            "`derive check --only adam-laws`"
        )
        lines.append("    shows that the discrete optimizer follows the full law and rejects the published SDE's.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def text(e):
            return None if e is None else str(e)

        return {
            "rate": self.rate.name,
            **{key: text(value) for key, value in ((k, v) for k, _, v in self.laws())},
            "published_over_full": text(self.published_over_full),
            "published_over_full_theta0": text(self.published_over_full_no_decay),
            "full_over_lemma": text(self.full_over_lemma),
            "missing": list(self.missing),
        }


def _var_x(optimizer, noise, regime: str, form: str, nu) -> tuple[sp.Expr, object]:
    law = linear_law(optimizer, noise, regime, form, nu)
    return law.var_x, law.model.sde


def momentum_laws(optimizer, noise="gaussian", nu=None, regime: str = "paper") -> MomentumLaws | None:
    """The three laws for an optimizer whose auxiliary states include a momentum (a state updated
    linearly in the gradient); None if it has none."""
    spec = get_optimizer(optimizer)
    momentum = [n for n in spec.state_names[1:] if spec.grad_degree(n) == 1]
    if not momentum:
        return None
    missing: list[str] = []
    full = lemma = published = None
    rate = None
    try:
        full, sde = _var_x(optimizer, noise, regime, "full", nu)
        if momentum[0] in sde.eliminated:  # a fast momentum (beta fixed): the SDE has no m (reference section 11)
            return None
        rates = sorted({s for s in sde.drift_of(momentum[0]).free_symbols if s.name.startswith("rho")}, key=str)
        if rates:
            rate = rates[0]
            lemma = sp.factor(sp.limit(full, rate, sp.oo))
            if not (lemma.is_finite is not False and lemma != 0):
                lemma = None
    except (DeriveError, NoStationaryLawError) as exc:
        missing.append(f"full form: {exc}")
    try:
        var, sde = _var_x(optimizer, noise, regime, "published", nu)
        if sde.same_step:
            published = var
            if rate is None:
                rates = sorted({s for s in sde.drift_of(momentum[0]).free_symbols if s.name.startswith("rho")}, key=str)
                rate = rates[0] if rates else None
        else:
            missing.append(f"published form: no same-step term in the {regime} regime")
    except (DeriveError, NoStationaryLawError) as exc:
        missing.append(f"published form: {exc}")
    if rate is None:
        return None
    return MomentumLaws(spec.name, rate, full, lemma, published, tuple(missing))
