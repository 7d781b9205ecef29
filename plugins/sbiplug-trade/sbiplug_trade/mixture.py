"""``gmm_temperature``: the 2-D six-component Gaussian mixture of TRADE raised to a power.

p(x | beta) ∝ GMM(x)^beta with beta in [10^(-15/19), 10^(15/19)] ≈ [0.162, 6.16], the 2-D GMM
benchmark of TRADE (Wahl et al., arXiv 2410.19492, Appendix C). Ground truth is drawn by exact
rejection sampling:

* beta >= 1: propose x ~ GMM, accept with probability (GMM(x) / M)^(beta - 1), M >= sup GMM.
* beta < 1: t -> t^beta is subadditive, so GMM^beta <= sum_k (w_k N_k)^beta = sum_k a_k N(x;
  mu_k, Sigma_k / beta); propose from that mixture, accept with the ratio.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from sbiplug import Target

__all__ = ["GMM_COVARIANCES", "GMM_MEANS", "GaussianMixtureTemperature"]

GMM_MEANS = np.array([[-1.0, 2.0], [3.0, 7.0], [-4.0, 2.0], [-2.0, -4.0], [0.0, 4.0], [5.0, -2.0]])
GMM_COVARIANCES = np.array(
    [
        [[0.2778, 0.4797], [0.4797, 0.8615]],
        [[0.8958, -0.0249], [-0.0249, 0.1001]],
        [[1.3074, 0.9223], [0.9223, 0.7744]],
        [[0.0305, 0.0142], [0.0142, 0.4409]],
        [[0.0463, 0.0294], [0.0294, 0.3441]],
        [[0.15, 0.0294], [0.0294, 1.5]],
    ]
)


class GaussianMixtureTemperature(Target):
    """GMM(x)^beta for the paper's six equally weighted 2-D components.

    Arguments:
        condition_range: The inverse-temperature range (the paper's by default).
    """

    name = "gmm_temperature"
    dim = 2
    condition_name = "beta"
    condition_kind = "inverse_temperature"
    base_condition = 1.0

    def __init__(self, condition_range: tuple[float, float] = (10 ** (-15 / 19), 10 ** (15 / 19))):
        self.condition_range = (float(condition_range[0]), float(condition_range[1]))
        self.num_modes = len(GMM_MEANS)
        self._means = torch.as_tensor(GMM_MEANS, dtype=torch.float32)
        scale_tril = torch.linalg.cholesky(torch.as_tensor(GMM_COVARIANCES, dtype=torch.float64))
        self._scale_tril = scale_tril.float()
        self._log_weight = -math.log(self.num_modes)

    def component_log_densities(self, x: Tensor) -> Tensor:
        """log(w_k N(x; mu_k, Sigma_k)) per component, shape ``(n, 6)`` for ``x`` ``(n, 2)``."""
        normal = torch.distributions.MultivariateNormal(self._means, scale_tril=self._scale_tril)
        return normal.log_prob(x.unsqueeze(-2)) + self._log_weight

    def log_mixture(self, x: Tensor) -> Tensor:
        """log GMM(x), shape ``(n,)``."""
        return torch.logsumexp(self.component_log_densities(x), dim=-1)

    def log_density(self, x: Tensor, c: Tensor) -> Tensor:
        """beta * log GMM(x), shape ``(n,)``; ``c`` is beta, shape ``(n, 1)`` or scalar."""
        return torch.as_tensor(c, dtype=x.dtype).reshape(-1) * self.log_mixture(x)

    def mode_labels(self, x: Tensor) -> Tensor:
        """The component with the largest responsibility at beta = 1, shape ``(n,)``."""
        return self.component_log_densities(x).argmax(dim=-1)

    def exact_mode_masses(self, c: float) -> Tensor:
        """Mass of each mode (as labelled by :meth:`mode_labels`) under GMM^beta / Z(beta).

        A Riemann sum on a 1501 x 1501 grid over [-14, 16]^2 (spacing 0.02): free of the Monte
        Carlo noise of ground-truth draws, which dominates the relative error of light modes.

        Returns:
            The masses, shape ``(6,)``, float64, summing to 1.
        """
        labels, log_mixture = _quadrature_grid()
        weights = torch.softmax(float(c) * log_mixture, dim=0)
        masses = torch.zeros(self.num_modes, dtype=torch.float64)
        return masses.index_add_(0, labels, weights)

    def quadrature(
        self, c: float, *, width: float = 9.0, cells_per_sd: float = 3.0
    ) -> tuple[Tensor, float]:
        """A regular grid that resolves GMM^beta: points ``(m, 2)`` and the log cell area.

        The box spans the component means +- ``width`` times the widest component sd at beta
        (sqrt of the largest covariance eigenvalue / beta); the spacing is the narrowest sd
        divided by ``cells_per_sd``. For a Gaussian-like integrand a Riemann sum at that spacing
        is accurate far beyond float32 precision (the error falls as exp(-2 pi^2 cells_per_sd^2));
        on the benchmark's flows, width 16 or 10 cells per sd change the population ESS by < 2e-4.

        Returns:
            The points, shape ``(m, 2)``, and the log area of one cell.
        """
        beta = float(c)
        if beta <= 0:
            raise ValueError(f"target {self.name!r}: beta must be positive, got {c!r}")
        eigenvalues = np.linalg.eigvalsh(GMM_COVARIANCES)
        widest = math.sqrt(eigenvalues.max() / beta)
        spacing = math.sqrt(eigenvalues.min() / beta) / cells_per_sd
        axes = [
            torch.arange(low - width * widest, high + width * widest + spacing, spacing)
            for low, high in zip(GMM_MEANS.min(0), GMM_MEANS.max(0), strict=True)
        ]
        points = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        return points.float(), 2 * math.log(spacing)

    # -- exact sampling -----------------------------------------------------------------------

    def sample(self, num_samples: int, c: float, *, seed: int | None = 0) -> Tensor:
        """Exact draws from GMM^beta / Z(beta) by rejection, shape ``(num_samples, 2)``."""
        beta = float(c)
        if beta <= 0:
            raise ValueError(f"target {self.name!r}: beta must be positive, got {c!r}")
        rng = np.random.default_rng(seed)
        accepted: list[np.ndarray] = []
        total = 0
        while total < num_samples:
            batch = self._rejection_batch(beta, max(4 * num_samples, 10_000), rng)
            accepted.append(batch)
            total += len(batch)
        return torch.from_numpy(np.concatenate(accepted)[:num_samples]).float()

    def _rejection_batch(self, beta: float, size: int, rng: np.random.Generator) -> np.ndarray:
        covariances = GMM_COVARIANCES if beta >= 1 else GMM_COVARIANCES / beta
        log_dets = np.linalg.slogdet(GMM_COVARIANCES)[1]
        if beta >= 1:
            weights = np.full(self.num_modes, 1.0 / self.num_modes)
        else:
            # a_k = (w_k N_k)^beta integrated: w^beta (2 pi)^(1 - beta) |S|^((1 - beta)/2) beta^-1
            log_a = (
                beta * self._log_weight
                + (1 - beta) * math.log(2 * math.pi)
                + 0.5 * (1 - beta) * log_dets
                - math.log(beta)
            )
            weights = np.exp(log_a - log_a.max())
            weights /= weights.sum()
        components = rng.choice(self.num_modes, size=size, p=weights)
        chol = np.linalg.cholesky(covariances)[components]
        x = GMM_MEANS[components] + np.einsum("nij,nj->ni", chol, rng.standard_normal((size, 2)))
        log_mixture = self.log_mixture(torch.from_numpy(x).float()).double().numpy()
        if beta >= 1:
            log_accept = (beta - 1) * (log_mixture - self._log_sup())
        else:
            log_target = beta * log_mixture
            log_envelope = _log_mixture_numpy(x, GMM_MEANS, covariances, log_a)
            log_accept = log_target - log_envelope
        return x[np.log(rng.random(size)) < np.minimum(log_accept, 0.0)]

    def _log_sup(self) -> float:
        """An upper bound of log GMM: the grid maximum near the modes plus a safety margin."""
        if not hasattr(self, "_cached_log_sup"):
            offsets = np.linspace(-0.6, 0.6, 241)
            grid = np.stack(np.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2)
            points = (GMM_MEANS[:, None, :] + grid[None]).reshape(-1, 2)
            values = self.log_mixture(torch.from_numpy(points).float()).double()
            self._cached_log_sup = float(values.max()) + math.log(1.05)
        return self._cached_log_sup


@functools.cache
def _quadrature_grid() -> tuple[Tensor, Tensor]:
    """Mode labels and log GMM on the 1501^2 grid over [-14, 16]^2, computed once per process."""
    grid = torch.linspace(-14, 16, 1501, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    components = GaussianMixtureTemperature().component_log_densities(points.float()).double()
    return components.argmax(dim=-1), torch.logsumexp(components, dim=-1)


def _log_mixture_numpy(
    x: np.ndarray, means: np.ndarray, covariances: np.ndarray, log_weights: np.ndarray
) -> np.ndarray:
    """log sum_k exp(log_weights_k) N(x; means_k, covariances_k), shape ``(n,)``."""
    precision = np.linalg.inv(covariances)
    diff = x[:, None, :] - means[None]
    quadratic = np.einsum("nki,kij,nkj->nk", diff, precision, diff)
    log_norm = -0.5 * (np.linalg.slogdet(covariances)[1] + 2 * math.log(2 * math.pi))
    terms = log_weights + log_norm - 0.5 * quadratic
    top = terms.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(terms - top).sum(axis=1, keepdims=True)))[:, 0]
