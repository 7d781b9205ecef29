"""``torus_angles``: two angles on the torus T^2 seen through noisy sines and cosines.

theta = (cos a, sin a, cos b, sin b), the embedded torus, with a uniform prior;
x = (cos a, sin a, cos 2b, sin 2b) + sigma * noise. The posterior of a wraps across +-pi when a
is near pi, and b is bimodal (b and b + pi explain the data equally). The reference posterior
is exact up to a fine grid: the likelihood on a ``grid_size``^2 grid of angles, a cell drawn
by its mass and a uniform position inside it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug import Simulator
from sbiplug.toolkit import SeedLike, as_generator, check_positive
from sbiplug_fff.distributions import UniformManifold
from sbiplug_fff.manifolds import Torus

__all__ = ["TorusAngles"]


class TorusAngles(Simulator):
    """Two angles (a, b), embedded as (cos a, sin a, cos b, sin b), from noisy trigonometry.

    Arguments:
        noise_scale: Standard deviation sigma of the Gaussian noise on each observed number.
        grid_size: Grid cells per angle for the reference posterior.
    """

    name = "torus_angles"
    parameter_names = ("cos_a", "sin_a", "cos_b", "sin_b")
    observation_shape = (4,)
    parameter_manifold = "torus"

    def __init__(self, noise_scale: float = 0.3, grid_size: int = 512):
        check_positive("noise_scale", noise_scale, owner="simulator 'torus_angles'")
        self.noise_scale = float(noise_scale)
        self.grid_size = int(grid_size)
        self.torus = Torus(2)
        self._prior = UniformManifold(self.torus)

    @property
    def prior(self) -> Distribution:
        return self._prior

    @staticmethod
    def mean_observation(angles: Tensor) -> Tensor:
        """The noiseless observation for angles ``(N, 2)``, shape ``(N, 4)``."""
        a, b = angles[..., 0], angles[..., 1]
        return torch.stack([a.cos(), a.sin(), (2 * b).cos(), (2 * b).sin()], dim=-1)

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        noise = rng.standard_normal((theta.shape[0], 4))
        mean = self.mean_observation(self.torus.to_angles(theta).double())
        return (mean + self.noise_scale * torch.as_tensor(noise)).float()

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        mean = self.mean_observation(self.torus.to_angles(theta))
        squared = (x - mean).pow(2).sum(-1)
        return -squared / (2 * self.noise_scale**2) - 2 * math.log(
            2 * math.pi * self.noise_scale**2
        )

    def _grid_angles(self) -> Tensor:
        """Cell centres of the angle grid, shape ``(G, G, 2)``."""
        g = self.grid_size
        centres = -math.pi + (torch.arange(g, dtype=torch.float64) + 0.5) * (2 * math.pi / g)
        return torch.stack(torch.meshgrid(centres, centres, indexing="ij"), dim=-1)

    def _log_likelihood_grid(self, x_o: Tensor) -> tuple[Tensor, Tensor]:
        grid = self._grid_angles()
        x = torch.as_tensor(x_o, dtype=torch.float64).reshape(1, 4)
        return grid, self.log_likelihood(self.torus.from_angles(grid.reshape(-1, 2)), x)

    def grid_log_posterior(self, x_o: Tensor) -> tuple[Tensor, Tensor]:
        """Cell centres ``(G, G, 2)`` (angles) and normalised log posterior mass ``(G, G)``."""
        grid, log_like = self._log_likelihood_grid(x_o)
        log_mass = log_like - torch.logsumexp(log_like, 0)
        return grid, log_mass.reshape(self.grid_size, self.grid_size)

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        rng = as_generator(seed)
        grid, log_mass = self.grid_log_posterior(x_o)
        mass = log_mass.exp().reshape(-1).numpy()
        cells = rng.choice(mass.size, size=num_samples, p=mass / mass.sum())
        width = 2 * math.pi / self.grid_size
        jitter = (rng.random((num_samples, 2)) - 0.5) * width
        angles = grid.reshape(-1, 2)[torch.as_tensor(cells)] + torch.as_tensor(jitter)
        return self.torus.from_angles(angles).float()

    def reference_log_prob(self, theta: Tensor, x_o: Tensor) -> Tensor:
        """Posterior log density w.r.t. the torus area (grid-normalised), shape ``(N,)``."""
        _, log_like = self._log_likelihood_grid(x_o)
        cell_area = (2 * math.pi / self.grid_size) ** 2
        log_evidence = torch.logsumexp(log_like, 0) + math.log(cell_area)
        x = torch.as_tensor(x_o, dtype=torch.float64).reshape(1, 4)
        return (self.log_likelihood(theta.double(), x) - log_evidence).float()
