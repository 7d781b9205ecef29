"""SLCP (simple likelihood, complex posterior) task of the sbibm benchmark.

Four independent 2-D Gaussian draws, flattened to 8 numbers, with mean (theta_1, theta_2),
standard deviations theta_3^2 and theta_4^2 and correlation tanh(theta_5); prior U(-3, 3)^5.
As in sbibm, 1e-6 is added to the covariance diagonal. The likelihood is a Gaussian density, but
the posterior has four symmetric modes (the signs of theta_3 and theta_4) and no exact sampler:
:meth:`reference_posterior` raises ``NotImplementedError``.

References:
    Sequential Neural Likelihood (Papamakarios, Sterratt and Murray, 2019)
    https://arxiv.org/abs/1805.07226
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug.simulator import Simulator

__all__ = ["SLCP"]

NUM_DRAWS = 4
JITTER = 1e-6


def _cholesky_entries(theta):
    """Entries (l11, l21, l22) of the 2x2 Cholesky factor, for NumPy arrays or tensors."""
    lib = torch if isinstance(theta, Tensor) else np
    std_1, std_2 = theta[:, 2] ** 2, theta[:, 3] ** 2
    rho = lib.tanh(theta[:, 4])
    l11 = lib.sqrt(std_1**2 + JITTER)
    l21 = rho * std_1 * std_2 / l11
    l22 = lib.sqrt(std_2**2 + JITTER - l21**2)
    return l11, l21, l22


class SLCP(Simulator):
    """sbibm ``slcp``: 5 parameters, 8-D data (four 2-D points), no reference posterior."""

    name = "slcp"
    parameter_names = ("theta_1", "theta_2", "theta_3", "theta_4", "theta_5")
    observation_shape = (2 * NUM_DRAWS,)
    prior_bound: float = 3.0

    def __init__(self) -> None:
        from sbi.utils import BoxUniform

        bound = self.prior_bound * torch.ones(5)
        self._prior = BoxUniform(low=-bound, high=bound)

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        theta = theta.detach().double().numpy()
        z = rng.standard_normal((len(theta), NUM_DRAWS, 2))
        l11, l21, l22 = (entry[:, None] for entry in _cholesky_entries(theta))
        first = theta[:, :1] + l11 * z[..., 0]
        second = theta[:, 1:2] + l21 * z[..., 0] + l22 * z[..., 1]
        x = np.stack([first, second], axis=-1).reshape(len(theta), 2 * NUM_DRAWS)
        return torch.from_numpy(x).float()

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """log p(x | theta): four bivariate normal densities, for matching (or broadcast) rows.

        Arguments:
            theta: Parameters, shape ``(n, 5)``.
            x: Data, shape ``(n, 8)`` or ``(8,)``.

        Returns:
            Log-likelihoods, shape ``(n,)``.
        """
        for label, value, size in (("theta", theta, 5), ("x", x, 2 * NUM_DRAWS)):
            if not isinstance(value, Tensor) or value.shape[-1:] != (size,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"simulator {self.name!r}: {label} must be a tensor of shape (n, {size}), "
                    f"got {shape}"
                )
        theta = theta.reshape(-1, 5)
        points = x.reshape(-1, NUM_DRAWS, 2)
        l11, l21, l22 = (entry[:, None] for entry in _cholesky_entries(theta))
        # Whiten each point with the Cholesky factor: z = L^{-1} (x - m).
        z1 = (points[..., 0] - theta[:, :1]) / l11
        z2 = (points[..., 1] - theta[:, 1:2] - l21 * z1) / l22
        log_det = (l11.log() + l22.log()).squeeze(-1)
        quadratic = (z1**2 + z2**2).sum(dim=-1)
        return -0.5 * quadratic - NUM_DRAWS * (log_det + math.log(2 * math.pi))
