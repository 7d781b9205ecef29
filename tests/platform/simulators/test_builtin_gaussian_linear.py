"""gaussian_linear and gaussian_linear_uniform: analytic posteriors against the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from simulator_posterior_checks import (
    assert_moments_agree,
    c2st_accuracy,
    importance_moments,
    rejection_abc,
)

import sbiplug

# C2ST bound: 1000 draws per side give a null accuracy with standard deviation ~0.011, so 0.55
# is ~4.5 standard deviations above chance. Rejection ABC with epsilon = 0.05 adds a variance of
# about epsilon^2 / 16 ~ 1.6e-4 to a posterior variance of >= 0.05 (0.3 %): undetectable.
C2ST_BOUND = 0.55


def test_gaussian_linear_posterior_is_the_conjugate_formula():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=3)
    x_o = torch.tensor([0.4, -0.2, 0.1])
    posterior = simulator.analytic_posterior(x_o)
    # Prior N(0, 0.1 I) and noise N(0, 0.1 I): posterior N(x / 2, 0.05 I).
    assert torch.allclose(posterior.mean, x_o / 2)
    assert torch.allclose(posterior.variance, torch.full((3,), 0.05))
    draws = simulator.reference_posterior(x_o, 20_000, seed=0)
    assert draws.shape == (20_000, 3) and draws.dtype == torch.float32
    assert torch.allclose(draws.mean(0), x_o / 2, atol=5 * math.sqrt(0.05 / 20_000))
    theta = torch.randn(5, 3)
    assert torch.allclose(simulator.reference_log_prob(theta, x_o), posterior.log_prob(theta))


def test_gaussian_linear_matches_rejection_abc():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    x_o = torch.tensor([0.3, -0.2])
    abc = rejection_abc(
        simulator, x_o, 0.05, 1000, lambda rng, n: math.sqrt(0.1) * rng.standard_normal((n, 2))
    )
    reference = simulator.reference_posterior(x_o, 1000, seed=1)
    assert c2st_accuracy(reference, abc) < C2ST_BOUND
    # Power: the prior is told apart from the posterior.
    assert c2st_accuracy(reference, simulator.sample_prior(1000, seed=2)) > 0.6


@pytest.mark.parametrize("name", ["gaussian_linear", "gaussian_linear_uniform"])
def test_posterior_moments_match_importance_sampling(name):
    simulator = sbiplug.make_simulator(name, dim=2)
    x_o = torch.tensor([0.8, -0.95])
    mean, second, ess = importance_moments(simulator, x_o, 100_000, seed=3)
    assert ess > 1000
    assert_moments_agree(simulator.reference_posterior(x_o, 20_000, seed=4), mean, second, ess)


def test_likelihood_is_the_gaussian_density():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=4)
    theta, x = torch.randn(6, 4) * 0.3, torch.randn(6, 4) * 0.3
    expected = stats.multivariate_normal(np.zeros(4), 0.1 * np.eye(4)).logpdf((x - theta).numpy())
    assert np.allclose(simulator.log_likelihood(theta, x).numpy(), expected, atol=1e-4)
    # The simulator draws from that density: moments of many simulations at one theta.
    draws = simulator.simulate(theta[:1].expand(20_000, 4), seed=5).double()
    assert torch.allclose(draws.mean(0), theta[0].double(), atol=5 * math.sqrt(0.1 / 20_000))
    assert torch.allclose(draws.var(0), torch.full((4,), 0.1, dtype=torch.float64), rtol=0.05)


def test_uniform_posterior_matches_rejection_abc_near_the_boundary():
    simulator = sbiplug.make_simulator("gaussian_linear_uniform", dim=2)
    x_o = torch.tensor([0.9, -1.05])
    abc = rejection_abc(
        simulator, x_o, 0.05, 1000, lambda rng, n: rng.uniform(-1, 1, (n, 2)), seed=6
    )
    reference = simulator.reference_posterior(x_o, 1000, seed=7)
    assert bool((reference.abs() <= 1).all())
    assert c2st_accuracy(reference, abc) < C2ST_BOUND
    # Power: the untruncated normal N(x_o, 0.1 I) is told apart.
    untruncated = x_o + math.sqrt(0.1) * torch.randn(
        1000, 2, generator=torch.Generator().manual_seed(8)
    )
    assert c2st_accuracy(reference, untruncated) > 0.6


def test_uniform_posterior_density_is_normalised_on_the_box():
    simulator = sbiplug.make_simulator("gaussian_linear_uniform", dim=2)
    x_o = torch.tensor([1.2, 0.3])
    theta = torch.from_numpy(np.random.default_rng(9).uniform(-1, 1, (200_000, 2)))
    density = simulator.reference_log_prob(theta, x_o).exp()
    integral = 4.0 * float(density.mean())
    assert abs(integral - 1.0) < 5 * 4.0 * float(density.std()) / math.sqrt(len(theta))
    assert simulator.reference_log_prob(torch.tensor([[1.5, 0.0]]), x_o).item() == -math.inf


@pytest.mark.parametrize("name", ["gaussian_linear", "gaussian_linear_uniform"])
def test_dimension_option(name):
    assert sbiplug.make_simulator(name).observation_shape == (10,)
    simulator = sbiplug.make_simulator(name, dim=3)
    assert simulator.parameter_names == ("theta_1", "theta_2", "theta_3")
    assert simulator.prior.event_shape == (3,)
    with pytest.raises(ValueError, match=f"{name}.*dim must be a positive int"):
        sbiplug.make_simulator(name, dim=0)


def test_log_likelihood_rejects_wrong_shapes():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    with pytest.raises(ValueError, match=r"gaussian_linear.*x must be a tensor of shape \(n, 2\)"):
        simulator.log_likelihood(torch.zeros(3, 2), torch.zeros(3, 5))
