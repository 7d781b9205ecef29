"""The misspecification diagnostic in a context: warns, stores the null, plots, round-trips."""

from __future__ import annotations

import warnings

import pytest

import sbiplug
from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult
from sbiplug_misspec import GaussianMeans
from sbiplug_misspec.diagnostic import MisspecificationWarning


def _context(simulator, trainer, observations) -> DiagnosticContext:
    return DiagnosticContext(
        simulator=simulator, estimator=trainer, observations=observations, seed=0
    )


def test_spec_runs_automatically_with_observations_and_an_embedding_net():
    spec = sbiplug.diagnostics()["misspecification"]
    assert spec.automatic and set(spec.requires) == {"observations", "embedding_net"}


def test_misspecified_observations_warn_and_fail(simulator, regularised_trainer):
    truth = GaussianMeans(n_obs=simulator.n_obs, prior_loc=5.0)
    observations = truth.simulate(truth.sample_prior(3, seed=0), seed=1)
    diagnostic = sbiplug.make_diagnostic("misspecification", num_reference=300, num_null=99)
    with pytest.warns(MisspecificationWarning, match="should not be trusted"):
        result = diagnostic.run(_context(simulator, regularised_trainer, observations))
    assert result.passed is False and result.threshold == 0.05
    # The summary block's statistic is the largest of 100; the two-block min-p ties with the
    # data block's most extreme null replicate at most.
    assert result.p_value <= 2 / 100
    assert result.summary["p_value_summary"] == pytest.approx(1 / 100)
    assert "Strongest evidence in the summary block" in result.message
    assert result.statistic > result.summary["critical_value"]
    assert result.data["null_statistic"].shape == (99,)
    assert result.data.attrs["num_observed"] == 3

    restored = DiagnosticResult.from_dataset(result.to_dataset())
    assert restored.p_value == result.p_value and restored.passed is False
    figure = restored.plot()
    ax = figure.axes[0]
    assert len(ax.patches) == 30  # histogram bars
    assert {round(line.get_xdata()[0], 6) for line in ax.lines} == {
        round(result.statistic, 6),
        round(result.summary["critical_value"], 6),
    }


def test_well_specified_observations_pass_without_warning(simulator, regularised_trainer):
    observations = simulator.simulate(simulator.sample_prior(2, seed=5), seed=6)
    diagnostic = sbiplug.make_diagnostic("misspecification", num_reference=300, num_null=99)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MisspecificationWarning)
        result = diagnostic.run(_context(simulator, regularised_trainer, observations))
    assert result.passed is True and result.p_value > 0.05


def test_missing_observations_are_an_error(simulator, regularised_trainer):
    diagnostic = sbiplug.make_diagnostic("misspecification")
    with pytest.raises(ValueError, match="no observations"):
        diagnostic.run(_context(simulator, regularised_trainer, None))
