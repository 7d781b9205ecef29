"""Every built-in diagnostic on a real NPE trained through make_estimator, via the conformance kit.

An MDN posterior estimator is exact in family for the Gaussian posterior of gaussian_linear, so
with 1000 simulations it is close enough that every check should pass.
"""

from __future__ import annotations

import warnings

import pytest

import sbiplug
from sbiplug.diagnostic import DiagnosticContext
from sbiplug.testing import check_diagnostic

OPTIONS = {
    "sbc": {"num_sbc_runs": 200, "num_posterior_samples": 100, "c2st": False},
    "tarp": {"num_tarp_runs": 200, "num_posterior_samples": 100},
    "coverage": {"num_coverage_runs": 200, "num_posterior_samples": 100},
    "c2st_reference": {"num_samples": 300},
    "ppc": {"num_samples": 100},
}


@pytest.fixture(scope="module")
def trained_context() -> DiagnosticContext:
    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    theta = simulator.sample_prior(1000, seed=0)
    x = simulator.simulate(theta, seed=0)
    import torch

    torch.manual_seed(0)
    trainer = sbiplug.make_estimator(
        "npe", simulator.prior, density_estimator="mdn", show_progress_bars=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not yet fully converged": the budget is deliberate
        trainer.append_simulations(theta, x).train(max_num_epochs=30)
    theta_o = simulator.sample_prior(1, seed=1)
    return DiagnosticContext(
        simulator=simulator,
        estimator=trainer,
        posterior=trainer.build_posterior(),
        theta=theta,
        x=x,
        observations=simulator.simulate(theta_o, seed=2),
        true_parameters=theta_o,
        seed=0,
    )


def test_every_builtin_diagnostic_is_registered():
    builtin = {n for n, s in sbiplug.diagnostics().items() if s.plugin == "sbiplug.diagnostics"}
    assert builtin == set(OPTIONS)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_trained_npe_passes_every_diagnostic(trained_context, name):
    result = check_diagnostic(name, trained_context, **OPTIONS[name])
    assert result.passed is True, result.message
    if name == "c2st_reference":
        assert result.statistic < 0.6
