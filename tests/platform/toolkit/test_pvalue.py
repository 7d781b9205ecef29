"""Monte-Carlo p-values: the formula, NaN handling and exactness under the null."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbiplug.toolkit import bonferroni_p_value, monte_carlo_p_value


def test_the_formula_counts_ties_as_exceedances():
    null = [0.0, 1.0, 2.0, 3.0]
    assert monte_carlo_p_value(5.0, null) == 1 / 5  # never 0
    assert monte_carlo_p_value(2.0, null) == (1 + 2) / 5  # 2 and 3 are >= 2
    assert monte_carlo_p_value(-1.0, null) == 1.0
    assert isinstance(monte_carlo_p_value(2.0, null), float)


def test_vectorised_over_observed_values_and_per_value_nulls():
    null = torch.arange(9.0)  # a CPU tensor is fine
    p = monte_carlo_p_value(np.array([0.0, 8.0, 9.0]), null)
    np.testing.assert_allclose(p, [10 / 10, 2 / 10, 1 / 10])
    per_row = np.array([[0.0, 1.0, np.nan], [5.0, 5.0, 5.0]])
    np.testing.assert_allclose(monte_carlo_p_value(np.array([1.0, 4.0]), per_row), [2 / 3, 1.0])


def test_nan_draws_are_dropped_and_a_nan_statistic_has_no_p_value():
    assert monte_carlo_p_value(1.0, [np.nan, 2.0, 0.0]) == (1 + 1) / (1 + 2)
    assert np.isnan(monte_carlo_p_value(np.nan, [0.0, 1.0]))


@pytest.mark.parametrize("num_null", [19, 99])
def test_rejection_rate_under_the_null_is_alpha(num_null):
    # Observed and null draws are exchangeable under the null, so P(p <= alpha) = alpha exactly
    # when alpha * (1 + num_null) is an integer.
    rng = np.random.default_rng(0)
    trials, alpha = 20_000, 0.05
    observed = rng.standard_normal(trials)
    null = rng.standard_normal((trials, num_null))
    p_values = monte_carlo_p_value(observed, null)
    assert p_values.min() >= 1 / (1 + num_null)
    rate = float(np.mean(p_values <= alpha))
    standard_error = np.sqrt(alpha * (1 - alpha) / trials)
    assert abs(rate - alpha) < 4 * standard_error
    # and the p-value is uniform on {1, ..., n + 1} / (n + 1)
    counts = np.bincount(np.rint(p_values * (1 + num_null)).astype(int), minlength=num_null + 2)
    assert counts[0] == 0 and abs(counts[1:].mean() - trials / (1 + num_null)) < 1e-9


def test_bonferroni_adjusts_the_smallest_p_value_and_caps_at_one():
    assert bonferroni_p_value([0.01, 0.5, 0.9]) == pytest.approx(0.03)
    assert bonferroni_p_value(0.2) == 0.2
    assert bonferroni_p_value([0.5, 0.6]) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        bonferroni_p_value([])
