"""The registered targets: exact samplers against quadrature, registration, derivatives.

Tolerances are Monte Carlo bounds: 4 standard errors of a mean over independent exact draws.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import quad

import sbiplug
from sbiplug_trade.checks import condition_gradient
from sbiplug_trade.metrics import (
    effective_sample_size,
    mode_mass_error,
    mode_masses,
    population_effective_sample_size,
)

NAMES = ("gmm_temperature", "double_well", "multi_well", "phi4", "power_posterior")


def test_targets_are_registered():
    # that plugin.py imports no torch is checked for every plugin in tests/platform/plugins
    assert set(NAMES) <= set(sbiplug.targets())
    assert "power_scaling" in sbiplug.diagnostics()


@pytest.mark.parametrize("beta", [0.2, 1.0, 4.0])
def test_gmm_rejection_sampler_matches_grid_mode_masses(beta):
    target = sbiplug.make_target("gmm_temperature")
    grid = torch.linspace(-14, 16, 1001)
    points = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    weights = torch.softmax(beta * target.log_mixture(points).double(), 0)
    exact = torch.zeros(6, dtype=torch.float64).index_add_(0, target.mode_labels(points), weights)
    n = 40_000
    empirical = mode_masses(target, target.sample(n, beta, seed=1))
    standard_error = torch.sqrt(exact * (1 - exact) / n)
    assert bool(((empirical - exact).abs() <= 4 * standard_error + 2e-3).all())
    # the finer quadrature the benchmark uses agrees with this one to discretisation error
    torch.testing.assert_close(target.exact_mode_masses(beta), exact, atol=2e-3, rtol=0)


def test_mode_mass_error_against_exact_masses():
    well = sbiplug.make_target("multi_well", dim=2)
    masses = well.exact_mode_masses(0.5)
    assert masses.tolist() == [0.25] * 4
    draws = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]).repeat(5, 1)
    assert mode_mass_error(well, draws, masses)[0] == 0.0
    lopsided = torch.cat([draws, torch.tensor([[1.0, 1.0]] * 20)])  # orthant 3 holds 25 of 40
    error, relative = mode_mass_error(well, lopsided, masses)
    assert error == pytest.approx((25 / 40 - 0.25) / 0.25)
    assert relative[0].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="exact masses"):
        mode_mass_error(well, draws, torch.ones(3) / 3)


class KnownMixture:
    """q(x) = the GMM's components ``keep``, equally weighted, at every condition."""

    def __init__(self, target, keep):
        self.means = target._means[keep]
        self.scale_tril = target._scale_tril[keep]

    def log_prob(self, x, condition):
        normal = torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril)
        return torch.logsumexp(normal.log_prob(x.unsqueeze(-2)), -1) - np.log(len(self.means))

    def sample_and_log_prob(self, n, condition, *, seed=None):
        generator = torch.Generator().manual_seed(seed or 0)
        index = torch.randint(len(self.means), (n,), generator=generator)
        z = torch.randn(n, 2, generator=generator)
        x = self.means[index] + (self.scale_tril[index] @ z[:, :, None])[:, :, 0]
        return x, self.log_prob(x, condition)


def test_population_ess_is_the_limit_of_the_estimate_and_sees_lost_modes():
    target = sbiplug.make_target("gmm_temperature")
    exact = KnownMixture(target, list(range(6)))
    assert population_effective_sample_size(exact, target, 1.0) == pytest.approx(1.0, abs=1e-4)
    # q = GMM as proposal for GMM^2: 1 / ∫ p^2 / q = (∫ GMM^2)^2 / ∫ GMM^3, on a plain grid
    grid = torch.linspace(-14, 16, 1501, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    log_mixture = target.log_mixture(points.float()).double()
    log_cell = 2 * float(torch.log(grid[1] - grid[0]))
    log_z2 = torch.logsumexp(2 * log_mixture, 0) + log_cell
    log_i3 = torch.logsumexp(3 * log_mixture, 0) + log_cell
    analytic = float(torch.exp(2 * log_z2 - log_i3))
    assert population_effective_sample_size(exact, target, 2.0) == pytest.approx(analytic, rel=2e-3)
    # without component 6 (1/6 of the mass) the weights on q's own draws are nearly constant
    lost_mode = KnownMixture(target, list(range(5)))
    assert effective_sample_size(lost_mode, target, 1.0, 20_000, seed=3) > 0.95
    assert population_effective_sample_size(lost_mode, target, 1.0) < 1e-3


@pytest.mark.parametrize("temperature", [0.4, 1.0])
def test_well_samplers_match_quadrature_moments(temperature):
    density = lambda x: np.exp(-(x**4 - 4 * x**2) / temperature)  # noqa: E731
    z = quad(density, -6, 6)[0]
    second = quad(lambda x: x**2 * density(x), -6, 6)[0] / z
    fourth = quad(lambda x: x**4 * density(x), -6, 6)[0] / z
    n = 50_000
    draws = sbiplug.make_target("multi_well", dim=3).sample(n, temperature, seed=2).double()
    standard_error = np.sqrt((fourth - second**2) / (3 * n))
    assert abs(float((draws**2).mean()) - second) < 4 * standard_error
    double = sbiplug.make_target("double_well").sample(n, temperature, seed=3).double()
    assert abs(float((double[:, 0] ** 2).mean()) - second) < 4 * np.sqrt((fourth - second**2) / n)
    assert abs(float((double[:, 1] ** 2).mean()) - temperature) < 4 * temperature * np.sqrt(2 / n)


def test_condition_derivatives_follow_the_method_note_table():
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    gmm = sbiplug.make_target("gmm_temperature")
    _, gradient = condition_gradient(gmm, x, torch.full((5, 1), 2.0))
    torch.testing.assert_close(gradient, gmm.log_mixture(x))  # d/dbeta (beta log GMM)
    well = sbiplug.make_target("double_well")
    _, gradient = condition_gradient(well, x, torch.full((5, 1), 0.8))
    torch.testing.assert_close(gradient, well.energy(x) / 0.8**2)  # U / T^2
    labels = well.mode_labels(torch.tensor([[-1.4, 0.0], [1.4, 0.0]]))
    assert labels.tolist() == [0, 1]
