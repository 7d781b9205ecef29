"""Tiny simulators for the Study tests: a conjugate Gaussian and some misbehaving variants."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal

from sbiplug.simulator import SeedLike, Simulator, as_generator

NOISE = 0.5


class GaussianToy(Simulator):
    """theta ~ N(0, I_2), x ~ N(theta, NOISE^2 I_2): posterior N(x / (1 + s^2), s^2 / (1 + s^2))."""

    name = "gaussian_toy"
    parameter_names = ("mu_1", "mu_2")
    observation_shape = (2,)

    def __init__(self) -> None:
        self._prior = MultivariateNormal(torch.zeros(2), torch.eye(2))
        self.rows_simulated = 0
        self.calls = 0

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        self.calls += 1
        self.rows_simulated += len(theta)
        noise = rng.standard_normal(theta.shape)
        return theta + NOISE * torch.as_tensor(noise, dtype=torch.float32)

    def reference_posterior(self, x_o: Tensor, num_samples: int, *, seed: SeedLike = None):
        shrink = 1.0 / (1.0 + NOISE**2)
        normals = as_generator(seed).standard_normal((num_samples, 2))
        mean = shrink * x_o.reshape(1, 2).double().numpy()
        return torch.as_tensor(mean + np.sqrt(NOISE**2 * shrink) * normals, dtype=torch.float32)


class CrashingToy(GaussianToy):
    """Raises on call number ``crash_at`` (1-based): a run killed mid-simulation."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at = crash_at

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        if self.calls + 1 == self.crash_at:
            raise RuntimeError("simulated crash")
        return super()._simulate(theta, rng)


class NaNToy(GaussianToy):
    """Returns NaN for every row whose first parameter exceeds 1 (about 16% of the prior)."""

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        x = super()._simulate(theta, rng)
        x[theta[:, 0] > 1.0] = float("nan")
        return x


class WrongShapeToy(GaussianToy):
    """Declares 2-D data but returns 3 columns."""

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        self.rows_simulated += len(theta)
        return torch.zeros(len(theta), 3)
