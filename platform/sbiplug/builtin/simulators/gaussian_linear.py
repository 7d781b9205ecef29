"""Gaussian linear tasks of the sbibm benchmark: x ~ N(theta, 0.1 I).

``gaussian_linear`` puts a Gaussian prior N(0, 0.1 I) on theta, so its posterior is Gaussian:
N(x / 2, 0.05 I). ``gaussian_linear_uniform`` puts a uniform prior U(-1, 1)^D on theta, so its
posterior is N(x, 0.1 I) truncated to the box: independent truncated normals, drawn exactly by
inverse CDF. Both have an analytic likelihood.

References:
    Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal

from sbiplug.builtin.simulators._gaussian import log_normal_box_mass, truncated_normal_ppf
from sbiplug.simulator import Simulator
from sbiplug.toolkit import (
    SeedLike,
    as_generator,
    as_observation,
    check_num_samples,
    check_positive_int,
    default_parameter_names,
)

__all__ = ["GaussianLinear", "GaussianLinearUniform"]


class _LinearGaussianNoise(Simulator):
    """x ~ N(theta, noise_variance I) in ``dim`` dimensions; the prior is left to subclasses."""

    noise_variance: float = 0.1

    def __init__(self, dim: int = 10) -> None:
        self.dim = check_positive_int("dim", dim, owner=f"simulator {self.name!r}")
        self.parameter_names = tuple(default_parameter_names(self.dim))
        self.observation_shape = (dim,)
        self._prior = self._build_prior()

    def _build_prior(self) -> Distribution:
        raise NotImplementedError

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        noise = rng.standard_normal((len(theta), self.dim))
        x = theta.detach().double().numpy() + math.sqrt(self.noise_variance) * noise
        return torch.from_numpy(x).float()

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """log N(x; theta, 0.1 I) for matching (or broadcast) rows.

        Arguments:
            theta: Parameters, shape ``(n, dim)``.
            x: Data, shape ``(n, dim)`` or ``(dim,)``.

        Returns:
            Log-likelihoods, shape ``(n,)``.
        """
        return self.pointwise_log_likelihood(theta, x).sum(dim=-1)

    def pointwise_log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """log N(x_d; theta_d, 0.1) of each coordinate (independent given theta), shape
        ``(n, dim)``: ArviZ's pointwise ``log_likelihood`` for PSIS-LOO."""
        for label, value in (("theta", theta), ("x", x)):
            if not isinstance(value, Tensor) or value.shape[-1:] != (self.dim,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"simulator {self.name!r}: {label} must be a tensor of shape (n, {self.dim}), "
                    f"got {shape}"
                )
        noise = Normal(torch.zeros(()), math.sqrt(self.noise_variance))
        return noise.log_prob(x - theta)


class GaussianLinear(_LinearGaussianNoise):
    """sbibm ``gaussian_linear``: prior N(0, 0.1 I), x ~ N(theta, 0.1 I), analytic posterior.

    Arguments:
        dim: Number of parameters and of data dimensions (10 in sbibm).
    """

    name = "gaussian_linear"
    prior_variance: float = 0.1

    def _build_prior(self) -> Distribution:
        return MultivariateNormal(
            torch.zeros(self.dim), covariance_matrix=self.prior_variance * torch.eye(self.dim)
        )

    def _posterior_moments(self, x_o: np.ndarray) -> tuple[np.ndarray, float]:
        precision = 1.0 / self.prior_variance + 1.0 / self.noise_variance
        variance = 1.0 / precision
        return variance * x_o / self.noise_variance, variance

    def analytic_posterior(self, x_o: Tensor) -> Distribution:
        """The exact posterior p(theta | x_o) as a torch distribution.

        Arguments:
            x_o: One observation, shape ``(dim,)`` or ``(1, dim)``.

        Returns:
            A diagonal Gaussian with event shape ``(dim,)``: N(x_o / 2, 0.05 I).
        """
        mean, variance = self._posterior_moments(as_observation(x_o, (self.dim,), self.name))
        loc = torch.as_tensor(mean, dtype=torch.float32)
        return Independent(Normal(loc, math.sqrt(variance)), 1)

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Exact posterior draws, shape ``(num_samples, dim)``."""
        num_samples = check_num_samples(num_samples, self.name)
        mean, variance = self._posterior_moments(as_observation(x_o, (self.dim,), self.name))
        noise = as_generator(seed).standard_normal((num_samples, self.dim))
        return torch.from_numpy(mean + math.sqrt(variance) * noise).float()

    def reference_log_prob(self, theta: Tensor, x_o: Tensor) -> Tensor:
        """log p(theta | x_o) of the exact posterior, shape ``(n,)`` for ``theta`` ``(n, dim)``."""
        return self.analytic_posterior(x_o).log_prob(theta)


class GaussianLinearUniform(_LinearGaussianNoise):
    """sbibm ``gaussian_linear_uniform``: prior U(-1, 1)^dim, x ~ N(theta, 0.1 I).

    The posterior is N(x_o, 0.1 I) truncated to the prior box, sampled exactly per dimension.

    Arguments:
        dim: Number of parameters and of data dimensions (10 in sbibm).
    """

    name = "gaussian_linear_uniform"
    prior_bound: float = 1.0

    def _build_prior(self) -> Distribution:
        from sbi.utils import BoxUniform

        bound = self.prior_bound * torch.ones(self.dim)
        return BoxUniform(low=-bound, high=bound)

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Exact posterior draws, shape ``(num_samples, dim)``."""
        num_samples = check_num_samples(num_samples, self.name)
        loc = as_observation(x_o, (self.dim,), self.name)
        u = as_generator(seed).random((num_samples, self.dim))
        scale = math.sqrt(self.noise_variance)
        draws = truncated_normal_ppf(u, loc, scale, -self.prior_bound, self.prior_bound)
        return torch.from_numpy(draws).float()

    def reference_log_prob(self, theta: Tensor, x_o: Tensor) -> Tensor:
        """log p(theta | x_o) of the exact posterior, shape ``(n,)``; ``-inf`` outside the box."""
        loc = as_observation(x_o, (self.dim,), self.name)
        scale = math.sqrt(self.noise_variance)
        log_mass = log_normal_box_mass(loc, scale, -self.prior_bound, self.prior_bound).sum()
        log_prob = self.log_likelihood(theta, torch.as_tensor(loc, dtype=theta.dtype)) - log_mass
        inside = (theta.abs() <= self.prior_bound).all(dim=-1)
        return torch.where(inside, log_prob, torch.full_like(log_prob, -math.inf))
