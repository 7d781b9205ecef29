"""sir and lotka_volterra: the batched RK4 solution, its invariants and the observation noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import sbiplug


@pytest.fixture(scope="module")
def sir():
    return sbiplug.make_simulator("sir")


@pytest.fixture(scope="module")
def lotka_volterra():
    return sbiplug.make_simulator("lotka_volterra")


def test_sir_conserves_the_population_and_starts_from_one_case(sir):
    populations = sir.solve(sir.sample_prior(300, seed=0))
    assert populations.shape == (300, 3, 10)
    assert torch.allclose(populations.sum(1), torch.full((300, 10), 1e6, dtype=torch.float64))
    assert torch.equal(
        populations[:, :, 0][0], torch.tensor([1e6 - 1, 1.0, 0.0], dtype=torch.float64)
    )
    assert bool((populations > -1e-6).all())
    susceptible, recovered = populations[:, 0], populations[:, 2]
    assert bool((susceptible.diff(dim=1) <= 1e-6).all() and (recovered.diff(dim=1) >= -1e-6).all())


def test_sir_matches_an_adaptive_solver(sir):
    theta = sir.sample_prior(4, seed=1).double()
    infected = sir.solve(theta)[:, 1] / 1e6

    def rates(t, y, beta, gamma):
        return [-beta * y[0] * y[1], beta * y[0] * y[1] - gamma * y[1], gamma * y[1]]

    for row, (beta, gamma) in zip(infected, theta.tolist()):
        exact = solve_ivp(
            rates,
            (0, 153),
            [1 - 1e-6, 1e-6, 0],
            t_eval=np.arange(0, 154, 17.0),
            args=(beta, gamma),
            method="DOP853",
            rtol=1e-10,
            atol=1e-13,
        ).y[1]
        # Within a tenth of one of the 1000 binomial trials.
        assert np.abs(row.numpy() - exact).max() * 1000 < 0.1


def test_sir_early_growth_is_exponential(sir):
    # While S ~ N, I(t) = exp((beta - gamma) t): 30 persons on day 17 for beta - gamma = 0.2.
    infected = sir.solve(torch.tensor([[0.3, 0.1]]))[0, 1, 1]
    assert abs(float(infected) - math.exp(0.2 * 17)) < 0.01 * math.exp(0.2 * 17)
    # Below the epidemic threshold (beta < gamma) the single case dies out.
    assert float(sir.solve(torch.tensor([[0.1, 0.3]]))[0, 1].max()) <= 1.0


def test_sir_observations_are_binomial_counts(sir):
    theta = torch.tensor([0.5, 0.125])
    x = sir.simulate(theta.expand(4000, 2), seed=2).double()
    assert bool(((x >= 0) & (x <= 1000) & (x == x.round())).all())
    probability = sir.solve(theta[None])[0, 1] / 1e6
    expected_mean = 1000 * probability
    standard_error = (1000 * probability * (1 - probability) / len(x)).sqrt()
    assert bool(((x.mean(0) - expected_mean).abs() <= 5 * standard_error + 1e-9).all())


def test_lotka_volterra_conserves_its_first_integral(lotka_volterra):
    # V = delta X - gamma log X + beta Y - alpha log Y is constant along every trajectory; the
    # integrator refines rows until V drifts by at most 1e-5 of the size of its terms.
    theta = lotka_volterra.sample_prior(300, seed=3).double()
    populations = lotka_volterra.solve(theta)
    assert populations.shape == (300, 2, 10) and bool((populations > 0).all())
    prey, predators = populations[:, 0], populations[:, 1]
    alpha, beta, gamma, delta = (theta[:, i : i + 1] for i in range(4))
    terms = (delta * prey, -gamma * prey.log(), beta * predators, -alpha * predators.log())
    invariant = sum(terms)
    scale = sum(term[:, 0].abs() for term in terms)
    drift = (invariant - invariant[:, :1]).abs().max(1).values / scale
    assert float(drift.max()) <= 1e-5


def test_sir_keeps_its_first_integral(sir):
    # s + i - (gamma / beta) log s is constant along SIR trajectories (fractions of N).
    theta = sir.sample_prior(300, seed=11).double()
    s, i, _ = (sir.solve(theta) / 1e6).unbind(1)
    invariant = s + i - theta[:, 1:] / theta[:, :1] * s.log()
    assert float((invariant - invariant[:, :1]).abs().max()) <= 1e-4


def test_lotka_volterra_matches_an_adaptive_solver(lotka_volterra):
    theta = lotka_volterra.sample_prior(4, seed=4).double()
    populations = lotka_volterra.solve(theta)

    def rates(t, y, alpha, beta, gamma, delta):
        return [alpha * y[0] - beta * y[0] * y[1], -gamma * y[1] + delta * y[0] * y[1]]

    times = 2.1 * np.arange(10)
    for row, parameters in zip(populations, theta.tolist()):
        exact = solve_ivp(
            rates,
            (0, times[-1]),
            [30.0, 1.0],
            t_eval=times,
            args=tuple(parameters),
            method="DOP853",
            rtol=1e-10,
            atol=1e-12,
        ).y
        assert np.abs(np.log(row.numpy()) - np.log(exact)).max() < 1e-3


def test_lotka_volterra_noise_is_log_normal(lotka_volterra):
    theta = torch.tensor([0.8, 0.05, 1.0, 0.05])
    x = lotka_volterra.simulate(theta.expand(4000, 4), seed=5).double()
    assert bool((x > 0).all())
    log_ratio = x.log() - lotka_volterra.solve(theta[None]).reshape(1, 20).clamp(1e-10, 1e4).log()
    assert bool((log_ratio.mean(0).abs() < 5 * 0.1 / math.sqrt(len(x))).all())
    assert torch.allclose(log_ratio.std(0), torch.full((20,), 0.1, dtype=torch.float64), rtol=0.06)


@pytest.mark.parametrize(
    ("name", "failing"), [("sir", [1e4, 0.1]), ("lotka_volterra", [1e3, 0.05, 1.0, 0.05])]
)
def test_failing_integrations_become_nan_rows(name, failing):
    simulator = sbiplug.make_simulator(name)
    good = simulator.sample_prior(2, seed=6)
    theta = torch.cat([good[:1], torch.tensor([failing]), good[1:]])
    x = simulator.simulate(theta, seed=7)
    assert bool(torch.isnan(x[1]).all()) and bool(torch.isfinite(x[[0, 2]]).all())
    # The failed row uses no randomness: the others match a batch without it.
    rng = np.random.default_rng(7)
    assert torch.equal(x[0], simulator.simulate(good[:1], seed=rng)[0])
    assert torch.isnan(simulator.simulate(torch.tensor([failing]), seed=rng)).all()
    assert torch.equal(x[2], simulator.simulate(good[1:], seed=rng)[0])
