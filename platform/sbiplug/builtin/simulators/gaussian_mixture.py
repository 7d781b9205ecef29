"""Gaussian mixture task of the sbibm benchmark: x ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I).

The prior is U(-10, 10)^D. The likelihood is symmetric in x and theta, so the posterior is the
same two-component mixture centred on x_o, truncated to the prior box. Truncation reweights the
components by the mass each keeps inside the box; exact draws pick a component with those
weights, then draw each dimension from a truncated normal by inverse CDF.

sbibm draws a single mixture component for a whole batch of simulations; here every
simulation draws its own, as the model (and its reference posterior) states.

References:
    Approximate Bayesian computation via regression density estimation
    (Sisson, Fan and Tanaka, 2007); Benchmarking Simulation-Based Inference
    (Lueckmann et al., 2021) https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special
from torch import Tensor
from torch.distributions import Distribution

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

__all__ = ["GaussianMixture"]


class GaussianMixture(Simulator):
    """sbibm ``gaussian_mixture``: mean of a two-scale Gaussian mixture under a uniform prior.

    Arguments:
        dim: Number of parameters and of data dimensions (2 in sbibm).
    """

    name = "gaussian_mixture"
    prior_bound: float = 10.0
    scales: tuple[float, float] = (1.0, 0.1)
    weights: tuple[float, float] = (0.5, 0.5)

    def __init__(self, dim: int = 2) -> None:
        from sbi.utils import BoxUniform

        self.dim = check_positive_int("dim", dim, owner=f"simulator {self.name!r}")
        self.parameter_names = tuple(default_parameter_names(self.dim))
        self.observation_shape = (dim,)
        bound = self.prior_bound * torch.ones(dim)
        self._prior = BoxUniform(low=-bound, high=bound)

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        # One block per call: column 0 picks the component (its sign is a fair coin).
        normals = rng.standard_normal((len(theta), 1 + self.dim))
        scale = np.where(normals[:, :1] < 0, self.scales[0], self.scales[1])
        x = theta.detach().double().numpy() + scale * normals[:, 1:]
        return torch.from_numpy(x).float()

    def _component_log_densities(self, theta: Tensor, x: Tensor) -> Tensor:
        """log(w_k N(x; theta, s_k^2 I)) per component, shape ``(n, 2)``."""
        squared = ((x - theta) ** 2).sum(dim=-1, keepdim=True)
        scales = torch.tensor(self.scales, dtype=squared.dtype)
        log_weights = torch.tensor(self.weights, dtype=squared.dtype).log()
        return (
            log_weights
            - 0.5 * squared / scales**2
            - self.dim * (scales.log() + 0.5 * math.log(2 * math.pi))
        )

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """log p(x | theta) for matching (or broadcast) rows.

        Arguments:
            theta: Parameters, shape ``(n, dim)``.
            x: Data, shape ``(n, dim)`` or ``(dim,)``.

        Returns:
            Log-likelihoods, shape ``(n,)``.
        """
        for label, value in (("theta", theta), ("x", x)):
            if not isinstance(value, Tensor) or value.shape[-1:] != (self.dim,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"simulator {self.name!r}: {label} must be a tensor of shape (n, {self.dim}), "
                    f"got {shape}"
                )
        return torch.logsumexp(self._component_log_densities(theta, x), dim=-1)

    def _truncated_log_weights(self, x_o: np.ndarray) -> np.ndarray:
        """log(w_k * P_k(box)): the unnormalised posterior weight of each component."""
        return np.array(
            [
                math.log(weight)
                + log_normal_box_mass(x_o, scale, -self.prior_bound, self.prior_bound).sum()
                for weight, scale in zip(self.weights, self.scales)
            ]
        )

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Exact posterior draws, shape ``(num_samples, dim)``."""
        num_samples = check_num_samples(num_samples, self.name)
        x_o = as_observation(x_o, (self.dim,), self.name)
        log_weights = self._truncated_log_weights(x_o)
        broad_probability = math.exp(log_weights[0] - special.logsumexp(log_weights))
        u = as_generator(seed).random((num_samples, 1 + self.dim))
        scale = np.where(u[:, :1] < broad_probability, self.scales[0], self.scales[1])
        draws = truncated_normal_ppf(u[:, 1:], x_o, scale, -self.prior_bound, self.prior_bound)
        return torch.from_numpy(draws).float()

    def reference_log_prob(self, theta: Tensor, x_o: Tensor) -> Tensor:
        """log p(theta | x_o) of the exact posterior, shape ``(n,)``; ``-inf`` outside the box."""
        x_array = as_observation(x_o, (self.dim,), self.name)
        log_evidence = float(special.logsumexp(self._truncated_log_weights(x_array)))
        x_tensor = torch.as_tensor(x_array, dtype=theta.dtype)
        log_prob = self.log_likelihood(theta, x_tensor) - log_evidence
        inside = (theta.abs() <= self.prior_bound).all(dim=-1)
        return torch.where(inside, log_prob, torch.full_like(log_prob, -math.inf))
