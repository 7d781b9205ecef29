"""Two moons task of the sbibm benchmark: a bimodal, crescent-shaped posterior.

Simulator: a ~ U(-pi/2, pi/2), r ~ N(0.1, 0.01^2), p = (r cos a + 0.25, r sin a) and
x = p + (-|theta_1 + theta_2| / sqrt 2, (theta_2 - theta_1) / sqrt 2), with a prior U(-1, 1)^2.

The map from theta to the shift is a rotation followed by a fold (two-to-one, unit Jacobian), so
the likelihood is the density of p = x - shift(theta), tractable in polar coordinates, and exact
posterior draws come from inverting the simulator: draw p, solve for theta (two mirror
solutions, one picked at random), reject solutions outside the prior. Unlike sbibm, draws whose
implied |theta_1 + theta_2| would be negative are rejected too, which makes the sampler exact
for every observation.

References:
    Automatic Posterior Transformation for Likelihood-free Inference (Greenberg et al., 2019)
    https://arxiv.org/abs/1905.07488

    Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special
from torch import Tensor
from torch.distributions import Distribution

from sbiplug.simulator import Simulator
from sbiplug.toolkit import SeedLike, as_generator, as_observation, check_num_samples

__all__ = ["TwoMoons"]

SQRT2 = math.sqrt(2.0)


class TwoMoons(Simulator):
    """sbibm ``two_moons``: 2 parameters, 2-D data, exact reference posterior and likelihood."""

    name = "two_moons"
    parameter_names = ("theta_1", "theta_2")
    observation_shape = (2,)

    prior_bound: float = 1.0
    radius_mean: float = 0.1
    radius_std: float = 0.01
    offset: float = 0.25

    def __init__(self) -> None:
        from sbi.utils import BoxUniform

        bound = self.prior_bound * torch.ones(2)
        self._prior = BoxUniform(low=-bound, high=bound)

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _crescent(self, normals: np.ndarray) -> np.ndarray:
        """The noise point p from two standard normals per row, shape ``(n, 2)``."""
        angle = math.pi * (special.ndtr(normals[:, 0]) - 0.5)
        radius = self.radius_mean + self.radius_std * normals[:, 1]
        return np.stack([radius * np.cos(angle) + self.offset, radius * np.sin(angle)], axis=1)

    @staticmethod
    def _shift(theta: np.ndarray) -> np.ndarray:
        folded = np.abs(theta[:, 0] + theta[:, 1]) / SQRT2
        rotated = (theta[:, 1] - theta[:, 0]) / SQRT2
        return np.stack([-folded, rotated], axis=1)

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        p = self._crescent(rng.standard_normal((len(theta), 2)))
        x = p + self._shift(theta.detach().double().numpy())
        return torch.from_numpy(x).float()

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """Exact log p(x | theta) for matching (or broadcast) rows.

        The noise point p = x - shift(theta) has density N(r; 0.1, 0.01^2) / (pi r) in polar
        coordinates (r, a) around (0.25, 0); points left of the offset come from r < 0.

        Arguments:
            theta: Parameters, shape ``(n, 2)``.
            x: Data, shape ``(n, 2)`` or ``(2,)``.

        Returns:
            Log-likelihoods, shape ``(n,)``.
        """
        for label, value in (("theta", theta), ("x", x)):
            if not isinstance(value, Tensor) or value.shape[-1:] != (2,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"simulator {self.name!r}: {label} must be a tensor of shape (n, 2), "
                    f"got {shape}"
                )
        folded = (theta[..., 0] + theta[..., 1]).abs() / SQRT2
        rotated = (theta[..., 1] - theta[..., 0]) / SQRT2
        u = x[..., 0] + folded - self.offset
        v = x[..., 1] - rotated
        distance = torch.hypot(u, v)
        signed_radius = torch.where(u >= 0, distance, -distance)
        standardized = (signed_radius - self.radius_mean) / self.radius_std
        return (
            -0.5 * standardized**2
            - math.log(self.radius_std * math.sqrt(2 * math.pi))
            - math.log(math.pi)
            - torch.log(distance)
        )

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Exact posterior draws by inverting the simulator, shape ``(num_samples, 2)``.

        Raises:
            ValueError: when x_o is (almost) impossible under the prior: none of the first
                million inversions lands inside the prior.
        """
        num_samples = check_num_samples(num_samples, self.name)
        x_o = as_observation(x_o, (2,), self.name)
        rng = as_generator(seed)
        accepted = [np.empty((0, 2))]
        num_accepted, num_tried = 0, 0
        batch_size = max(2 * num_samples, 1024)
        while num_accepted < num_samples:
            normals = rng.standard_normal((batch_size, 3))
            p = self._crescent(normals[:, :2])
            folded = p[:, 0] - x_o[0]  # |theta_1 + theta_2| / sqrt 2 must be >= 0
            sign = np.where(normals[:, 2] < 0, -1.0, 1.0)
            q0, q1 = sign * folded, x_o[1] - p[:, 1]
            theta = np.stack([(q0 - q1) / SQRT2, (q0 + q1) / SQRT2], axis=1)
            keep = (folded >= 0) & np.all(np.abs(theta) <= self.prior_bound, axis=1)
            accepted.append(theta[keep])
            num_accepted += int(keep.sum())
            num_tried += batch_size
            if num_accepted == 0 and num_tried >= 1_000_000:
                raise ValueError(
                    f"simulator {self.name!r}: x_o={x_o.tolist()} has no posterior mass inside "
                    f"the prior box [-1, 1]^2 ({num_accepted} of {num_tried} draws accepted)"
                )
            rate = max(num_accepted, 1) / num_tried
            batch_size = min(int(1.2 * (num_samples - num_accepted) / rate) + 1024, 4_000_000)
        return torch.from_numpy(np.concatenate(accepted)[:num_samples]).float()
