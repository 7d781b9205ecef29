"""A simulator plugin for the ledger tests: an option that changes the data, a prior set in code,
and a delay per simulated row (a slow simulator for the crash test).

Registered in-process with the ``register_plugin`` fixture, or installed for a subprocess as a
fake distribution whose ``sbiplug`` entry point names this module.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from sbiplug import SimulatorSpec, hookimpl
from sbiplug.simulator import Simulator


class NoisyToy(Simulator):
    """theta ~ N(0, PRIOR_SCALE^2 I_2), x ~ N(theta, sigma^2 I_2)."""

    name = "noisy_toy"
    parameter_names = ("mu_1", "mu_2")
    observation_shape = (2,)
    prior_scale = 1.0  # a test edits it: a prior changed in the code, not through an option

    def __init__(self, sigma: float = 1.0, seconds_per_row: float = 0.0) -> None:
        self.sigma = float(sigma)
        self.seconds_per_row = float(seconds_per_row)
        self._prior = Independent(Normal(torch.zeros(2), self.prior_scale * torch.ones(2)), 1)

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        if len(theta) > 2:  # the 2-row dry run stays quick
            time.sleep(self.seconds_per_row * len(theta))
        noise = torch.as_tensor(rng.standard_normal(theta.shape), dtype=torch.float32)
        return theta + self.sigma * noise


@hookimpl
def register_simulators():
    yield SimulatorSpec(
        name="noisy_toy",
        factory=NoisyToy,
        description="a 2-D Gaussian location model with a noise option (ledger tests)",
    )
