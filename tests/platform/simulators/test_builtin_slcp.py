"""slcp: the simulator draws from the Gaussian its likelihood describes."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

import sbiplug


def _covariance(theta: torch.Tensor) -> np.ndarray:
    std_1, std_2 = float(theta[2]) ** 2, float(theta[3]) ** 2
    rho = math.tanh(float(theta[4]))
    jitter = 1e-6 * np.eye(2)
    return np.array([[std_1**2, rho * std_1 * std_2], [rho * std_1 * std_2, std_2**2]]) + jitter


def test_likelihood_is_four_bivariate_normals():
    simulator = sbiplug.make_simulator("slcp")
    theta = simulator.sample_prior(5, seed=0)
    x = simulator.simulate(theta, seed=1)
    expected = [
        stats.multivariate_normal(t[:2].numpy(), _covariance(t)).logpdf(row.reshape(4, 2)).sum()
        for t, row in zip(theta.double(), x.double().numpy())
    ]
    actual = simulator.log_likelihood(theta.double(), x.double()).numpy()
    assert np.allclose(actual, expected, rtol=1e-6)


def test_simulations_have_the_declared_mean_and_covariance():
    simulator = sbiplug.make_simulator("slcp")
    theta = torch.tensor([0.5, -1.0, 1.2, -0.9, 0.8])
    points = simulator.simulate(theta.expand(20_000, 5), seed=2).double().reshape(-1, 2)
    covariance = _covariance(theta)
    standard_error = np.sqrt(np.diag(covariance) / len(points))
    assert np.all(np.abs(points.mean(0).numpy() - theta[:2].numpy()) < 5 * standard_error)
    # Sample covariance entries: relative error ~ sqrt(2 / n) ~ 0.5 %; allow 3 %.
    assert np.allclose(np.cov(points.numpy().T), covariance, rtol=0.03)


def test_likelihood_has_the_four_symmetric_modes():
    # The likelihood depends on theta_3 and theta_4 through their squares: flipping their
    # signs (and the correlation's with one of them) leaves it unchanged.
    simulator = sbiplug.make_simulator("slcp")
    theta = simulator.sample_prior(10, seed=3).double()
    x = simulator.simulate(theta.float(), seed=4).double()
    flipped = theta * torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(simulator.log_likelihood(theta, x), simulator.log_likelihood(flipped, x))
