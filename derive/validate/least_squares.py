"""Linear least squares: the known answer for Sigma(x) and the positive control of the minibatch SDEs.

f(x) = (1/N) sum_n f_n(x), f_n(x) = (a_n . x - y_n)^2 / 2, so grad f_n(x) = rho_n(x) a_n with the
residual rho_n(x) = a_n . x - y_n, H = (1/N) sum_n a_n a_n^T, and in closed form

    Sigma(x) = (1/N) sum_n rho_n(x)^2 a_n a_n^T - g(x) g(x)^T,   g(x) = (1/N) sum_n rho_n(x) a_n

(:meth:`LeastSquares.sigma`; at the minimum x* the gradient g vanishes).

Stationary laws near x* (reference section 10). SGD's SDE, dX = -g dt + sqrt(eta) (Sigma/B)^(1/2) dW,
linearised about x*: the drift's coefficient of g and the diffusion's G G^T per unit noise
variance are read off the engine's SGD SDE (``sde_of("sgd")``: -1 and eta, as
:func:`derive.theory.stationary.sgd_full_matrix` does), so its stationary covariance solves
A C + C A^T + Q = 0 with A = -H and Q = eta Sigma* / B, i.e.

* full:      H C + C H = (eta / B) Sigma*,
* diagonal:  H C + C H = (eta / B) diag(Sigma*)  (the ``minibatch-diag`` model),
* isotropic: sigma^2 = tr Sigma* / (B d), C = (eta tr Sigma* / (2 B d)) H^-1.

E f - f* = tr(H C) / 2 = eta tr Sigma* / (4 B) for the full and the isotropic model alike (take the
trace of the Lyapunov equation), but E|x - x*|^2 = tr C differs; when Sigma* = s^2 H (residuals
independent of the features) the factor is tr C_iso / tr C_full = tr H tr H^-1 / d^2 >= 1.

The discrete SGD chain on minibatches of B indices drawn with replacement has, exactly, the
stationary second moment P of delta = x - x* solving (with A_n = a_n a_n^T)

    H P + P H - eta (1 - 1/B) H P H - (eta / B) (1/N) sum_n A_n P A_n = (eta / B) Sigma*

(the mean of delta is 0 and the cross terms vanish since E[grad_B | delta] = H delta):
tr P - tr C_full is SGD's O(eta) bias against its SDE, known exactly (:func:`discrete_second_moment`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from . import ValidationInputError


@dataclass
class LeastSquares:
    """Features ``a`` [N, d] and targets ``y`` [N] of f = (1/N) sum (a_n . x - y_n)^2 / 2."""

    a: np.ndarray
    y: np.ndarray

    @property
    def n(self) -> int:
        return int(self.a.shape[0])

    @property
    def dim(self) -> int:
        return int(self.a.shape[1])

    @property
    def hessian(self) -> np.ndarray:
        return self.a.T @ self.a / self.n

    @property
    def minimum(self) -> np.ndarray:
        return np.linalg.lstsq(self.a, self.y, rcond=None)[0]

    def residuals(self, x) -> np.ndarray:
        return self.a @ np.asarray(x, dtype=float) - self.y

    def gradient(self, x) -> np.ndarray:
        return self.a.T @ self.residuals(x) / self.n

    def sigma(self, x) -> np.ndarray:
        """Sigma(x) in closed form (module docstring), a dense d x d matrix (d is small here)."""
        rho, g = self.residuals(x), self.gradient(x)
        return (self.a * rho[:, None] ** 2).T @ self.a / self.n - np.outer(g, g)

    def problem(self, name: str = "least-squares"):
        """The same f as a torch :class:`~derive.validate.torch_adapter.Problem` with its dataset: a
        bias-free ``Linear(d, 1)`` whose weight is x, batch loss mean((out - y)^2) / 2."""
        from . import require_torch
        from .torch_adapter import Problem

        torch = require_torch()
        module = torch.nn.Linear(self.dim, 1, bias=False).to(torch.float64)
        with torch.no_grad():
            module.weight.zero_()

        def batch_loss(out, target):
            return 0.5 * (out.squeeze(-1) - target).square().mean()

        data = (torch.from_numpy(self.a.copy()), torch.from_numpy(self.y.copy()))
        return Problem(module, None, name, data=data, batch_loss=batch_loss)


def rotated_least_squares(
    n: int = 512, curvatures=(1.0, 0.3, 0.1, 0.03), noise: float = 1.0, seed: int = 0
) -> LeastSquares:
    """N samples whose Hessian is exactly Q diag(curvatures) Q^T (Q a random rotation), targets
    y = a . x_true + noise * eps with eps ~ N(0, 1) independent of a, so Sigma* is close to
    noise^2 H and tr C_iso / tr C_full is close to tr H tr H^-1 / d^2 (4.3 for the defaults); the
    rotation makes diag(Sigma*) differ from both."""
    curv = np.asarray(curvatures, dtype=float)
    if curv.ndim != 1 or curv.size < 2 or np.any(curv <= 0) or not np.all(np.isfinite(curv)):
        raise ValidationInputError(f"curvatures must be at least two positive numbers, got {curvatures!r}")
    d = curv.size
    if n < d + 2:
        raise ValidationInputError(f"n must be at least d + 2 = {d + 2}, got {n}")
    rng = np.random.default_rng([seed, 41])
    w, _ = np.linalg.qr(rng.standard_normal((n, d)))  # orthonormal columns: w^T w = I
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a = np.sqrt(n) * w @ np.diag(np.sqrt(curv)) @ rotation.T  # a^T a / n = Q diag(curv) Q^T
    y = a @ rng.standard_normal(d) + noise * rng.standard_normal(n)
    return LeastSquares(a, y)


def sgd_linearisation() -> tuple[float, object]:
    """(the drift's coefficient of g, the diffusion's G G^T per unit noise variance as a SymPy
    expression in eta) of the engine's SGD SDE: -1 and eta."""
    import sympy as sp

    from .. import symbols as S
    from ..theory.quadratic import sde_of

    sde = sde_of("sgd")
    return float(sp.diff(sde.drift[0], S.g)), sp.simplify(sde.covariance()[0, 0] / S.sigma**2)


