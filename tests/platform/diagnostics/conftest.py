"""Fixtures for the diagnostics tests: 2-D gaussian_linear with its exact posterior.

With prior ``N(0, 0.1 I)`` and ``x = theta + N(0, 0.1 I)`` (sbibm's gaussian_linear, here in two
dimensions), the posterior is ``N(x / 2, 0.05 I)``. ``GaussianPosterior`` exposes it with sbi's
posterior interface; ``scale`` and ``shift`` make deliberately wrong versions of it: a scale
below 1 is over-confident, above 1 under-confident, a shift is biased.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import sbiplug
from sbiplug.diagnostic import DiagnosticContext
from sbiplug.simulator import Simulator

NOISE_VARIANCE = 0.1
POSTERIOR_VARIANCE = 0.05  # 1 / (1 / prior variance 0.1 + 1 / noise variance 0.1)


def posterior_mean(x: Tensor) -> Tensor:
    return x * (POSTERIOR_VARIANCE / NOISE_VARIANCE)


class GaussianPosterior:
    """The exact posterior, optionally with its standard deviation scaled and mean shifted.

    Implements what sbi's diagnostics use: ``sample``, ``sample_batched`` and ``log_prob``.
    """

    def __init__(self, scale: float = 1.0, shift: float = 0.0) -> None:
        self.std = scale * math.sqrt(POSTERIOR_VARIANCE)
        self.shift = shift
        self.default_x: Tensor | None = None

    def _distribution(self, x: Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(posterior_mean(x) + self.shift, self.std)

    def set_default_x(self, x: Tensor) -> GaussianPosterior:
        self.default_x = x
        return self

    def sample(self, sample_shape=(), x: Tensor | None = None, **_: object) -> Tensor:
        x = self.default_x if x is None else x
        return self._distribution(x.reshape(2)).sample(torch.Size(sample_shape))

    def sample_batched(self, sample_shape, x: Tensor, **_: object) -> Tensor:
        return self._distribution(x.reshape(-1, 2)).sample(torch.Size(sample_shape))

    def log_prob(self, theta: Tensor, x: Tensor | None = None, **_: object) -> Tensor:
        x = self.default_x if x is None else x
        return self._distribution(x.reshape(2)).log_prob(theta).sum(-1)


class DrawsOnlyPosterior(GaussianPosterior):
    """A posterior that can only sample, like a consistency or score model without ODE."""

    log_prob = None  # type: ignore[assignment]


@pytest.fixture
def simulator() -> Simulator:
    return sbiplug.make_simulator("gaussian_linear", dim=2)


@pytest.fixture
def gaussian_posterior():
    """``gaussian_posterior(scale=1.0, shift=0.0, draws_only=False)``: the exact posterior."""

    def make(scale: float = 1.0, shift: float = 0.0, draws_only: bool = False):
        kind = DrawsOnlyPosterior if draws_only else GaussianPosterior
        return kind(scale, shift)

    return make


@pytest.fixture
def make_context(simulator):
    """``make_context(posterior, num_observations=2, seed=0, **fields)``: a DiagnosticContext.

    Observations are simulated from prior draws, so a correct posterior should fit them.
    """

    def make(posterior, num_observations: int = 2, seed: int = 0, **fields):
        theta_o = simulator.sample_prior(num_observations, seed=seed + 1)
        x_o = simulator.simulate(theta_o, seed=seed + 2)
        values = {
            "simulator": simulator,
            "posterior": posterior,
            "observations": x_o,
            "true_parameters": theta_o,
            "seed": seed,
            **fields,
        }
        return DiagnosticContext(**values)

    return make
