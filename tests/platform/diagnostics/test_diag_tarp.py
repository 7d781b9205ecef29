"""TARP: the expected coverage curve of an exact posterior follows the diagonal."""

from __future__ import annotations

import numpy as np
import pytest

from sbiplug.builtin.diagnostics.tarp import TARP
from sbiplug.diagnostic import DiagnosticResult


def test_exact_posterior_follows_the_diagonal(gaussian_posterior, make_context):
    result = TARP(num_tarp_runs=200, num_posterior_samples=100).run(
        make_context(gaussian_posterior())
    )
    assert result.passed is True
    assert abs(result.statistic) < 0.05
    ecp, credibility = result.data["ecp"].values, result.data["credibility"].values
    assert ecp[0] == 0.0 and ecp[-1] == pytest.approx(1.0)
    assert np.all(np.diff(ecp) >= 0)
    # Kolmogorov-Smirnov: with 200 runs the ECDF stays within 0.115 of the diagonal (95%).
    assert np.abs(ecp - credibility).max() < 0.115


@pytest.mark.parametrize(
    ("scale", "sign"), [(0.4, -1.0), (2.0, 1.0)], ids=["overconfident", "underconfident"]
)
def test_miscalibrated_posterior_fails_with_the_right_sign(
    gaussian_posterior, make_context, scale, sign
):
    result = TARP(num_tarp_runs=200, num_posterior_samples=100).run(
        make_context(gaussian_posterior(scale=scale))
    )
    assert result.passed is False
    assert sign * result.statistic > 0.05  # ATC < 0: too narrow; ATC > 0: too wide
    assert "over-confident" in result.message if sign < 0 else "under-confident" in result.message


def test_reproducible_and_plots_from_data(gaussian_posterior, make_context):
    context = make_context(gaussian_posterior())
    tarp = TARP(num_tarp_runs=50, num_posterior_samples=30)
    first, second = tarp.run(context), tarp.run(context)
    np.testing.assert_array_equal(first.data["ecp"].values, second.data["ecp"].values)
    figure = tarp.plot(DiagnosticResult.from_dataset(first.to_dataset()))
    (ax,) = figure.axes
    np.testing.assert_allclose(ax.lines[1].get_ydata(), first.data["ecp"].values)
