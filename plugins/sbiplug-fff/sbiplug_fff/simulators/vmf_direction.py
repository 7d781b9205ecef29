"""``vmf_direction``: a direction on S^2 seen through noisy unit vectors (von Mises-Fisher).

theta = mu, a unit vector of R^3 with a uniform prior on the sphere; x = n unit vectors
y_i ~ vMF(mu, kappa), flattened to 3n numbers. The posterior is analytic:
p(mu | x) = vMF(mu; r / |r|, |r|) with r = kappa * sum_i y_i.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug import Simulator
from sbiplug.toolkit import SeedLike, as_generator, check_positive, check_positive_int
from sbiplug_fff.distributions import UniformManifold, vmf_log_normaliser
from sbiplug_fff.manifolds import Sphere

__all__ = ["VMFDirection", "sample_vmf_s2"]


def sample_vmf_s2(mean: np.ndarray, kappa: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """vMF draws on S^2 by inverse CDF, one per row.

    Arguments:
        mean: Unit mean directions, shape ``(N, 3)``.
        kappa: Concentrations, shape ``(N,)``.
        uniforms: Two U(0, 1) numbers per draw, shape ``(N, 2)``.

    Returns:
        Unit vectors, shape ``(N, 3)``.
    """
    u, v = uniforms[:, 0], uniforms[:, 1]
    # w = cos(angle to the mean): 1 + log(u + (1 - u) e^{-2 kappa}) / kappa
    w = 1 + np.log(u + (1 - u) * np.exp(-2 * kappa)) / kappa
    w = np.clip(w, -1.0, 1.0)
    phi = 2 * math.pi * v
    radius = np.sqrt(1 - w**2)
    local = np.stack([radius * np.cos(phi), radius * np.sin(phi), w], axis=-1)
    # Householder reflection taking e_3 to the mean direction
    north = np.zeros_like(mean)
    north[:, 2] = 1.0
    reflector = north - mean
    norm = np.linalg.norm(reflector, axis=-1, keepdims=True)
    reflector = np.where(norm > 1e-9, reflector / np.maximum(norm, 1e-12), 0.0)
    return local - 2 * np.sum(local * reflector, axis=-1, keepdims=True) * reflector


class VMFDirection(Simulator):
    """A direction mu on S^2 observed through ``num_observations`` vMF(mu, kappa) unit vectors.

    Arguments:
        num_observations: Number n of observed unit vectors.
        concentration: kappa of the observation noise.
    """

    name = "vmf_direction"
    parameter_names = ("mu_x", "mu_y", "mu_z")
    parameter_manifold = "sphere"

    def __init__(self, num_observations: int = 5, concentration: float = 2.0):
        owner = "simulator 'vmf_direction'"
        self.num_observations = check_positive_int(
            "num_observations", num_observations, owner=owner
        )
        self.concentration = check_positive("concentration", concentration, owner=owner)
        self.observation_shape = (3 * self.num_observations,)
        self._prior = UniformManifold(Sphere(2))

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        rows, n = theta.shape[0], self.num_observations
        uniforms = rng.random((rows, n, 2))
        mean = np.repeat(theta.double().numpy(), n, axis=0)
        kappa = np.full(rows * n, self.concentration)
        y = sample_vmf_s2(mean, kappa, uniforms.reshape(rows * n, 2))
        return torch.as_tensor(y.reshape(rows, 3 * n), dtype=torch.float32)

    def posterior_parameters(self, x_o: Tensor) -> tuple[Tensor, Tensor]:
        """Mean direction ``(3,)`` and concentration ``()`` of the vMF posterior for x_o."""
        resultant = self.concentration * x_o.double().reshape(self.num_observations, 3).sum(0)
        kappa = resultant.norm()
        return (resultant / kappa).float(), kappa.float()

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        x_o = torch.as_tensor(x_o).reshape(-1)
        mean, kappa = self.posterior_parameters(x_o)
        rng = as_generator(seed)
        draws = sample_vmf_s2(
            np.tile(mean.double().numpy(), (num_samples, 1)),
            np.full(num_samples, float(kappa)),
            rng.random((num_samples, 2)),
        )
        return torch.as_tensor(draws, dtype=torch.float32)

    def reference_log_prob(self, theta: Tensor, x_o: Tensor) -> Tensor:
        """Analytic posterior log density w.r.t. the area of S^2, shape ``(N,)``."""
        mean, kappa = self.posterior_parameters(torch.as_tensor(x_o).reshape(-1))
        return vmf_log_normaliser(kappa, 3) + kappa * (theta @ mean)

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        y = x.reshape(x.shape[0], self.num_observations, 3)
        kappa = torch.tensor(self.concentration)
        cosines = (y * theta.unsqueeze(1)).sum(-1)
        return (vmf_log_normaliser(kappa, 3) + kappa * cosines).sum(-1)
