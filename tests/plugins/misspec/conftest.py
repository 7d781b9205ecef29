"""Shared fixtures: a pair of small trained summary networks, with and without the MMD penalty."""

from __future__ import annotations

import pytest
import torch

from sbiplug_misspec import NPEMMD, GaussianMeans

N_OBS = 10  # fewer observations per set than the paper's 100 keep the fixtures cheap
NUM_SIMULATIONS = 1500
MAX_EPOCHS = 7  # sbi runs max_num_epochs + 1 epochs


def _train(mmd_weight: float, pooling: str = "mean") -> NPEMMD:
    simulator = GaussianMeans(n_obs=N_OBS)
    theta = simulator.sample_prior(NUM_SIMULATIONS, seed=0)
    x = simulator.simulate(theta, seed=1)
    torch.manual_seed(0)
    trainer = NPEMMD(
        simulator.prior,
        mmd_weight=mmd_weight,
        embedding_hidden_features=32,
        embedding_pooling=pooling,
        show_progress_bars=False,
    )
    trainer.append_simulations(theta, x).train(
        max_num_epochs=MAX_EPOCHS, training_batch_size=50, learning_rate=1e-3
    )
    return trainer


@pytest.fixture(scope="session")
def simulator() -> GaussianMeans:
    return GaussianMeans(n_obs=N_OBS)


@pytest.fixture(scope="session")
def regularised_trainer() -> NPEMMD:
    """npe_mmd with the default penalty (weight 1, IMQ), same seed and budget as below."""
    return _train(1.0)


@pytest.fixture(scope="session")
def unregularised_trainer() -> NPEMMD:
    """The same network and budget trained without the penalty."""
    return _train(0.0)


@pytest.fixture(scope="session")
def centred_trainer() -> NPEMMD:
    """npe_mmd with the ``"centred"`` (location + shape blocks) DeepSet, same budget."""
    return _train(1.0, "centred")


@pytest.fixture(scope="session")
def centred_unregularised_trainer() -> NPEMMD:
    """The centred DeepSet trained without the penalty."""
    return _train(0.0, "centred")


DEFAULTS_N_OBS = 30  # sets large enough for a skewness to be seen at N = 5


def _train_at_defaults(mmd_weight: float) -> NPEMMD:
    """npe_mmd with every option at its default (``mmd_weight=0``: the same net, plain NPE)."""
    simulator = GaussianMeans(n_obs=DEFAULTS_N_OBS)
    theta = simulator.sample_prior(2000, seed=10)
    x = simulator.simulate(theta, seed=11)
    torch.manual_seed(1)
    trainer = NPEMMD(simulator.prior, mmd_weight=mmd_weight, show_progress_bars=False)
    trainer.append_simulations(theta, x).train(
        max_num_epochs=15, training_batch_size=100, learning_rate=1e-3
    )
    return trainer


@pytest.fixture(scope="session")
def defaults_simulator() -> GaussianMeans:
    return GaussianMeans(n_obs=DEFAULTS_N_OBS)


@pytest.fixture(scope="session")
def default_trainer() -> NPEMMD:
    return _train_at_defaults(1.0)


@pytest.fixture(scope="session")
def default_plain_trainer() -> NPEMMD:
    return _train_at_defaults(0.0)