def stationary_covariance(hessian: np.ndarray, noise_cov: np.ndarray, eta: float) -> np.ndarray:
    """C with A C + C A^T + Q = 0, A = (drift coefficient) H, Q = (G G^T per variance) noise_cov: the
    stationary covariance of SGD's SDE linearised about the minimum (``noise_cov`` = Sigma / B)."""
    from .. import symbols as S

    coefficient, per_variance = sgd_linearisation()
    q = float(per_variance.subs(S.eta, eta)) * np.asarray(noise_cov, dtype=float)
    return scipy.linalg.solve_continuous_lyapunov(coefficient * np.asarray(hessian, dtype=float), -q)


def discrete_second_moment(ls: LeastSquares, eta: float, batch: int) -> np.ndarray:
    """P = E[(x - x*)(x - x*)^T] of the stationary SGD chain on minibatches drawn with replacement
    (module docstring), solved as a d^2 x d^2 linear system."""
    H, d, a = ls.hessian, ls.dim, ls.a
    sigma = ls.sigma(ls.minimum)
    eye = np.eye(d)
    fourth = np.einsum("ni,nj,nk,nl->ijkl", a, a, a, a).reshape(d * d, d * d) / ls.n  # vec(A_n P A_n), row-major
    op = np.kron(H, eye) + np.kron(eye, H) - eta * (1 - 1 / batch) * np.kron(H, H) - (eta / batch) * fourth
    return np.linalg.solve(op, (eta / batch) * sigma.reshape(-1)).reshape(d, d)


@dataclass
class ControlClosedForms:
    """tr C = E|x - x*|^2 and E f - f* of each model, and the exact discrete chain's tr P."""

    eta: float
    batch: int
    trace_full: float
    trace_diag: float
    trace_isotropic: float
    trace_discrete: float
    loss_full: float
    loss_isotropic: float

    @property
    def ratio(self) -> float:
        """tr C_iso / tr C_full: the factor the validation must resolve."""
        return self.trace_isotropic / self.trace_full

    @property
    def bias(self) -> float:
        """tr P - tr C_full: SGD's O(eta) bias against the full model's closed form."""
        return self.trace_discrete - self.trace_full

    def to_json(self) -> dict:
        return {
            k: float(getattr(self, k)) for k in ("trace_full", "trace_diag", "trace_isotropic", "trace_discrete")
        } | {
            "expected_loss_full": self.loss_full,
            "expected_loss_isotropic": self.loss_isotropic,
            "ratio_isotropic_to_full": self.ratio,
            "discrete_bias": self.bias,
            "eta": self.eta,
            "batch": self.batch,
        }


def control_closed_forms(ls: LeastSquares, eta: float, batch: int) -> ControlClosedForms:
    """The closed forms of the positive control at x* (module docstring)."""
    H, d = ls.hessian, ls.dim
    sigma = ls.sigma(ls.minimum)
    full = stationary_covariance(H, sigma / batch, eta)
    diag = stationary_covariance(H, np.diag(np.diag(sigma)) / batch, eta)
    iso = stationary_covariance(H, np.trace(sigma) / (batch * d) * np.eye(d), eta)
    P = discrete_second_moment(ls, eta, batch)
    return ControlClosedForms(
        float(eta),
        int(batch),
        float(np.trace(full)),
        float(np.trace(diag)),
        float(np.trace(iso)),
        float(np.trace(P)),
        float(np.trace(H @ full) / 2),
        float(np.trace(H @ iso) / 2),
    )


def sgd_chain_distance(
    ls: LeastSquares, eta: float, batch: int, *, paths: int, steps: int, burn: int, seed: int = 0
) -> tuple[float, float]:
    """The stationary E|x - x*|^2 of SGD on minibatches (indices with replacement) by simulation:
    ``paths`` independent chains from x*, ``burn`` steps dropped, the time average of |x - x*|^2
    over ``steps`` steps per path; returns (mean over paths, its standard error over paths)."""
    rng = np.random.default_rng([seed, 43])
    x_star = ls.minimum
    x = np.repeat(x_star[None, :], paths, axis=0)
    total = np.zeros(paths)
    for k in range(burn + steps):
        idx = rng.integers(0, ls.n, size=(paths, batch))
        a = ls.a[idx]  # [paths, B, d]
        rho = np.einsum("pbd,pd->pb", a, x) - ls.y[idx]
        x -= eta * np.einsum("pb,pbd->pd", rho, a) / batch
        if k >= burn:
            total += np.square(x - x_star).sum(axis=1)
    per_path = total / steps
    return float(per_path.mean()), float(per_path.std(ddof=1) / np.sqrt(paths))
