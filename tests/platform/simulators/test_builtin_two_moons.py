"""two_moons: the exact posterior sampler and likelihood against the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from simulator_posterior_checks import (
    assert_moments_agree,
    c2st_accuracy,
    importance_moments,
    rejection_abc,
)

import sbiplug

# C2ST bound: with 1000 draws per side the null accuracy has standard deviation
# sqrt(0.25 / 2000) ~ 0.011, so 0.55 sits ~4.5 standard deviations above chance. Rejection ABC
# with epsilon = 0.005 widens the crescent's radial spread (std 0.01) by ~6 % in variance,
# far below what a classifier detects from 1000 draws.
C2ST_BOUND = 0.55


@pytest.fixture(scope="module")
def two_moons():
    return sbiplug.make_simulator("two_moons")


def _crescent_region(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform draws from the prior restricted to where x_o = 0 has posterior mass.

    In rotated coordinates z0 = (theta_1 + theta_2) / sqrt 2, z1 = (theta_2 - theta_1) / sqrt 2,
    x = 0 needs |z0| = 0.25 + r cos(a) and z1 = -r sin(a) with r ~ N(0.1, 0.01^2): beyond
    |z0| in [0.2, 0.42] and |z1| <= 0.16, r would be more than 5 standard deviations off.
    """
    z0 = rng.uniform(0.2, 0.42, n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    z1 = rng.uniform(-0.16, 0.16, n)
    return np.stack([z0 - z1, z0 + z1], axis=1) / math.sqrt(2.0)


def test_reference_posterior_matches_rejection_abc(two_moons):
    x_o = torch.tensor([0.0, 0.0])
    abc = rejection_abc(two_moons, x_o, 0.005, 1000, _crescent_region, seed=0)
    reference = two_moons.reference_posterior(x_o, 1000, seed=1)
    assert c2st_accuracy(reference, abc) < C2ST_BOUND
    # The test has power: the posterior of an observation 0.02 away is told apart.
    shifted = two_moons.reference_posterior(torch.tensor([0.02, 0.0]), 1000, seed=2)
    assert c2st_accuracy(reference, shifted) > 0.6


def test_reference_posterior_is_exact_right_of_the_offset(two_moons):
    # For x_o[0] > 0.25 some crescent points lie left of x_o, which no theta can produce; the
    # sampler must reject them (sbibm keeps them, which a C2ST of ~0.57 against ABC exposes).
    x_o = torch.tensor([0.3, 0.05])

    def region(rng: np.random.Generator, n: int) -> np.ndarray:
        # Prior restricted to |z0| <= 0.12, z1 in [-0.11, 0.21], which holds r up to 0.15.
        z0, z1 = rng.uniform(-0.12, 0.12, n), rng.uniform(-0.11, 0.21, n)
        return np.stack([z0 - z1, z0 + z1], axis=1) / math.sqrt(2.0)

    abc = rejection_abc(two_moons, x_o, 0.005, 1000, region, seed=10)
    reference = two_moons.reference_posterior(x_o, 1000, seed=11)
    assert c2st_accuracy(reference, abc) < C2ST_BOUND


def test_reference_posterior_is_bimodal_and_inside_prior(two_moons):
    draws = two_moons.reference_posterior(torch.tensor([0.0, 0.0]), 4000, seed=3)
    assert draws.shape == (4000, 2) and draws.dtype == torch.float32
    assert bool((draws.abs() <= 1).all())
    # x_o = 0 is symmetric under theta -> -theta: both crescents carry half the mass.
    upper = float((draws.sum(1) > 0).float().mean())
    assert abs(upper - 0.5) < 5 * math.sqrt(0.25 / 4000)


def test_reference_posterior_moments_match_importance_sampling(two_moons):
    x_o = torch.tensor([0.1, -0.2])
    mean, second, ess = importance_moments(two_moons, x_o, 200_000, seed=4)
    assert ess > 500
    reference = two_moons.reference_posterior(x_o, 20_000, seed=5)
    assert_moments_agree(reference, mean, second, ess)


def test_likelihood_is_normalised_and_supports_simulations(two_moons):
    theta = torch.tensor([[0.3, -0.6]])
    x = two_moons.simulate(theta.expand(2000, 2), seed=6)
    assert torch.isfinite(two_moons.log_likelihood(theta, x)).all()
    # Monte Carlo integral of p(x | theta) over a box holding the whole crescent.
    low, high = x.min(0).values - 0.05, x.max(0).values + 0.05
    rng = np.random.default_rng(7)
    grid = torch.from_numpy(rng.uniform(low.numpy(), high.numpy(), (400_000, 2))).double()
    density = two_moons.log_likelihood(theta.double(), grid).exp()
    volume = float((high - low).prod())
    integral = float(density.mean()) * volume
    standard_error = float(density.std()) * volume / math.sqrt(len(grid))
    assert abs(integral - 1.0) < 5 * standard_error


def test_reference_posterior_rejects_bad_observations(two_moons):
    with pytest.raises(ValueError, match=r"two_moons.*shape \(2,\)"):
        two_moons.reference_posterior(torch.zeros(3), 10)
    with pytest.raises(TypeError, match="two_moons"):
        two_moons.reference_posterior([0.0, 0.0], 10)
    with pytest.raises(ValueError, match="no posterior mass"):
        two_moons.reference_posterior(torch.tensor([5.0, 5.0]), 10, seed=0)


def test_reference_posterior_is_seeded(two_moons):
    x_o = torch.tensor([0.0, 0.1])
    first = two_moons.reference_posterior(x_o, 100, seed=8)
    assert torch.equal(first, two_moons.reference_posterior(x_o, 100, seed=8))
    assert not torch.equal(first, two_moons.reference_posterior(x_o, 100, seed=9))
