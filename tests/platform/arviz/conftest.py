"""Results whose posterior is exact: gaussian_linear's N(x / 2, 0.05 I), drawn as four chains.

With exact draws every ArviZ number has a closed form to test against: PIT values are uniform,
power-scaled posteriors are Gaussian, and leave-one-coordinate-out predictives are N(0, 0.2).
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
import xarray as xr
from scipy.stats import norm

import sbiplug
from sbiplug.diagnostic import DiagnosticResult
from sbiplug.posterior_draws import log_likelihood_at, log_prior_at

matplotlib.use("Agg")

PRIOR_VARIANCE = NOISE_VARIANCE = 0.1
POSTERIOR_VARIANCE = 0.05


def exact_result(
    dim: int,
    *,
    num_observations: int = 2,
    num_chains: int = 4,
    num_draws: int = 500,
    num_sbc: int = 300,
    shift: float = 0.0,
    scale: float = 1.0,
    seed: int = 0,
) -> sbiplug.StudyResult:
    """A gaussian_linear result with exact posterior draws (``shift``/``scale`` distort them)."""
    simulator = sbiplug.make_simulator("gaussian_linear", dim=dim)
    rng = np.random.default_rng(seed)
    truth = simulator.sample_prior(num_observations, seed=seed)
    x = simulator.simulate(truth, seed=seed + 1)
    mean = x.numpy() / 2 + shift  # (observation, dim)
    sd = math.sqrt(POSTERIOR_VARIANCE) * scale
    noise = rng.standard_normal((num_observations, num_chains, num_draws, dim))
    samples = torch.from_numpy(mean[:, None, None, :] + sd * noise).float()
    predictive_draws = samples[:, :, :50]
    flat = predictive_draws.reshape(-1, dim)
    predictive = simulator.simulate(flat, seed=seed + 2).reshape(*predictive_draws.shape)
    # SBC with the same (possibly distorted) posterior: PIT = posterior CDF at the true theta
    theta = simulator.sample_prior(num_sbc, seed=seed + 3).numpy()
    x_sbc = simulator.simulate(torch.from_numpy(theta).float(), seed=seed + 4).numpy()
    pit = norm.cdf(theta, loc=x_sbc / 2 + shift, scale=sd)
    names = list(simulator.parameter_names)
    sbc = DiagnosticResult(
        name="sbc",
        statistic=0.0,
        data=xr.Dataset(
            {"pit": (("sbc_run", "parameter"), pit)},
            coords={"sbc_run": np.arange(num_sbc), "parameter": names},
        ),
    )
    log_likelihood, source = log_likelihood_at(simulator, None, samples, x)
    return sbiplug.StudyResult(
        simulator=simulator,
        estimator=None,
        samples=samples,
        observations=x,
        true_parameters=truth,
        diagnostics={"sbc": sbc},
        prior_samples=simulator.sample_prior(1000, seed=seed + 5),
        posterior_predictive=predictive,
        log_prior=log_prior_at(simulator.prior, samples),
        log_likelihood=log_likelihood,
        log_likelihood_source=source,
        provenance={
            "simulator": "gaussian_linear",
            "simulator_options": {"dim": dim},
            "sampling": "independent",
            "seed": seed,
        },
    )


@pytest.fixture(scope="module", params=[1, 10], ids=["one_parameter", "ten_parameters"])
def exact(request) -> sbiplug.StudyResult:
    return exact_result(request.param)
