"""NumPy samplers of the optimizers' noise zeta for the network validation, and the coupled normals.

The laws are the runtime's list (:data:`derive.runtime.samplers.LAWS`, the laws of
:mod:`derive.noise` that have an exact sampler), in the reference table's scale-1 forms: Student-t
with nu degrees of freedom, Cauchy, Laplace with density exp(-|z|)/2, uniform on [-1, 1].
:func:`coupled_normal` gives the normal n = Phi^{-1}(F(zeta)) that a coupled SDE run uses for its
first Brownian increment (quantile coupling through one uniform; n = zeta under Gaussian noise).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.special
import scipy.stats

from ..runtime.samplers import LAWS
from . import ValidationInputError

Sampler = Callable[[np.random.Generator, int], np.ndarray]


def _law(noise: str, nu):
    """(name, scipy frozen distribution or None for gaussian), checked."""
    name = noise.lower()
    if name not in LAWS:
        raise ValidationInputError(f"the network validation samples {', '.join(LAWS)} noise; got {noise!r}")
    if name == "student-t":
        try:
            dof = float(nu)
        except (TypeError, ValueError):
            raise ValidationInputError(f"student-t noise needs a numeric --nu, got {nu!r}") from None
        if not dof > 0:
            raise ValidationInputError(f"student-t nu must be > 0, got {nu}")
        return name, scipy.stats.t(dof)
    return name, {
        "gaussian": None,
        "cauchy": scipy.stats.cauchy(),
        "laplace": scipy.stats.laplace(),
        "uniform": scipy.stats.uniform(-1.0, 2.0),
    }[name]


def zeta_sampler(noise: str, nu=None) -> Sampler:
    """``sample(rng, d)``: d independent draws of the standardized law ``noise``."""
    name, dist = _law(noise, nu)
    if dist is None:
        return lambda rng, d: rng.standard_normal(d)
    return lambda rng, d: dist.rvs(size=d, random_state=rng)


def coupled_normal(noise: str, nu=None) -> Callable[[np.ndarray], np.ndarray]:
    """n(zeta) = Phi^{-1}(F(zeta)), comonotone with zeta and exactly N(0, 1), computed from the lower
    tail (-sign(zeta) Phi^{-1}(F(-|zeta|))) so that no 1 - F cancels."""
    name, dist = _law(noise, nu)
    if dist is None:
        return lambda zeta: np.asarray(zeta, float)
    return lambda zeta: -np.sign(zeta) * scipy.special.ndtri(dist.cdf(-np.abs(zeta)))
