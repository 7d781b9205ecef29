"""The gaussian_means simulator and its misspecification knobs."""

from __future__ import annotations

import math

import pytest
import torch

import sbiplug
from sbiplug_misspec import GaussianMeans


def test_registered_and_shapes():
    simulator = sbiplug.make_simulator("gaussian_means", n_obs=7)
    assert isinstance(simulator, GaussianMeans)
    assert simulator.observation_shape == (7, 2)
    x = simulator.simulate(simulator.sample_prior(3, seed=0), seed=1)
    assert x.shape == (3, 7, 2) and x.dtype == torch.float32


@pytest.mark.parametrize("knobs", [{}, {"contamination": 0.3, "noise_scale": 2.0}])
def test_a_batch_equals_its_rows_simulated_one_after_another(knobs):
    import numpy as np

    simulator = GaussianMeans(n_obs=10, **knobs)
    theta = simulator.sample_prior(4, seed=0)
    batch = simulator.simulate(theta, seed=5)
    rng = np.random.default_rng(5)
    rows = torch.stack([simulator.simulate(t[None], seed=rng)[0] for t in theta])
    torch.testing.assert_close(batch, rows)
    torch.testing.assert_close(batch, simulator.simulate(theta, seed=5))


def test_prior_knobs_set_the_parameter_distribution():
    simulator = GaussianMeans(prior_loc=2.0, prior_scale=3.0)
    theta = simulator.sample_prior(20_000, seed=0)
    # Standard errors: 3 / sqrt(2e4) = 0.02 for the mean; ~0.015 relative for the std.
    torch.testing.assert_close(theta.mean(0), torch.full((2,), 2.0), atol=0.1, rtol=0)
    torch.testing.assert_close(theta.std(0), torch.full((2,), 3.0), atol=0.1, rtol=0)


def test_noise_scale_multiplies_the_covariance():
    simulator = GaussianMeans(n_obs=200, noise_scale=4.0)
    x = simulator.simulate(torch.zeros(50, 2), seed=0)
    # 20 000 values of variance 4: the sample variance has sd 4 * sqrt(2 / 2e4) = 0.04.
    assert float(x.var()) == pytest.approx(4.0, abs=0.2)


def test_contamination_replaces_the_stated_number_of_observations_with_beta_noise():
    simulator = GaussianMeans(n_obs=100, contamination=0.25)
    assert simulator.num_contaminated == 25
    theta = torch.full((200, 2), 50.0)  # clean observations sit near 50, noise near 0
    x = simulator.simulate(theta, seed=0)
    noisy = x.abs().amax(-1) < 10
    assert bool((noisy.sum(1) == 25).all())
    xi = x[noisy]
    # ξ = 3 (B − 2/7), B ~ Beta(2, 5): mean 0, range [−6/7, 15/7].
    assert float(xi.mean()) == pytest.approx(0.0, abs=0.02)
    assert float(xi.min()) >= -6 / 7 and float(xi.max()) <= 15 / 7
    beta_var = 2 * 5 / (7**2 * 8)
    assert float(xi.var()) == pytest.approx(9 * beta_var, rel=0.05)


def test_reference_posterior_is_the_conjugate_one():
    simulator = GaussianMeans(prior_loc=1.0, prior_scale=2.0, noise_scale=3.0)
    x_o = simulator.simulate(torch.tensor([[0.5, -0.5]]), seed=0)[0]
    draws = simulator.reference_posterior(x_o, 20_000, seed=1)
    precision = 1 / 4 + 100 / 3
    mean = (1.0 / 4 + x_o.sum(0) / 3) / precision
    torch.testing.assert_close(draws.mean(0), mean, atol=0.005, rtol=0)
    assert float(draws.std(0).mean()) == pytest.approx(1 / math.sqrt(precision), rel=0.03)
    with pytest.raises(NotImplementedError, match="contamination"):
        GaussianMeans(contamination=0.1).reference_posterior(x_o, 10)


def test_bad_knobs_are_rejected():
    with pytest.raises(ValueError, match="contamination"):
        GaussianMeans(contamination=1.5)
    with pytest.raises(ValueError, match="noise_scale"):
        GaussianMeans(noise_scale=0.0)
    with pytest.raises(ValueError, match="n_obs"):
        GaussianMeans(n_obs=0)
