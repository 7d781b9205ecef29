"""Shared fixtures: one small CMPE trained once per session on a 2-D Gaussian linear task.

gaussian_linear (dim 2): prior N(0, 0.1 I), x ~ N(theta, 0.1 I), so the posterior is analytic,
N(x / 2, 0.05 I).
"""

from __future__ import annotations

import pytest
import torch

import sbiplug

NUM_SIMULATIONS = 1000
TRAIN_OPTIONS = {"num_steps": 800}
ESTIMATOR_OPTIONS = {"hidden_features": 64, "num_blocks": 2}


@pytest.fixture(scope="session")
def gaussian_task():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    torch.manual_seed(0)
    theta = simulator.prior.sample((NUM_SIMULATIONS,))
    x = simulator.simulate(theta, seed=1)
    return simulator, theta, x


@pytest.fixture(scope="session")
def trained(gaussian_task):
    """(simulator, trainer, posterior) after a short training run."""
    from sbiplug_cmpe import CMPE

    simulator, theta, x = gaussian_task
    torch.manual_seed(0)
    trainer = CMPE(simulator.prior, **ESTIMATOR_OPTIONS)
    trainer.append_simulations(theta, x).train(**TRAIN_OPTIONS)
    return simulator, trainer, trainer.build_posterior()
