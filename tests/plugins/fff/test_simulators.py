"""Simulators with manifold parameters: conformance, likelihoods and reference posteriors."""

from __future__ import annotations

import math

import pytest
import torch

import sbiplug
from sbiplug.testing import check_simulator
from sbiplug_fff.manifolds import get_manifold

NAMES = ["vmf_direction", "torus_angles", "so3_orientation"]


@pytest.mark.parametrize("name", NAMES)
def test_simulators_pass_the_conformance_check(name: str) -> None:
    measured = check_simulator(name, seed=0)
    assert measured["reference_posterior"]
    simulator = sbiplug.make_simulator(name)
    spec = sbiplug.simulators()[name]
    assert spec.parameter_manifold == simulator.parameter_manifold
    manifold = get_manifold(simulator.parameter_manifold, simulator.num_parameters)
    draws = simulator.sample_prior(100, seed=1)
    assert manifold.contains(draws, atol=1e-5).all()


@pytest.mark.parametrize("name", NAMES)
def test_simulate_rejects_parameters_off_the_manifold(name: str) -> None:
    simulator = sbiplug.make_simulator(name)
    with pytest.raises(ValueError, match="outside the prior support"):
        simulator.simulate(simulator.sample_prior(3, seed=0) * 1.5, seed=0)


def test_vmf_direction_posterior_is_the_normalised_likelihood() -> None:
    simulator = sbiplug.make_simulator("vmf_direction")
    x_o = simulator.simulate(simulator.sample_prior(1, seed=2), seed=3)[0]
    points = simulator.prior.sample((5,))
    log_likelihood = simulator.log_likelihood(points, x_o.expand(5, -1))
    log_posterior = simulator.reference_log_prob(points, x_o)
    # posterior = likelihood x uniform prior / evidence: the difference is one constant
    difference = log_posterior - log_likelihood
    torch.testing.assert_close(difference, difference[:1].expand(5), atol=1e-4, rtol=0)
    draws = simulator.reference_posterior(x_o, 20_000, seed=4)
    mean, kappa = simulator.posterior_parameters(x_o)
    expected = 1 / math.tanh(float(kappa)) - 1 / float(kappa)
    assert abs(float((draws @ mean).mean()) - expected) < 0.01


def test_torus_reference_matches_its_grid_density() -> None:
    simulator = sbiplug.make_simulator("torus_angles")
    angles = torch.tensor([[3.05, 1.2]])  # a near pi: the posterior wraps across +-pi
    x_o = simulator.simulate(simulator.torus.from_angles(angles), seed=5)[0]
    draws = simulator.reference_posterior(x_o, 20_000, seed=6)
    a = simulator.torus.to_angles(draws)[:, 0]
    assert float((a.abs() > 2.5).float().mean()) > 0.9
    assert float((a > 0).float().mean()) < 0.95 and float((a < 0).float().mean()) < 0.95
    # the density integrates to one over the torus
    uniform = simulator.torus.sample_uniform((200_000,))
    values = simulator.reference_log_prob(uniform, x_o).double().exp() * simulator.torus.volume
    assert abs(float(values.mean()) - 1) < 4 * float(values.std()) / math.sqrt(200_000)
    # b and b + pi are equally likely
    b = simulator.torus.to_angles(draws)[:, 1]
    near_first = ((b - 1.2 + math.pi) % (2 * math.pi) - math.pi).abs() < math.pi / 2
    assert abs(float(near_first.float().mean()) - 0.5) < 0.03


def test_so3_reference_agrees_with_brute_force_importance_sampling() -> None:
    # with broad noise, weighting 200 000 uniform rotations by their likelihood is exact;
    # the posterior mean matrices must agree within their Monte Carlo errors
    simulator = sbiplug.make_simulator("so3_orientation", noise_scale=0.8)
    x_o = simulator.simulate(simulator.sample_prior(1, seed=7), seed=8)[0]
    reference = simulator.reference_posterior(x_o, 4000, seed=9).double()
    torch.manual_seed(10)
    uniform = simulator.prior.sample((200_000,)).double()
    weights = torch.softmax(simulator.log_likelihood(uniform, x_o.double().expand(1, -1)), 0)
    brute_mean = weights @ uniform
    brute_error = ((weights.unsqueeze(-1) ** 2 * (uniform - brute_mean) ** 2).sum(0)).sqrt()
    reference_error = reference.std(0) / math.sqrt(len(reference))
    gap = (reference.mean(0) - brute_mean).abs()
    assert bool((gap < 4 * (brute_error**2 + reference_error**2).sqrt() + 1e-3).all()), gap
