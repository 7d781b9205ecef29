"""HPD expected coverage from log-probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sbiplug.builtin.diagnostics.coverage import Coverage
from sbiplug.toolkit import DiagnosticInputError


def test_exact_posterior_has_nominal_coverage(gaussian_posterior, make_context):
    result = Coverage(num_coverage_runs=200, num_posterior_samples=100).run(
        make_context(gaussian_posterior())
    )
    assert result.passed is True
    levels = result.data["hpd_level"].values
    assert levels.min() >= 0.0 and levels.max() <= 1.0
    tolerance = 4 * math.sqrt(0.25 / 200)  # 4 binomial sd at 200 runs
    assert abs(result.summary["coverage_at_0.5"] - 0.5) < tolerance
    assert abs(result.summary["coverage_at_0.9"] - 0.9) < 4 * math.sqrt(0.09 / 200)


def test_overconfident_posterior_undercovers(gaussian_posterior, make_context):
    result = Coverage(num_coverage_runs=200, num_posterior_samples=100).run(
        make_context(gaussian_posterior(scale=0.5))
    )
    assert result.passed is False
    # With half the true sd in 2-D, the nominal 90% HPD region holds the truth with chance
    # 1 - exp(-0.25 * 4.605 / 2) = 0.44.
    assert result.summary["coverage_at_0.9"] < 0.6
    assert result.summary["atc"] < -0.1


def test_normalising_constant_does_not_matter(gaussian_posterior, make_context):
    exact = gaussian_posterior()
    shifted = gaussian_posterior()
    shifted.log_prob = lambda theta, x=None: exact.log_prob(theta, x=x) + 123.0
    coverage = Coverage(num_coverage_runs=60, num_posterior_samples=40)
    first = coverage.run(make_context(exact))
    second = coverage.run(make_context(shifted))
    np.testing.assert_array_equal(first.data["hpd_level"].values, second.data["hpd_level"].values)


def test_posterior_without_log_prob_is_refused_before_sampling(gaussian_posterior, make_context):
    posterior = gaussian_posterior(draws_only=True)
    posterior.sample_batched = None  # any sampling attempt would fail differently
    with pytest.raises(DiagnosticInputError, match="'coverage' needs a posterior with log_prob"):
        Coverage().run(make_context(posterior))
