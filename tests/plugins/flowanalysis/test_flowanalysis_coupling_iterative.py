"""iterative_coupling: recovers a Gaussian, integrates to one, reloads, and works as NPE."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

import sbiplug
from sbiplug_flowanalysis import (
    IterativeCouplingFlow,
    build_iterative_coupling,
    fit_iterative_coupling,
)

MEAN = torch.tensor([1.0, -2.0])
COVARIANCE = torch.tensor([[2.0, 1.2], [1.2, 1.0]])


def _ring(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    angle = 2 * math.pi * torch.randint(8, (n,), generator=g) / 8
    return torch.stack([angle.cos(), angle.sin()], -1) + 0.15 * torch.randn(n, 2, generator=g)


def test_recovers_a_gaussian_with_known_covariance():
    torch.manual_seed(0)
    target = MultivariateNormal(MEAN, COVARIANCE)
    # Quantile couplings on half of 20000 rows: 10 bins of ~1000 rows, 16 quantiles each.
    theta, held_out = target.sample((20000,)), target.sample((4000,))
    flow = fit_iterative_coupling(
        theta, num_layers=20, validation=(held_out, None), patience=3, show_progress_bars=False
    )
    draws = flow.sample((20000,))
    # Monte Carlo error of a covariance entry from 20000 fitting draws is ~0.02.
    assert torch.allclose(draws.mean(0), MEAN, atol=0.06)
    # Quantiles held constant beyond the outer bin centres trim the tails a little.
    assert torch.allclose(torch.cov(draws.T), COVARIANCE, rtol=0.08)
    test = target.sample((4000,))
    kl = (target.log_prob(test) - flow.log_prob(test)).mean()  # KL(p || q) +- 0.005
    assert -0.02 < float(kl) < 0.05


@pytest.mark.parametrize("coupling", ["quantile", "affine"])
def test_log_prob_integrates_to_one_on_a_grid(coupling):
    flow = fit_iterative_coupling(
        _ring(8192, 0), num_layers=10, coupling=coupling, seed=1, show_progress_bars=False
    )
    grid = torch.linspace(-2.5, 2.5, 301)
    points = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    mass = flow.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 2
    assert abs(float(mass) - 1) < 0.01
    # It learned the ring: far better than the Gaussian it started from.
    assert flow.history["nll"][0] - flow.history["nll"][-1] > 0.2


@pytest.mark.parametrize("coupling", ["quantile", "affine"])
def test_state_dict_round_trip_rebuilds_the_layers(coupling):
    theta = _ring(2048, 2)
    noise = 0.1 * torch.randn(len(theta), 1, generator=torch.Generator().manual_seed(0))
    x = theta[:, :1] ** 2 + noise  # a nonlinear x: the couplings have work after the linear fit
    conditional = fit_iterative_coupling(
        theta,
        x,
        num_layers=3,
        coupling=coupling,
        network_steps=50,
        seed=0,
        show_progress_bars=False,
    )
    rebuilt = build_iterative_coupling()(theta[:64], x[:64])
    rebuilt.load_state_dict(conditional.state_dict())
    assert len(rebuilt.net) == len(conditional.net) >= 2
    expected = conditional.log_prob(theta[:5], x[:5])
    assert torch.allclose(rebuilt.log_prob(theta[:5], x[:5]), expected)
    # The binned couplings of an unconditional flow rebuild too.
    unconditional = fit_iterative_coupling(
        theta, num_layers=3, coupling=coupling, seed=0, show_progress_bars=False
    )
    rebuilt = IterativeCouplingFlow(2)
    rebuilt.load_state_dict(unconditional.state_dict())
    assert len(rebuilt.net) == len(unconditional.net) >= 2
    assert torch.allclose(rebuilt.log_prob(theta[:5]), unconditional.log_prob(theta[:5]))


def test_bad_input_is_rejected_before_any_work():
    with pytest.raises(ValueError, match="dimension >= 2"):
        fit_iterative_coupling(torch.randn(100, 1))
    with pytest.raises(ValueError, match="conditioner='bins'"):
        fit_iterative_coupling(torch.randn(100, 2), torch.randn(100, 3), conditioner="bins")
    with pytest.raises(ValueError, match="coupling must be"):
        sbiplug.make_estimator("iterative_coupling", prior=None, coupling="spline")
    with pytest.raises(ValueError, match="knots must be >= 2"):
        sbiplug.make_estimator("iterative_coupling", prior=None, knots=1)
    trainer = sbiplug.make_estimator("iterative_coupling", prior=None)
    with pytest.raises(ValueError, match="training_batch_size"):
        trainer.append_simulations(torch.randn(100, 2), torch.randn(100, 2)).train(
            training_batch_size=50
        )


def test_estimator_at_defaults_is_accurate_on_a_linear_gaussian_task():
    """theta ~ N(0, I_2), x = A theta + 0.5 noise: the posterior is Gaussian and known."""
    torch.manual_seed(0)  # the layers' initial weights and the posterior draws
    generator = torch.Generator().manual_seed(0)
    a = torch.tensor([[1.0, 0.5], [-0.5, 1.0]])
    prior = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), 1.0), 1)
    theta = torch.randn(3000, 2, generator=generator)
    x = theta @ a.T + 0.5 * torch.randn(3000, 2, generator=generator)
    trainer = sbiplug.make_estimator("iterative_coupling", prior=prior)
    trainer.append_simulations(theta, x).train()
    posterior = trainer.build_posterior()
    x_o = torch.tensor([0.8, -0.3])
    precision = torch.eye(2) + a.T @ a / 0.25
    covariance = torch.linalg.inv(precision)
    mean = covariance @ (a.T @ x_o / 0.25)
    draws = posterior.sample((4000,), x=x_o, show_progress_bars=False)
    assert torch.allclose(draws.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(draws.T), covariance, atol=0.02)
    exact = MultivariateNormal(mean, covariance)
    error = (posterior.log_prob(draws[:500], x=x_o) - exact.log_prob(draws[:500])).abs().mean()
    assert float(error) < 0.1
