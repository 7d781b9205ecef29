"""The sbiplug conformance kit accepts the plugin's simulator, estimator and diagnostic."""

from __future__ import annotations

from sbiplug.diagnostic import DiagnosticContext
from sbiplug.testing import check_diagnostic, check_estimator, check_simulator
from sbiplug_misspec import GaussianMeans


def test_check_simulator_by_name_and_with_contamination():
    report = check_simulator("gaussian_means")
    assert report["observation_shape"] == (100, 2)
    check_simulator(GaussianMeans(n_obs=8, contamination=0.5, noise_scale=3.0))


def test_check_estimator_npe_mmd():
    report = check_estimator(
        "npe_mmd",
        simulator=GaussianMeans(n_obs=5),
        num_simulations=200,
        estimator_options={"summary_dim": 3, "embedding_hidden_features": 16},
    )
    assert report["sample_shape"] == (20, 2) and report["save_load_checked"]


def test_check_diagnostic_misspecification(simulator, regularised_trainer):
    observations = simulator.simulate(simulator.sample_prior(2, seed=5), seed=6)
    context = DiagnosticContext(
        simulator=simulator, estimator=regularised_trainer, observations=observations, seed=0
    )
    result = check_diagnostic("misspecification", context, num_reference=200, num_null=99)
    assert result.passed is True
