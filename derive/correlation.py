"""Gradient noise correlated across coordinates (reference section 9): the noise model.

**Gaussian**: g~ = g + S xi, xi ~ N(0, I_d), Sigma = S S^T. Per coordinate g~_i = g_i + sigma_i zeta_i with
sigma_i^2 = Sigma_ii and zeta_i standard normal; corr(zeta_i, zeta_j) = R_ij = Sigma_ij / (sigma_i sigma_j).

**Elliptical laws**: g~ = g + sqrt(W) S xi with one positive scalar W per draw, shared by all coordinates.
The marginals are the tool's scale-1 laws: Student-t (nu) for W = nu / chi2_nu (Cauchy: nu = 1), the
Laplace law exp(-|z|)/2 for W exponential with mean 2 (the symmetric multivariate Laplace law), the
Gaussian for W = 1. Sigma is then the scale matrix (Cov g~ = E[W] Sigma); R is the correlation of the
coordinates wherever their second moments exist. The uniform law and user ``cdf:`` laws have no such
model and are refused. Independent non-Gaussian components mixed by S would change the marginals
(t(6) mixed with r = 0.7 has excess kurtosis 1.46, not 3): not this model.

Given W, zeta is Gaussian, so a pair expectation is E_W of a Gaussian one; given zeta_i = z, W has a
known law (:meth:`Mixing.conditional_moment`), which gives E[zeta_j^n | zeta_i] as a polynomial in z
(and |z| for Laplace): see :mod:`derive.pairs`.

:class:`NoiseModel` holds Sigma and the law: the factor S, the scales sigma_i, the correlation matrix R,
seeded draws, and the covariance of the SDE's Brownian motions across coordinates built from the per-pair
source correlation of :func:`derive.pairs.source_correlation`. Constructors: :meth:`NoiseModel.correlated`
(``--correlation R``: every pair of unit-variance noise correlated r, scaled by sigma),
:meth:`NoiseModel.from_covariance` and :meth:`NoiseModel.load` (``--noise-cov FILE``, a .npy d x d matrix),
:meth:`NoiseModel.symbolic` (a symbolic Sigma, as ``derive stationary --full-matrix`` uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp

from .errors import DeriveError, InfiniteMomentError
from .noise import Laplace, NoiseLaw, StudentT, get_noise


class NoiseModelError(DeriveError, ValueError):
    """A correlation, covariance matrix or law that does not define a valid noise model."""


# ---------------------------------------------------------------------------------------------
# The mixing variable W of an elliptical law
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mixing:
    """zeta = sqrt(W) Z, Z ~ N(0, 1), for one law: ``kind`` is 'gaussian' (W = 1), 'student-t'
    (W = nu/chi2_nu) or 'laplace' (W exponential with mean 2)."""

    kind: str
    nu: sp.Expr | None = None

    def conditional_moment(self, m: int, z: sp.Expr, what: str) -> tuple[sp.Expr, str | None]:
        """E[W^m | zeta = z] and the condition (on a symbolic nu) under which it is finite.

        Student-t: W | z is nu / Gamma((nu + 1)/2, rate (1 + z^2/nu)/2), so E[W^m | z] =
        ((nu + z^2)/2)^m Gamma((nu + 1)/2 - m) / Gamma((nu + 1)/2), finite for nu > 2m - 1.
        Laplace: W | z is generalized inverse Gaussian (1/2, z^2, 1), E[W^m | z] =
        |z|^m K_{m+1/2}(|z|)/K_{1/2}(|z|) = sum_j (m + j)! / (j! (m - j)! 2^j) |z|^(m - j)."""
        if m == 0 or self.kind == "gaussian":
            return sp.Integer(1), None
        if self.kind == "laplace":
            return sp.Add(
                *[
                    sp.factorial(m + j) / (sp.factorial(j) * sp.factorial(m - j) * 2**j) * sp.Abs(z) ** (m - j)
                    for j in range(m + 1)
                ]
            ), None
        nu = self.nu
        if nu.is_number and not nu > 2 * m - 1:
            raise InfiniteMomentError(
                f"{what} needs E[W^{m} | zeta_i] of the mixing variable W = nu/chi2_nu, which is infinite for "
                f"nu = {nu} (it needs nu > {2 * m - 1}); use a law with more finite moments"
            )
        ratio = sp.Mul(*[1 / ((nu + 1) / 2 - j) for j in range(1, m + 1)])  # Gamma(a - m) / Gamma(a)
        return sp.expand(((nu + z**2) / 2) ** m * ratio), (None if nu.is_number else f"nu > {2 * m - 1}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n independent draws of W (float64)."""
        if self.kind == "gaussian":
            return np.ones(n)
        if self.kind == "laplace":
            return rng.exponential(2.0, n)
        return float(self.nu) / rng.chisquare(float(self.nu), n)


