"""``waveform``: three parameters seen through a 100-point noisy sinusoid (high-dimensional x).

theta ~ Uniform([-1, 1]^3) sets an amplitude a = 1 + 0.4 theta_1, a frequency
f = 1.5 + 0.5 theta_2 and a phase phi = 0.8 theta_3; x_j = a sin(2 pi f t_j + phi) + sigma eps_j
at ``num_points`` times t_j evenly spread over [0, 1]. The noiseless outputs fill a curved
3-dimensional manifold in R^100, so linear summaries (PCA) lose information that a nonlinear
one keeps. The likelihood is Gaussian, hence tractable; the reference posterior is sampled
exactly (asymptotically) by random-walk Metropolis chains started from importance-resampled
prior draws, with the proposal covariance adapted during burn-in. ``drift > 0`` adds a linear
trend drift (2 t - 1) that leaves the manifold: the misspecified variant for OOD checks.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug import Simulator
from sbiplug.toolkit import SeedLike, as_generator, check_float, check_positive, check_positive_int

__all__ = ["Waveform"]


class Waveform(Simulator):
    """Noisy sinusoid with amplitude, frequency and phase; exact MCMC reference posterior.

    Arguments:
        num_points: Number D of observed time points (>= 4).
        noise_scale: Standard deviation sigma of the Gaussian noise per point.
        drift: Size of an added linear trend drift (2 t - 1) (0: well specified).
        num_chains, burn_in, thinning: Metropolis settings of :meth:`reference_posterior`.
    """

    name = "waveform"
    parameter_names = ("amplitude", "frequency", "phase")

    def __init__(
        self,
        num_points: int = 100,
        noise_scale: float = 0.3,
        drift: float = 0.0,
        num_chains: int = 64,
        burn_in: int = 1000,
        thinning: int = 5,
    ):
        owner = "simulator 'waveform'"
        self.num_points = check_positive_int("num_points", num_points, owner=owner)
        if self.num_points < 4:
            raise ValueError(f"{owner}: num_points must be >= 4, got {num_points}")
        self.noise_scale = check_positive("noise_scale", noise_scale, owner=owner)
        self.drift = check_float("drift", drift, owner=owner)
        self.num_chains = check_positive_int("num_chains", num_chains, owner=owner)
        self.burn_in = check_positive_int("burn_in", burn_in, owner=owner)
        self.thinning = check_positive_int("thinning", thinning, owner=owner)
        self.observation_shape = (self.num_points,)
        self.times = torch.linspace(0.0, 1.0, self.num_points, dtype=torch.float64)
        from sbi.utils import BoxUniform

        self._prior = BoxUniform(-torch.ones(3), torch.ones(3))

    @property
    def prior(self) -> Distribution:
        return self._prior

    def mean_observation(self, theta: Tensor) -> Tensor:
        """The noiseless output for theta ``(N, 3)``: ``(N, num_points)`` (theta's dtype)."""
        times = self.times.to(theta)
        amplitude = 1.0 + 0.4 * theta[..., 0:1]
        frequency = 1.5 + 0.5 * theta[..., 1:2]
        phase = 0.8 * theta[..., 2:3]
        wave = amplitude * torch.sin(2 * math.pi * frequency * times + phase)
        return wave + self.drift * (2 * times - 1)

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        noise = torch.as_tensor(rng.standard_normal((theta.shape[0], self.num_points)))
        return (self.mean_observation(theta.double()) + self.noise_scale * noise).float()

    def log_likelihood(self, theta: Tensor, x: Tensor) -> Tensor:
        """log p(x | theta) for theta ``(N, 3)`` and x ``(N or 1, num_points)``: ``(N,)``."""
        squared = (x - self.mean_observation(theta)).pow(2).sum(-1)
        normaliser = 0.5 * self.num_points * math.log(2 * math.pi * self.noise_scale**2)
        return -squared / (2 * self.noise_scale**2) - normaliser

    def _log_posterior(self, theta: Tensor, x: Tensor) -> Tensor:
        inside = (theta.abs() <= 1).all(-1)
        log_like = self.log_likelihood(theta, x)
        return torch.where(inside, log_like, torch.full_like(log_like, -math.inf))

    def reference_posterior(
        self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None
    ) -> Tensor:
        """Draws ``(num_samples, 3)`` from p(theta | x_o) by Metropolis on the exact likelihood."""
        num_samples = check_positive_int("num_samples", num_samples, owner="waveform reference")
        rng = as_generator(seed)
        x = torch.as_tensor(x_o, dtype=torch.float64).reshape(1, self.num_points)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        chains = self.num_chains
        # start: importance-resampled prior draws (cover every mode the prior sees)
        candidates = torch.rand(20000, 3, generator=generator, dtype=torch.float64) * 2 - 1
        log_weights = self.log_likelihood(candidates, x)
        weights = torch.softmax(log_weights, 0)
        start = torch.multinomial(weights, chains, replacement=True, generator=generator)
        current = candidates[start]
        covariance = torch.diag(torch.full((3,), 0.02**2, dtype=torch.float64))
        current_log = self._log_posterior(current, x)
        per_chain = math.ceil(num_samples / chains)
        kept, accepted = [], []
        total = self.burn_in + per_chain * self.thinning
        for step in range(total):
            if step < self.burn_in and step % 100 == 99 and step >= 199:
                recent = torch.stack(kept[-100:]).reshape(-1, 3) if kept else current
                covariance = (2.38**2 / 3) * torch.cov(recent.T) + 1e-10 * torch.eye(
                    3, dtype=torch.float64
                )
            noise = torch.randn(chains, 3, generator=generator, dtype=torch.float64)
            proposal = current + noise @ torch.linalg.cholesky(covariance).T
            proposal_log = self._log_posterior(proposal, x)
            uniform = torch.rand(chains, generator=generator, dtype=torch.float64)
            accept = uniform.log() < proposal_log - current_log
            current = torch.where(accept[:, None], proposal, current)
            current_log = torch.where(accept, proposal_log, current_log)
            if step < self.burn_in:
                kept.append(current.clone())
                kept = kept[-100:]
            elif (step - self.burn_in) % self.thinning == self.thinning - 1:
                accepted.append(current.clone())
        draws = torch.stack(accepted, dim=1).reshape(-1, 3)  # chain-major
        order = torch.randperm(len(draws), generator=generator)[:num_samples]
        return draws[order].float()
