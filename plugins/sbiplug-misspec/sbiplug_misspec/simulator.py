"""The 2-D Gaussian-means model with misspecification knobs (Schmitt et al., 2023, Experiment 1).

Detecting Model Misspecification in Amortized Bayesian Inference with Neural Networks
(Schmitt, Bürkner, Köthe, Radev; arXiv 2112.08866, 2406.03154). Each data set holds ``n_obs``
i.i.d. 2-D observations of an unknown mean μ::

    μ ~ N(μ0 · 1, τ0² I)        prior_loc μ0 = 0, prior_scale τ0 = 1
    x_k ~ N(μ, τ I)             noise_scale τ = 1 (τ multiplies the covariance, as in the paper)
    a fraction λ of the x_k     contamination λ = 0; floor(λ · n_obs) observations, chosen
      is replaced by noise      without replacement, become ξ = 3τ (B − 2/7), B ~ Beta(2, 5)

With the default knobs this is the training model M. Every instance is one generative model:
setting a knob gives the misspecified process that produces the *observed* data, and its
``prior`` is that process's parameter distribution N(μ0 · 1, τ0² I). Train and test against
``GaussianMeans()`` and draw the observations from, e.g., ``GaussianMeans(noise_scale=10)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import betaincinv, ndtri
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal

from sbiplug import Simulator
from sbiplug.toolkit import (
    SeedLike,
    as_generator,
    check_float,
    check_num_samples,
    check_positive,
    check_positive_int,
)

__all__ = ["GaussianMeans"]

_TINY = np.finfo(np.float64).tiny


class GaussianMeans(Simulator):
    """``n_obs`` i.i.d. draws around a 2-D mean, with four misspecification knobs.

    Arguments:
        n_obs: Observations per data set; ``observation_shape`` is ``(n_obs, 2)``.
        prior_loc: μ0, added to both coordinates of the prior mean.
        prior_scale: τ0, the prior's standard deviation.
        noise_scale: τ, the factor on the likelihood covariance (noise std is sqrt(τ)).
        contamination: λ in [0, 1], the fraction of observations replaced by Beta noise.
    """

    name = "gaussian_means"
    parameter_names = ("mu_1", "mu_2")

    def __init__(
        self,
        n_obs: int = 100,
        prior_loc: float = 0.0,
        prior_scale: float = 1.0,
        noise_scale: float = 1.0,
        contamination: float = 0.0,
    ) -> None:
        owner = f"simulator {self.name!r}"
        self.n_obs = check_positive_int("n_obs", n_obs, owner=owner)
        self.prior_loc = float(prior_loc)
        self.prior_scale = check_positive("prior_scale", prior_scale, owner=owner)
        self.noise_scale = check_positive("noise_scale", noise_scale, owner=owner)
        self.contamination = check_float(
            "contamination", contamination, minimum=0.0, maximum=1.0, owner=owner
        )
        self.num_contaminated = math.floor(self.contamination * n_obs)
        self.observation_shape = (n_obs, 2)
        self._prior = MultivariateNormal(
            torch.full((2,), self.prior_loc), self.prior_scale**2 * torch.eye(2)
        )

    @property
    def prior(self) -> Distribution:
        return self._prior

    @property
    def is_well_specified(self) -> bool:
        """Whether every knob is at the training model's value."""
        return (
            self.prior_loc == 0.0
            and self.prior_scale == 1.0
            and self.noise_scale == 1.0
            and self.num_contaminated == 0
        )

    @property
    def has_reference_posterior(self) -> bool:
        return self.num_contaminated == 0

    @property
    def has_log_likelihood(self) -> bool:
        return self.num_contaminated == 0

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        n, n_obs, n_cont = len(theta), self.n_obs, self.num_contaminated
        # One uniform block per call, one row per data set: simulating a batch equals
        # simulating its rows one after another. Columns: Gaussian noise (2 n_obs), then for
        # contamination the Beta noise (2 n_cont) and keys whose order picks the rows (n_obs).
        width = 2 * n_obs + (2 * n_cont + n_obs if n_cont else 0)
        uniform = rng.random((n, width)).clip(_TINY, None)
        noise = ndtri(uniform[:, : 2 * n_obs]).reshape(n, n_obs, 2)
        x = theta.double().numpy()[:, None, :] + math.sqrt(self.noise_scale) * noise
        if n_cont:
            beta = betaincinv(2.0, 5.0, uniform[:, 2 * n_obs : 2 * n_obs + 2 * n_cont])
            xi = 3.0 * self.noise_scale * (beta - 2.0 / 7.0)
            keys = uniform[:, 2 * n_obs + 2 * n_cont :]
            chosen = np.argsort(keys, axis=1)[:, :n_cont]
            x[np.arange(n)[:, None], chosen] = xi.reshape(n, n_cont, 2)
        return torch.as_tensor(x, dtype=torch.float32)

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Exact draws from the conjugate posterior of μ under this instance's model.

        Raises:
            NotImplementedError: under contamination, where there is no closed form.
        """
        if self.num_contaminated:
            raise NotImplementedError(
                "gaussian_means: no closed-form posterior under contamination > 0"
            )
        x_o = torch.as_tensor(x_o, dtype=torch.float64)
        if tuple(x_o.shape) != self.observation_shape:
            raise ValueError(
                f"gaussian_means: x_o must have shape {self.observation_shape}, "
                f"got {tuple(x_o.shape)}"
            )
        num_samples = check_num_samples(num_samples, self.name)
        precision = 1.0 / self.prior_scale**2 + self.n_obs / self.noise_scale
        mean = (self.prior_loc / self.prior_scale**2 + x_o.sum(0) / self.noise_scale) / precision
        rng = as_generator(seed)
        draws = mean.numpy() + rng.standard_normal((num_samples, 2)) / math.sqrt(precision)
        return torch.as_tensor(draws, dtype=torch.float32)

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """log p(x | μ) for matching rows (Gaussian part only), shape ``(n,)``.

        Raises:
            NotImplementedError: under contamination.
        """
        if self.num_contaminated:
            raise NotImplementedError(
                "gaussian_means: the contaminated likelihood is not implemented"
            )
        theta = torch.as_tensor(theta, dtype=torch.float32).reshape(-1, 1, 2)
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1, self.n_obs, 2)
        residual = (x - theta).square().sum(dim=(1, 2))
        dimension = 2 * self.n_obs
        return -0.5 * residual / self.noise_scale - 0.5 * dimension * math.log(
            2 * math.pi * self.noise_scale
        )

    def __repr__(self) -> str:
        return (
            f"GaussianMeans(n_obs={self.n_obs}, prior_loc={self.prior_loc}, "
            f"prior_scale={self.prior_scale}, noise_scale={self.noise_scale}, "
            f"contamination={self.contamination})"
        )
