"""What the generated simulators need of a noise model correlated across coordinates (reference section 9,
"Simulation"): the factors that :mod:`derive.runtime.paths` applies in its shared loops, so that no
per-combination kernel changes.

Gaussian noise g~ = g + S xi, Sigma = S S^T = diag(s) R diag(s), F_R F_R^T = R (:func:`lower_factor`: every factor
is lower triangular, and the loops read only lower triangles).

* **Optimizer**: its standardized draws are zeta = sqrt(W) F xi (W = 1 under Gaussian noise; the elliptical
  laws' W, one per path and step, from :func:`derive.runtime.samplers.mixing`) with F = diag(s / sigma) F_R, where ``sigma`` is
  the value given to the module's scalar parameter sigma (the common scale s_i when every coordinate has
  the same one, else 1), so that sigma zeta = S' xi with S' S'^T = Sigma. Cost: d^2 / 2 multiply-adds per
  path and step (F is lower triangular where R is positive definite).
* **SDE, linear sources** (:func:`derive.pairs.source_correlation` finds a constant K x K correlation C(r)
  of the K Brownian motions per coordinate: R for the noise that enters an increment linearly, R o R for
  the zeta^2 - 1 source of a second moment under Gaussian noise, (2/pi) asin(R) for SignSGD's
  noise-dominated SDE): each substep's K d independent normals are mixed by L, L L^T the (K d) x (K d)
  source covariance of :meth:`derive.correlation.NoiseModel.source_covariance`, factored block by block
  so that its first d x d block is F_R (:func:`coupled_factor`). Exact Gaussian increments; cost
  (K d)^2 / 2 multiply-adds per path and substep, one factorisation per run.
* **SDE, sign update** (SignSGD's paper-regime SDE, whose pair covariance 4 [Phi2 - Phi Phi] depends on
  the state): moment-matched increments from one Gaussian draw e = S xi of the noise itself,
  u_j = COUPLING_SIGN (sign(g_j + e_j) - mu_j) / sqrt(1 - mu_j^2), mu_j = E sign(g_j + e_j) =
  erf(g_j / (sqrt(2) s_j)): mean 0, variance 1, and across coordinates exactly the covariance of the
  centred signs, so G_i G_j Cov(u_i, u_j) dt is the derived pair covariance (weak order 1: a weak scheme
  needs moments, not Gaussian increments). Any d, d^2 / 2 multiply-adds per path and substep (the same
  draw as the optimizer's), no d x d matrix per step. The same idea as the minibatch SDE's
  ``minibatch-full`` sign increments (:func:`derive.validate.minibatch_sde.correlated_normals`).
* **Refused**, in one line naming what is missing: the SDE under a non-Gaussian law (the one-draw reduction
  and the coupling are Gaussian only; the optimizer runs), laws without an elliptical model,
  state-dependent piecewise pair covariances other than the sign update (Lion, clipped SGD, Signum: no
  moment-matched increment is implemented), unequal scales s_i for the SDE (its kernels take one
  sigma), order-2 SDEs (pairs are derived at order 1), noise that reaches x through the Hessian or a
  gradient at another point (usam's SDE: derive.pairs has no two-coordinate model of it; usam's optimizer
  runs, its one draw zeta = F xi used at both of its points).

Coupling (:func:`derive.simulate.run_coupled`): the optimizer draws zeta = F xi, the SDE's first Brownian
motion takes COUPLING_SIGN sqrt(eta) xi over each optimizer step (Brownian bridge over the substeps), and
L's first block F_R then gives it COUPLING_SIGN sqrt(eta) F_R xi, the optimizer's own noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .combination import Combination
from .correlation import NoiseModel, NoiseModelError, psd_factor
from .errors import UnsupportedUpdateError


@dataclass(frozen=True)
class SimulatorNoise:
    """The factors of :class:`derive.runtime.paths.PathRun` for one combination and noise model."""

    sigma: float  #: the value of the module's parameter sigma
    opt_factor: np.ndarray  #: F [d, d]: zeta = F xi
    sde_factor: np.ndarray | None = None  #: L [K d, K d] (linear sources)
    sign_factor: np.ndarray | None = None  #: S' = sigma F [d, d] (moment-matched sign increments)
    sde_refusal: str | None = None  #: why the SDE cannot be simulated under this noise (None: it can)
    opt_mixing: tuple[float, float] | None = None  #: (code, nu) of W (derive.runtime.samplers.mixing); None: W = 1
    coupling_refusal: str | None = None  #: why no coupled run (the first source is not correlated as the noise)

    @property
    def mode(self) -> str | None:
        """'linear', 'sign' or None (the SDE refused)."""
        return "linear" if self.sde_factor is not None else ("sign" if self.sign_factor is not None else None)


def coupled_factor(covariance: np.ndarray, first: np.ndarray) -> np.ndarray:
    """L with L L^T = ``covariance`` (n x n, positive semidefinite), block lower triangular with the given
    leading block ``first`` (F_R, F_R F_R^T = the leading d x d block): [[F_R, 0], [C21 pinv(F_R)^T, a factor
    of the Schur complement]]. The optimizer's factor and the SDE's first source then agree (coupling)."""
    d = first.shape[0]
    top = covariance[:d, :d]
    if not np.allclose(first @ first.T, top, atol=1e-12 * max(1.0, float(np.abs(top).max()))):
        raise NoiseModelError("the source covariance's first block is not the noise correlation R")
    L = np.zeros_like(covariance)
    L[:d, :d] = first
    if covariance.shape[0] > d:
        lower = covariance[d:, :d] @ np.linalg.pinv(first).T
        schur = covariance[d:, d:] - lower @ lower.T
        schur = (schur + schur.T) / 2
        L[d:, :d] = lower
        L[d:, d:] = lower_factor(schur)
    return L


def lower_factor(matrix: np.ndarray) -> np.ndarray:
    """A lower-triangular L with L L^T = matrix (positive semidefinite): Cholesky, or for a singular matrix the
    eigen factor made triangular by a QR decomposition of its transpose (F = (Q T)^T gives F F^T = T^T T).
    The loops of derive.runtime.paths read only lower triangles (half the multiply-adds)."""
    F = psd_factor(matrix)
    if np.any(np.triu(F, 1) != 0):
        F = np.linalg.qr(F.T, mode="r").T
        F = np.tril(F)
    return F


@lru_cache(maxsize=64)
def _source_correlation(combo: Combination):
    """(C(r) or None, r) of the combination's SDE (SymPy, about a second; cached). A diffusion with a
    function of the state (erf of g / sigma: SignSGD's, Lion's, clipping's) has state-dependent pairs, so
    no constant C: None at once, without deriving the pairs (Lion's take minutes); a function of the
    parameters only (SGD with momentum's |1 - tau|) is a constant and does not count."""
    import sympy as sp

    from .engine import derive_sde
    from .optimizers import get_optimizer
    from .pairs import correlation_symbol, derive_pairs, source_correlation

    sde = derive_sde(combo.optimizer, combo.noise, combo.regime, combo.form, combo.nu)
    r = correlation_symbol(get_optimizer(combo.optimizer))
    constants = set(sde.parameters)
    if any(not f.free_symbols <= constants for e in sde.diffusion for f in sp.sympify(e).atoms(sp.Function)):
        return None, r
    pairs = derive_pairs(combo.optimizer, combo.noise, combo.regime, combo.form, combo.nu)
    return source_correlation(sde, pairs), r


def _is_sign_update(combo: Combination, module) -> bool:
    """SignSGD's SDE: one state, one source, x's increment the (centred) sign of the noisy gradient
    (the same test as the minibatch SDE's sign increments)."""
    return combo.optimizer == "signsgd" and tuple(module.STATE) == ("x",) and module.NOISE_SOURCES == 1


def simulator_noise(model: NoiseModel, combo: Combination, module, dim: int, sde: bool) -> SimulatorNoise:
    """The factors for ``combo`` (its generated ``module``) under ``model`` on ``dim`` coordinates; ``sde``:
    whether the SDE will run (else only the optimizer's factor is built). One-line errors for input the
    simulators cannot take (module docstring)."""
    if not isinstance(model, NoiseModel):
        raise NoiseModelError(f"noise must be a derive.correlation.NoiseModel or None, got {type(model).__name__}")
    if model.is_symbolic:
        raise NoiseModelError(f"simulations need a numeric covariance, not {model.origin}")
    if model.dim != dim:
        raise NoiseModelError(f"{model.origin} is {model.dim} x {model.dim} but the start has dim {dim}")
    from .noise import get_noise
    from .runtime.samplers import MIXING_CODES

    law = get_noise(combo.noise, combo.nu)
    if law.label != model.law.label:
        raise NoiseModelError(
            f"{model.origin} is a {model.law.label} noise model but {combo.module_name} simulates {law.label} noise"
        )
    kind = model.mixing.kind  # a one-line error for a law without an elliptical model
    mix = None if kind == "gaussian" else (float(MIXING_CODES[kind]), float(model.mixing.nu or 0.0))
    scales = np.asarray(model.scales, dtype=np.float64)
    equal = bool(np.allclose(scales, scales[0], rtol=1e-12, atol=0.0))
    sigma = float(scales[0]) if equal else 1.0
    F_R = lower_factor(model.correlation)
    opt = (scales / sigma)[:, None] * F_R
    if not sde:
        return SimulatorNoise(sigma, opt, opt_mixing=mix)
    refusal = None
    if mix is not None:
        refusal = (
            f"{model.origin} under {law.label} noise: the SDE under correlated noise is simulated for Gaussian noise "
            "only (the one-draw reduction and the coupling are Gaussian); the optimizer runs"
        )
    elif not equal:
        refusal = (
            f"{model.origin} has unequal noise scales (sigma_1 = {scales[0]:.6g}, sigma_max = {scales.max():.6g}, "
            f"sigma_min = {scales.min():.6g}); the SDE kernels of {combo.module_name} take one sigma: only the "
            "optimizer can be simulated"
        )
    elif combo.order != 1:
        refusal = f"{combo.module_name}: correlated noise for order-2 SDEs (pair covariances are derived at order 1)"
    if refusal:
        return SimulatorNoise(sigma, opt, sde_refusal=refusal, opt_mixing=mix)
    try:
        C, r = _source_correlation(combo)
    except UnsupportedUpdateError as exc:  # noise through H (usam's Hessian noise): no pair model
        return SimulatorNoise(sigma, opt, sde_refusal=f"{combo.module_name}: no SDE under correlated noise: {exc}")
    if C is not None:
        cov = model.source_covariance(C, r)
        d = model.dim
        if np.allclose(cov[:d, :d], model.correlation, rtol=0.0, atol=1e-12):
            return SimulatorNoise(sigma, opt, sde_factor=coupled_factor(cov, F_R))
        return SimulatorNoise(
            sigma,
            opt,
            sde_factor=lower_factor(cov),
            coupling_refusal=(
                f"{combo.module_name}: its first Brownian motion is correlated across coordinates as "
                f"C(r) = {C[0, 0]}, not as the noise (r), so it cannot take the optimizer's xi: no coupled run "
                "under correlated noise (run the optimizer and the SDE separately)"
            ),
        )
    if _is_sign_update(combo, module):
        return SimulatorNoise(sigma, opt, sign_factor=sigma * opt)
    return SimulatorNoise(
        sigma,
        opt,
        sde_refusal=(
            f"{combo.module_name}: its pair covariances depend on the state through piecewise terms (no constant "
            "source correlation C(r)), and moment-matched correlated increments are implemented for the sign "
            "update (signsgd) only"
        ),
    )
