"""The TRADE identity d/dc log p = d/dc log p~ - E_p[d/dc log p~], checked numerically.

The 1-D quartic well exp(-(x^4 - 4x^2) / T) is normalised exactly by quadrature on a fine grid,
so d/dT log p(x | T) is available by central finite differences of the normalised log density.
The self-normalised importance-sampling pieces built on the same weights (the condition mean, the
ESS and the forward KL) are checked against closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.integrate import quad

from sbiplug_trade.checks import condition_gradient
from sbiplug_trade.residual import (
    importance_weighted_forward_kl,
    log_effective_sample_size,
    snis_condition_mean,
)
from sbiplug_trade.wells import MultiWell, quartic_well_inverse_cdf_sample

TEMPERATURE = 0.7
POINTS = torch.tensor([[-2.0], [-1.4], [-0.3], [0.0], [0.9], [1.7]], dtype=torch.float64)


def _log_normaliser(temperature: float) -> float:
    value, _ = quad(lambda x: np.exp(-(x**4 - 4 * x**2) / temperature), -6, 6, limit=200)
    return float(np.log(value))


def _mean_energy(temperature: float) -> float:
    z = np.exp(_log_normaliser(temperature))
    value, _ = quad(
        lambda x: (x**4 - 4 * x**2) * np.exp(-(x**4 - 4 * x**2) / temperature) / z, -6, 6, limit=200
    )
    return float(value)


def test_identity_matches_finite_differences_of_normalised_density():
    target = MultiWell(dim=1)
    step = 1e-4
    x = POINTS.numpy()[:, 0]

    def log_p(t):
        return -(x**4 - 4 * x**2) / t - _log_normaliser(t)

    finite_difference = (log_p(TEMPERATURE + step) - log_p(TEMPERATURE - step)) / (2 * step)
    _, gradient = condition_gradient(
        target, POINTS, torch.full((6, 1), TEMPERATURE, dtype=torch.float64)
    )
    # E_p[d log p~ / dT] = E_p[U] / T^2 by quadrature
    identity = gradient.numpy() - _mean_energy(TEMPERATURE) / TEMPERATURE**2
    np.testing.assert_allclose(identity, finite_difference, atol=1e-5)


def test_self_normalised_estimate_is_within_monte_carlo_error():
    # proposals from a wrong, broader distribution: the SNIS mean must still be consistent
    target = MultiWell(dim=1)
    generator = torch.Generator().manual_seed(0)
    n = 200_000
    proposals = 2.0 * torch.randn(n, 1, generator=generator, dtype=torch.float64)
    log_q = torch.distributions.Normal(0.0, 2.0).log_prob(proposals[:, 0])
    mean, ess = snis_condition_mean(
        target, proposals[None], log_q[None], torch.tensor([TEMPERATURE])
    )
    exact = _mean_energy(TEMPERATURE) / TEMPERATURE**2
    # standard error of a SNIS mean: sd(g) / sqrt(n * ESS); g = U / T^2 has sd below 10 here
    exact_draws = quartic_well_inverse_cdf_sample((n,), TEMPERATURE, np.random.default_rng(1))
    sd = np.std((exact_draws**4 - 4 * exact_draws**2) / TEMPERATURE**2)
    standard_error = sd / np.sqrt(n * float(ess[0]))
    assert abs(float(mean[0]) - exact) < 5 * standard_error
    assert 0.05 < float(ess[0]) <= 1.0


def test_log_effective_sample_size_limits():
    equal = torch.zeros(100)
    assert torch.isclose(log_effective_sample_size(equal).exp(), torch.tensor(1.0))
    one_hot = torch.full((100,), -1e4)
    one_hot[3] = 0.0
    assert torch.isclose(log_effective_sample_size(one_hot).exp(), torch.tensor(0.01))


def test_importance_weighted_forward_kl_has_the_forward_kl_gradient():
    """For q = N(mu, 1) and p = N(0, 1), d KL(p || q) / d mu = -E_p[x - mu] = mu; the estimate from
    q's own draws with self-normalised weights must agree, and a non-finite point gets no weight."""
    mu = torch.tensor(0.5, requires_grad=True)
    generator = torch.Generator().manual_seed(0)
    x = mu.detach() + torch.randn(200_000, generator=generator)
    log_q = -0.5 * (x - mu) ** 2 - 0.5 * math.log(2 * math.pi)
    log_p_unnormalised = -0.5 * x**2 + 3.0  # the constant must not matter
    loss = importance_weighted_forward_kl(log_q[None], log_p_unnormalised[None])
    (gradient,) = torch.autograd.grad(loss.sum(), mu)
    assert abs(float(gradient) - 0.5) < 0.02, float(gradient)

    log_p_with_hole = log_p_unnormalised.clone()
    log_p_with_hole[0] = float("nan")
    again = importance_weighted_forward_kl(log_q[None].detach(), log_p_with_hole[None])
    assert torch.isfinite(again).all()
