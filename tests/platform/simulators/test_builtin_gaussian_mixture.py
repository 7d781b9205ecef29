"""gaussian_mixture: the exact truncated-mixture posterior against the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from simulator_posterior_checks import (
    c2st_accuracy,
    rejection_abc,
)

import sbiplug

# C2ST bound: 1000 draws per side, null standard deviation ~0.011, bound ~4.5 of them above
# chance. Rejection ABC with epsilon = 0.05 adds a variance of epsilon^2 / 4 = 6e-4 per
# coordinate to the narrow component's 1e-2 (a 3 % wider std): not detectable from 1000 draws.
C2ST_BOUND = 0.55


@pytest.fixture(scope="module")
def mixture():
    return sbiplug.make_simulator("gaussian_mixture")


def _local_prior(x_o: torch.Tensor, half_width: float = 4.0):
    """Uniform proposals on the prior box cut to x_o +- 4, which holds all but ~1e-4 of the
    posterior mass (the broad component's tails beyond 4 standard deviations)."""
    low = np.maximum(x_o.numpy() - half_width, -10.0)
    high = np.minimum(x_o.numpy() + half_width, 10.0)
    return lambda rng, n: rng.uniform(low, high, (n, 2))


def test_reference_posterior_matches_rejection_abc_at_the_edge(mixture):
    # Near the corner of the box truncation matters, so this checks the component weights too.
    x_o = torch.tensor([9.5, -9.6])
    abc = rejection_abc(mixture, x_o, 0.05, 1000, _local_prior(x_o), seed=0)
    reference = mixture.reference_posterior(x_o, 1000, seed=1)
    assert c2st_accuracy(reference, abc) < C2ST_BOUND


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_truncation_reweights_the_components(mixture):
    # At x_o = (9.5, -9.6) the broad component (std 1) keeps Phi(0.5) Phi(0.4) ~ 45 % of its
    # mass inside the box, the narrow one (std 0.1) all of it: posterior weights ~0.31 / 0.69.
    x_o = torch.tensor([9.5, -9.6])
    reference = mixture.reference_posterior(x_o, 20_000, seed=3)
    near = float(((reference - x_o).abs() < 0.3).all(1).float().mean())
    broad_mass = _normal_cdf(0.5) * _normal_cdf(0.4)
    narrow_weight = 1.0 / (1.0 + broad_mass)
    narrow_near = math.erf(0.3 / (0.1 * math.sqrt(2))) ** 2
    broad_near = math.erf(0.3 / math.sqrt(2)) ** 2 / broad_mass
    expected = narrow_weight * narrow_near + (1 - narrow_weight) * broad_near
    assert abs(near - expected) < 5 * math.sqrt(expected * (1 - expected) / len(reference))
    # Untruncated weights (0.5 / 0.5) would be far off.
    assert abs(near - (0.5 * narrow_near + 0.5 * broad_near)) > 0.1


def test_reference_log_prob_is_normalised(mixture):
    x_o = torch.tensor([9.5, 0.0])
    rng = np.random.default_rng(4)
    theta = torch.from_numpy(rng.uniform([4.5, -5.0], [10.0, 5.0], (400_000, 2)))
    density = mixture.reference_log_prob(theta, x_o).exp()
    volume = 5.5 * 10.0
    integral = volume * float(density.mean())
    assert abs(integral - 1.0) < 5 * volume * float(density.std()) / math.sqrt(len(theta))


def test_every_simulation_draws_its_own_component(mixture):
    # sbibm shares one component across a batch; here half the rows are narrow, half broad.
    x = mixture.simulate(torch.zeros(4000, 2), seed=5)
    near = float((x.abs() < 0.5).all(1).float().mean())
    narrow, broad = math.erf(0.5 / (0.1 * math.sqrt(2))), math.erf(0.5 / math.sqrt(2))
    expected = 0.5 * narrow**2 + 0.5 * broad**2
    assert abs(near - expected) < 5 * math.sqrt(expected * (1 - expected) / len(x))
