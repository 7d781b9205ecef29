"""Posterior predictive check: replicated data cover x_o for a good posterior only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sbiplug
from sbiplug.builtin.diagnostics.ppc import PosteriorPredictiveCheck
from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import DiagnosticInputError


def test_exact_posterior_reproduces_the_observations(gaussian_posterior, make_context):
    result = PosteriorPredictiveCheck(num_samples=200).run(
        make_context(gaussian_posterior(), num_observations=3)
    )
    assert result.passed is True
    data = result.data
    assert data["posterior_predictive"].shape == (3, 200, 2)
    assert np.all((data["p_value_dim"].values >= 0) & (data["p_value_dim"].values <= 1))
    # The predictive of x given x_o is N(x_o / 2, 0.15 I): its mean is half the observation.
    predictive_mean = data["posterior_predictive"].mean("ppc_draw").values
    np.testing.assert_allclose(predictive_mean, data["x_observed"].values / 2, atol=0.12)


def test_biased_posterior_fails(gaussian_posterior, make_context):
    # Shifted by 1.5, the predictive sits ~3.9 predictive sd per dimension away from x_o.
    result = PosteriorPredictiveCheck(num_samples=200).run(
        make_context(gaussian_posterior(shift=1.5), num_observations=2)
    )
    assert result.passed is False
    assert result.p_value < 0.05
    assert result.summary["p_value_dim_min"] < 0.02


def test_plot_and_errors(gaussian_posterior, make_context):
    check = PosteriorPredictiveCheck(num_samples=20)
    result = check.run(make_context(gaussian_posterior(), num_observations=2))
    figure = check.plot(DiagnosticResult.from_dataset(result.to_dataset()))
    assert len(figure.axes[0].collections) == 4  # 50% and 90% intervals per observation
    with pytest.raises(DiagnosticInputError, match="'ppc' needs a simulator"):
        check.run(make_context(gaussian_posterior(), simulator=None))
    with pytest.raises(DiagnosticInputError, match="'ppc' needs observations"):
        check.run(make_context(gaussian_posterior(), observations=None))


def test_stored_draws_outside_the_prior_support_are_dropped():
    simulator = sbiplug.make_simulator("gaussian_linear_uniform", dim=2)
    theta_o = torch.tensor([[0.2, -0.3]])
    x_o = simulator.simulate(theta_o, seed=0)
    draws = simulator.reference_posterior(x_o[0], 50, seed=1)
    draws[:10] = 5.0  # outside the U(-1, 1) box: the simulator would refuse them
    context = DiagnosticContext(
        simulator=simulator, observations=x_o, posterior_samples=draws.unsqueeze(0), seed=0
    )
    with pytest.warns(UserWarning, match="dropped 10 of 50 posterior draws"):
        result = PosteriorPredictiveCheck(num_samples=50).run(context)
    replicated = result.data["posterior_predictive"].values[0]
    assert replicated.shape == (40, 2) and np.isfinite(replicated).all()
    assert result.passed is True


def test_padding_rows_do_not_count_as_replicates():
    from sbiplug.builtin.diagnostics.ppc import _distance_p_values, _stack_padded

    rng = np.random.default_rng(0)
    full, short = rng.normal(size=(30, 3)), rng.normal(size=(20, 3))
    observed = np.array([[0.1, 0.0, -0.2], [2.5, 2.5, 2.5]])
    padded = _stack_padded([full, short])
    assert padded.shape == (2, 30, 3) and np.isnan(padded[1, 20:]).all()
    p_padded, _ = _distance_p_values(padded, observed)
    p_alone, _ = _distance_p_values(short[None], observed[1:])
    assert p_padded[1] == pytest.approx(p_alone[0])
