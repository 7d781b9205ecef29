"""TRADE's amortised power scaling beside ArviZ's psense, on one exact gaussian_linear result.

Needs the host and sbiplug-trade. The power posteriors of N(0, 0.1) prior and N(theta, 0.1)
likelihood are Gaussian in closed form, so both methods are checked against the truth: near
alpha = 1 both agree with it; at alpha = 0.5 and 2 TRADE's learned family still does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

import sbiplug
from sbiplug import inference_data as adapter
from sbiplug.posterior_draws import log_likelihood_at, log_prior_at
from sbiplug_trade import power_scaling_sensitivity

VARIANCE = 0.1  # prior and noise


def _power_moments(component: str, alpha: float, x_o: float) -> tuple[float, float]:
    prior = (alpha if component == "prior" else 1) / VARIANCE
    likelihood = (alpha if component == "likelihood" else 1) / VARIANCE
    return likelihood * x_o / (prior + likelihood), math.sqrt(1 / (prior + likelihood))


@pytest.fixture(scope="module")
def exact():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=1)
    x_o = torch.tensor([[0.4]])
    rng = np.random.default_rng(0)
    samples = 0.2 + math.sqrt(0.05) * rng.standard_normal((1, 4, 500, 1))
    samples = torch.from_numpy(samples).float()
    log_likelihood, source = log_likelihood_at(simulator, None, samples, x_o)
    return sbiplug.StudyResult(
        simulator=simulator,
        estimator=None,
        samples=samples,
        observations=x_o,
        log_prior=log_prior_at(simulator.prior, samples),
        log_likelihood=log_likelihood,
        log_likelihood_source=source,
        provenance={"sampling": "independent"},
    )


def test_trade_follows_the_power_posterior_where_reweighting_is_local(exact):
    component = "likelihood"
    result = power_scaling_sensitivity(
        exact, component=component, num_alphas=3, steps=400, num_samples=2000, seed=0
    )
    data: xr.Dataset = result.data
    for alpha in data["alpha"].values:
        mean, sd = _power_moments(component, float(alpha), 0.4)
        row = data.sel(alpha=alpha, parameter="theta_1")
        # TRADE over the whole range: mean within 0.25 sd, sd within 20% (2000 flow draws)
        assert float(row["mean_trade"]) == pytest.approx(mean, abs=0.25 * sd)
        assert float(row["sd_trade"]) == pytest.approx(sd, rel=0.2)
    near = data.sel(alpha=1.0, parameter="theta_1")
    assert float(near["mean_is"]) == pytest.approx(0.2, abs=0.02)
    # ArviZ's local estimate: psense is positive and flags this informative component
    psense = float(adapter.psense(exact.to_datatree(), component)["theta_1"])
    assert psense > 0.05