def mixing(law: NoiseLaw, what: str = "correlated noise") -> Mixing:
    """The elliptical mixing variable of ``law``; a one-line error for a law without one."""
    if isinstance(law, StudentT):
        return Mixing("student-t", law.nu)
    if isinstance(law, Laplace):
        return Mixing("laplace")
    if law.name == "gaussian":
        return Mixing("gaussian")
    raise NoiseModelError(
        f"{what} under the {law.label} law: correlated noise is Gaussian or elliptical (g~ = g + sqrt(W) S xi, "
        "one W per draw); the laws with such a model are gaussian, student-t, cauchy and laplace"
    )


# ---------------------------------------------------------------------------------------------
# Checking a covariance matrix
# ---------------------------------------------------------------------------------------------
_TOLERANCE = 1e-12  # relative to the largest entry (symmetry) or eigenvalue (semidefiniteness)


def _check_covariance(matrix: np.ndarray, name: str, dim: int | None, curvatures: Sequence | None) -> np.ndarray:
    """The matrix as float64, or a one-line error naming what is wrong with it."""
    if matrix.dtype == object or not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise NoiseModelError(f"{name}: a covariance matrix must hold real numbers, got dtype {matrix.dtype}")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise NoiseModelError(f"{name}: a covariance matrix must be a square d x d array, got shape {matrix.shape}")
    d = matrix.shape[0]
    if dim is not None and d != dim:
        raise NoiseModelError(f"{name} is {d} x {d} but --dim is {dim}; the sizes must match")
    if curvatures is not None and d != len(curvatures):
        raise NoiseModelError(f"{name} is {d} x {d} but {len(curvatures)} curvatures were given; the sizes must match")
    bad = np.argwhere(~np.isfinite(matrix))
    if len(bad):
        i, j = bad[0]
        raise NoiseModelError(f"{name} has a non-finite entry: [{i}, {j}] = {float(matrix[i, j])}")
    scale = float(np.max(np.abs(matrix))) or 1.0
    gap = np.abs(matrix - matrix.T)
    if gap.max() > _TOLERANCE * scale:
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        raise NoiseModelError(
            f"{name} is not symmetric: [{i}, {j}] = {float(matrix[i, j])!r} but [{j}, {i}] = {float(matrix[j, i])!r}"
        )
    matrix = (matrix + matrix.T) / 2
    low = float(np.linalg.eigvalsh(matrix)[0])
    if low < -_TOLERANCE * scale:
        raise NoiseModelError(f"{name} is not positive semidefinite: its smallest eigenvalue is {low:.6g}")
    zero = np.flatnonzero(np.diag(matrix) <= 0)
    if len(zero):
        i = int(zero[0])
        raise NoiseModelError(
            f"{name}: coordinate {i} has noise variance [{i}, {i}] = {float(matrix[i, i])!r}; every coordinate needs a "
            "positive variance (the SDEs are derived for sigma_i > 0)"
        )
    return matrix


