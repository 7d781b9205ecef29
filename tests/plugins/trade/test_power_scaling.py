"""Power-scaling sensitivity on gaussian_linear matches the closed-form power posteriors.

gaussian_linear (2-D here): prior N(0, 0.1 I), likelihood N(x; theta, 0.1 I). Raising the
likelihood to alpha gives precision 10 (1 + alpha): mean alpha x / (1 + alpha); raising the prior
gives mean x / (1 + alpha); the sd is 1 / sqrt(10 (1 + alpha)) in both cases.
Tolerances: |mean error| <= 0.15 sd and |sd / exact - 1| <= 0.1 for TRADE (4000 draws: Monte Carlo
error ≈ 0.016 sd for the mean and 1.1% for the sd, the rest is the flow's fit); the reweighting
estimate must match where its ESS is high.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sbiplug
from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult
from sbiplug_trade import power_scaling_sensitivity
from sbiplug_trade.power import make_power_posterior

FAST = {
    "steps": 300,
    "num_alphas": 5,
    "num_samples": 4000,
    "trade_options": {"transforms": 1, "hidden_features": (32, 32)},
}


@pytest.fixture(scope="module")
def problem():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    x_o = torch.tensor([0.4, -0.3])
    samples = simulator.reference_posterior(x_o, 4000, seed=0)
    return simulator, x_o, samples


def _exact(component: str, alpha: np.ndarray, x_o: torch.Tensor):
    x = x_o.numpy()[None]
    factor = alpha[:, None] if component == "likelihood" else np.ones_like(alpha)[:, None]
    mean = factor * x / (1 + alpha[:, None])
    sd = np.broadcast_to(1 / np.sqrt(10 * (1 + alpha[:, None])), mean.shape)
    return mean, sd


@pytest.mark.parametrize("component", ["likelihood", "prior"])
def test_power_scaled_moments_match_closed_form(problem, component):
    simulator, x_o, samples = problem

    def log_likelihood(theta):
        return simulator.log_likelihood(theta, x_o.expand(len(theta), 2))

    result = power_scaling_sensitivity(
        (samples, log_likelihood, simulator.prior), (0.5, 2.0), component, **FAST
    )
    data = result.data
    assert set(data["mean_trade"].dims) == {"alpha", "parameter"}
    mean, sd = _exact(component, data["alpha"].values, x_o)
    assert np.abs(data["mean_trade"].values - mean).max() <= 0.15 * sd.min()
    assert np.abs(data["sd_trade"].values / sd - 1).max() <= 0.1
    reliable = data["ess_is"].values > 0.3
    assert np.abs(data["mean_is"].values - mean)[reliable].max() <= 0.15 * sd.min()
    shift = np.abs(mean - mean[list(data["alpha"].values).index(1.0)]).max() / sd.max()
    assert result.statistic == pytest.approx(shift, rel=0.25, abs=0.1)


def test_diagnostic_runs_from_a_context_and_round_trips(problem):
    simulator, x_o, samples = problem
    diagnostic = sbiplug.make_diagnostic(
        "power_scaling",
        steps=60,
        num_alphas=4,
        num_samples=500,
        trade_options={"transforms": 1, "hidden_features": (16,)},
    )
    context = DiagnosticContext(
        simulator=simulator, observations=x_o[None], posterior_samples=samples[None], seed=0
    )
    result = diagnostic.run(context)
    assert result.name == "power_scaling" and result.statistic > 0
    restored = DiagnosticResult.from_dataset(result.to_dataset())
    assert restored.data["sd_trade"].shape == (5, 2)  # 4 alphas plus alpha = 1
    figure = restored.plot()
    assert figure.axes and figure.axes[0].get_xscale() == "log"


def test_power_posterior_target_derivative_is_the_exact_log_likelihood(problem):
    simulator, x_o, _ = problem
    target = sbiplug.make_target("power_posterior", simulator=simulator, x_o=x_o)
    theta = torch.randn(5, 2)
    alpha = torch.full((5, 1), 1.7, requires_grad=True)
    (gradient,) = torch.autograd.grad(target.log_density(theta, alpha).sum(), alpha)
    # exact pitfall-1 formula: d/dalpha = log L, with no extra factor alpha
    torch.testing.assert_close(gradient[:, 0], simulator.log_likelihood(theta, x_o.expand(5, 2)))


def test_bad_power_scaling_input_is_rejected(problem):
    simulator, _, samples = problem
    with pytest.raises(ValueError, match="component"):
        power_scaling_sensitivity((samples, None, simulator.prior), component="posterior")
    with pytest.raises(ValueError, match="alpha_range"):
        power_scaling_sensitivity((samples, None, simulator.prior), alpha_range=(1.5, 2.0))
    with pytest.raises(ValueError, match="shape"):
        power_scaling_sensitivity((samples[:5], None, simulator.prior))
    with pytest.raises(TypeError, match="study result"):
        power_scaling_sensitivity(object())
    with pytest.raises(ValueError, match="no log_likelihood"):
        make_power_posterior(_NoLikelihood(), x_o=torch.zeros(1))


class _NoLikelihood(sbiplug.Simulator):
    name = "no_likelihood"
    parameter_names = ("a",)
    observation_shape = (1,)

    @property
    def prior(self):
        return torch.distributions.Independent(torch.distributions.Normal(torch.zeros(1), 1.0), 1)

    def _simulate(self, theta, rng):
        return theta + torch.from_numpy(rng.standard_normal(theta.shape)).float()


def test_self_consistent_mode_needs_no_likelihood(problem):
    # without log L, TRADE uses log L = log q(theta | alpha = 1) - log pi(theta) + const (exact
    # alpha-derivative, no extra factor alpha); looser bounds: the flow's own fit enters twice
    simulator, x_o, samples = problem
    result = power_scaling_sensitivity(
        (samples, None, simulator.prior), (0.5, 2.0), "likelihood", **FAST
    )
    data = result.data
    assert data.attrs["self_consistent"] == 1
    mean, sd = _exact("likelihood", data["alpha"].values, x_o)
    assert np.abs(data["mean_trade"].values - mean).max() <= 0.3 * sd.min()
    assert np.abs(data["sd_trade"].values / sd - 1).max() <= 0.15


class _GaussianLikelihoodNet(torch.nn.Module):
    """Stands in for a trained NLE density estimator: sbi's log_prob(input, condition) API."""

    def log_prob(self, input, condition):
        normal = torch.distributions.Normal(condition, 0.1**0.5)
        return normal.log_prob(input).sum(-1)  # (sample_dim, batch_dim)


def test_power_posterior_from_an_nle_estimator_uses_its_likelihood(problem):
    simulator, x_o, _ = problem

    class Trainer:
        _neural_net = _GaussianLikelihoodNet()

    target = make_power_posterior(simulator, x_o=x_o, estimator=Trainer())
    theta = torch.randn(6, 2)
    torch.testing.assert_close(
        target.log_likelihood(theta), simulator.log_likelihood(theta, x_o.expand(6, 2))
    )
