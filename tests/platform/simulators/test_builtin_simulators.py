"""Every built-in simulator: shapes, dtype, prior, seeding, batching and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sbi.utils.user_input_checks import process_prior

import sbiplug

BUILT_IN = {
    # name: (number of parameters, observation shape, has a reference posterior)
    "two_moons": (2, (2,), True),
    "gaussian_linear": (10, (10,), True),
    "gaussian_linear_uniform": (10, (10,), True),
    "gaussian_mixture": (2, (2,), True),
    "slcp": (5, (8,), False),
    "sir": (2, (10,), False),
    "lotka_volterra": (4, (20,), False),
}
# Priors with bounded support (or positive support), where a theta can lie outside.
BOUNDED = [
    "two_moons",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "slcp",
    "sir",
    "lotka_volterra",
]


@pytest.fixture(scope="module", params=sorted(BUILT_IN))
def simulator(request):
    return sbiplug.make_simulator(request.param)


def test_all_built_ins_are_registered():
    specs = sbiplug.simulators()
    assert set(BUILT_IN) <= set(specs)
    for name, (_, _, has_reference) in BUILT_IN.items():
        assert specs[name].has_reference_posterior is has_reference


def test_declared_shapes_and_names(simulator):
    num_parameters, observation_shape, has_reference = BUILT_IN[simulator.name]
    assert simulator.num_parameters == num_parameters
    assert len(set(simulator.parameter_names)) == num_parameters
    assert all(name.isidentifier() for name in simulator.parameter_names)
    assert simulator.observation_shape == observation_shape
    assert simulator.has_reference_posterior is has_reference
    assert simulator.parameter_manifold == "euclidean"


def test_prior_is_accepted_by_sbi(simulator):
    _, num_parameters, returns_numpy = process_prior(simulator.prior)
    assert num_parameters == simulator.num_parameters and not returns_numpy
    theta = simulator.sample_prior(500, seed=0)
    assert theta.shape == (500, simulator.num_parameters)
    assert torch.isfinite(simulator.prior.log_prob(theta)).all()
    assert torch.equal(theta, simulator.sample_prior(500, seed=0))


def test_simulations_have_declared_shape_and_dtype(simulator):
    theta = simulator.sample_prior(200, seed=1)
    x = simulator.simulate(theta, seed=2)
    assert x.shape == (200, *simulator.observation_shape) and x.dtype == torch.float32
    assert torch.isfinite(x).all()  # no prior draw here makes the ODEs fail
    single = simulator.simulate(theta[0], seed=2)
    assert single.shape == simulator.observation_shape
    assert torch.equal(single, x[0])


def test_batch_equals_rows_one_after_another(simulator):
    theta = simulator.sample_prior(6, seed=3)
    batched = simulator.simulate(theta, seed=np.random.default_rng(4))
    rng = np.random.default_rng(4)
    looped = torch.stack([simulator.simulate(row[None], seed=rng)[0] for row in theta])
    assert torch.equal(batched, looped)


def test_seeds_fix_the_data(simulator):
    theta = simulator.sample_prior(20, seed=5)
    first = simulator.simulate(theta, seed=6)
    assert torch.equal(first, simulator.simulate(theta, seed=6))
    assert not torch.equal(first, simulator.simulate(theta, seed=7))
    # Without a seed, torch's global generator is in charge, as in sbi.
    torch.manual_seed(8)
    unseeded = simulator(theta)
    torch.manual_seed(8)
    assert torch.equal(unseeded, simulator(theta))


def test_reference_posterior_draws_or_refuses(simulator):
    x_o = simulator.simulate(simulator.sample_prior(1, seed=9), seed=10)[0]
    if BUILT_IN[simulator.name][2]:
        draws = simulator.reference_posterior(x_o, 300, seed=11)
        assert draws.shape == (300, simulator.num_parameters) and draws.dtype == torch.float32
        assert torch.isfinite(simulator.prior.log_prob(draws)).all()
        assert torch.equal(draws, simulator.reference_posterior(x_o[None], 300, seed=11))
        assert simulator.reference_posterior(x_o, 0, seed=11).shape == (0, simulator.num_parameters)
        with pytest.raises(
            ValueError, match=rf"{simulator.name}.*num_samples must be a non-negative"
        ):
            simulator.reference_posterior(x_o, -1)
        with pytest.raises(ValueError, match=rf"{simulator.name}.*x_o must have shape"):
            simulator.reference_posterior(torch.zeros(7, *simulator.observation_shape), 10)
    else:
        with pytest.raises(NotImplementedError, match=simulator.name):
            simulator.reference_posterior(x_o, 300, seed=11)


def test_likelihood_when_declared_is_finite_on_simulations(simulator):
    theta = simulator.sample_prior(50, seed=12)
    x = simulator.simulate(theta, seed=13)
    if simulator.has_log_likelihood:
        log_likelihood = simulator.log_likelihood(theta, x)
        assert log_likelihood.shape == (50,) and torch.isfinite(log_likelihood).all()
    else:
        with pytest.raises(NotImplementedError, match=simulator.name):
            simulator.log_likelihood(theta, x)


def test_wrong_theta_shape_names_simulator_and_shape(simulator):
    k = simulator.num_parameters
    with pytest.raises(ValueError, match=rf"{simulator.name}.*shape \(n, {k}\)"):
        simulator.simulate(torch.zeros(3, k + 1), seed=0)
    with pytest.raises(ValueError, match=rf"{simulator.name}.*shape \(n, {k}\)"):
        simulator.simulate(torch.zeros(2, 3, k), seed=0)
    with pytest.raises(TypeError, match=rf"{simulator.name}.*torch.Tensor"):
        simulator.simulate(np.zeros((3, k)), seed=0)


@pytest.mark.parametrize("name", BOUNDED)
def test_theta_outside_prior_is_refused(name):
    simulator = sbiplug.make_simulator(name)
    theta = simulator.sample_prior(4, seed=14)
    theta[2, 0] = -100.0
    with pytest.raises(ValueError, match=rf"{name}.*1 of 4 rows.*outside the prior support"):
        simulator.simulate(theta, seed=0)


def test_passes_the_conformance_kit(simulator):
    from sbiplug.testing import check_simulator

    report = check_simulator(simulator, seed=15)
    assert report["parameter_names"] == simulator.parameter_names
    assert report["reference_posterior"] is BUILT_IN[simulator.name][2]