def load_matrix(path: str | Path, origin: str, error: type[Exception]) -> np.ndarray:
    """One .npy array read with allow_pickle=False (data, never code), or a one-line ``error`` naming
    ``origin`` (a missing file, an unreadable or pickled one, an archive of several arrays)."""
    try:
        matrix = np.load(Path(path), allow_pickle=False)
    except FileNotFoundError:
        raise error(f"{origin}: no such file") from None
    except (ValueError, OSError) as exc:
        raise error(f"{origin}: not a readable .npy array of numbers ({exc})") from None
    if not isinstance(matrix, np.ndarray):
        raise error(f"{origin}: expected one .npy array, got an archive of several")
    return matrix


def psd_factor(matrix: np.ndarray) -> np.ndarray:
    """L with L L^T = matrix: the Cholesky factor, or for a singular positive semidefinite matrix the
    eigen factor U diag(sqrt(max(lambda, 0)))."""
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(matrix)
        return vectors * np.sqrt(np.clip(values, 0.0, None))


# ---------------------------------------------------------------------------------------------
# The noise model
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NoiseModel:
    """g~ = g + sqrt(W) S xi with Sigma = S S^T (``covariance``; numeric or, from :meth:`symbolic`, a
    SymPy matrix) and the marginal ``law`` (W from :func:`mixing`); ``origin`` names the input in messages."""

    covariance: np.ndarray | sp.Matrix
    law: NoiseLaw
    origin: str = "the noise covariance"

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def correlated(
        cls, r: float, dim: int, sigma: float | Sequence[float] = 1.0, law: str | NoiseLaw = "gaussian", nu=None
    ) -> NoiseModel:
        """Every pair of unit-variance noise correlated r, coordinate i scaled by sigma_i:
        Sigma = diag(sigma) ((1 - r) I + r 1 1^T) diag(sigma), positive semidefinite exactly for
        -1/(d - 1) <= r <= 1."""
        origin = f"--correlation {r}"
        try:
            r = float(r)
        except (TypeError, ValueError):
            raise NoiseModelError(f"{origin}: the correlation must be a number in [-1, 1]") from None
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise NoiseModelError(f"{origin}: the dimension must be a positive integer, got {dim!r}")
        low = -1.0 / (dim - 1) if dim > 1 else -1.0
        if not (low <= r <= 1.0):
            raise NoiseModelError(
                f"{origin} is not a valid correlation of every pair of {dim} coordinates: "
                f"it needs -1/(d - 1) = {low:.6g} <= r <= 1 with d = {dim}"
            )
        scales = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (dim,)).copy()
        if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise NoiseModelError(f"{origin}: every sigma must be a positive finite number, got {sigma!r}")
        unit = (1.0 - r) * np.eye(dim) + r * np.ones((dim, dim))
        return cls(scales[:, None] * unit * scales[None, :], get_noise(law, nu), origin)

    @classmethod
    def from_covariance(
        cls,
        matrix,
        law: str | NoiseLaw = "gaussian",
        nu=None,
        dim: int | None = None,
        curvatures: Sequence | None = None,
        origin: str = "the noise covariance",
    ) -> NoiseModel:
        """A checked d x d covariance (symmetric, positive semidefinite, finite, a positive variance per
        coordinate, d matching ``dim`` and the number of ``curvatures`` where given)."""
        checked = _check_covariance(np.asarray(matrix), origin, dim, curvatures)
        return cls(checked, get_noise(law, nu), origin)

    @classmethod
    def load(
        cls, path: str | Path, law: str | NoiseLaw = "gaussian", nu=None, dim: int | None = None, curvatures=None
    ) -> NoiseModel:
        """``--noise-cov FILE``: a .npy array read with allow_pickle=False (data, never code)."""
        origin = f"--noise-cov {path}"
        matrix = load_matrix(path, origin, NoiseModelError)
        return cls.from_covariance(matrix, law, nu, dim, curvatures, origin)

    @classmethod
    def symbolic(cls, dim: int, law: str | NoiseLaw = "gaussian", nu=None) -> NoiseModel:
        """A symbolic Sigma with entries Sigma_ij (i <= j, 1-based), as ``derive stationary --full-matrix``."""
        matrix = sp.Matrix(dim, dim, lambda i, j: sp.Symbol(f"Sigma_{min(i, j) + 1}{max(i, j) + 1}", real=True))
        for i in range(dim):
            matrix[i, i] = sp.Symbol(f"Sigma_{i + 1}{i + 1}", positive=True)
        return cls(matrix, get_noise(law, nu), f"a symbolic {dim} x {dim} Sigma")

    # -- what the derivations and simulators read -----------------------------------------------
    @property
    def is_symbolic(self) -> bool:
        return isinstance(self.covariance, sp.MatrixBase)

    @property
    def dim(self) -> int:
        return int(self.covariance.shape[0])

    @property
    def mixing(self) -> Mixing:
        return mixing(self.law, self.origin)

    @property
    def scales(self):
        """sigma_i = sqrt(Sigma_ii)."""
        if self.is_symbolic:
            return [sp.sqrt(self.covariance[i, i]) for i in range(self.dim)]
        return np.sqrt(np.diag(self.covariance))

    @property
    def correlation(self):
        """R_ij = Sigma_ij / (sigma_i sigma_j), 1 on the diagonal."""
        s = self.scales
        if self.is_symbolic:
            return sp.Matrix(self.dim, self.dim, lambda i, j: 1 if i == j else self.covariance[i, j] / (s[i] * s[j]))
        out = self.covariance / np.outer(s, s)
        np.fill_diagonal(out, 1.0)
        return out

    @property
    def factor(self) -> np.ndarray:
        """S with S S^T = Sigma (Cholesky; the eigen factor for a singular Sigma)."""
        self._numeric("the factor S")
        return psd_factor(self.covariance)

    def draw(self, n: int, seed: int | np.random.Generator) -> np.ndarray:
        """n draws of the noise g~ - g = sqrt(W) S xi, shape (n, d), float64; the same seed gives the
        same numbers (NumPy's PCG64). :meth:`noise_of` maps given xi (and W) for coupled runs."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        xi = rng.standard_normal((n, self.dim))
        return self.noise_of(xi, self.mixing.sample(rng, n))

    def noise_of(self, xi: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """sqrt(W) S xi for rows xi (shape (n, d)) and W (shape (n,), 1 when omitted)."""
        e = np.asarray(xi, dtype=np.float64) @ self.factor.T
        return e if w is None else e * np.sqrt(np.asarray(w, dtype=np.float64))[:, None]

    def source_covariance(self, correlation: sp.Matrix, r: sp.Symbol) -> np.ndarray:
        """The covariance across coordinates of the SDE's K Brownian motions per coordinate, a (K d) x (K d)
        matrix indexed source-major (k d + i): entry ((k, i), (l, j)) is ``correlation`` [k, l] at r = R_ij
        for i != j, and 1[k = l] for i = j. ``correlation`` is the constant per-pair source correlation
        C(r) of :func:`derive.pairs.source_correlation` (Gaussian: R for a zeta-linear source and R o R for a
        zeta^2 - 1 source). Checked positive semidefinite; factor it with :func:`psd_factor`."""
        self._numeric("the source covariance")
        K, d = correlation.shape[0], self.dim
        extra = sorted(s.name for s in correlation.free_symbols if s != r)
        if extra:
            raise NoiseModelError(f"the source correlation {correlation.tolist()} depends on {', '.join(extra)}")
        at = sp.lambdify(r, correlation, modules="numpy")
        R = self.correlation
        out = np.zeros((K * d, K * d))
        for i in range(d):
            for j in range(d):
                block = np.eye(K) if i == j else np.asarray(at(R[i, j]), dtype=np.float64).reshape(K, K)
                out[i::d, j::d] = block
        return _check_covariance(out, "the source covariance", None, None)

    def _numeric(self, what: str) -> None:
        if self.is_symbolic:
            raise NoiseModelError(f"{what} needs a numeric covariance, not {self.origin}")
