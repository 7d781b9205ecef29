"""SBC: ranks of an exact posterior are uniform; over- and under-confident ones are not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbiplug.builtin.diagnostics.sbc import SBC
from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import DiagnosticInputError


def test_exact_posterior_passes_with_uniform_ranks(gaussian_posterior, make_context):
    result = SBC(num_sbc_runs=200, num_posterior_samples=100).run(
        make_context(gaussian_posterior())
    )
    assert result.passed is True
    assert result.p_value > 0.05
    data = result.data
    assert data["ranks"].dims == ("sbc_run", "parameter")
    assert list(data["parameter"].values) == ["theta_1", "theta_2"]
    ranks = data["ranks"].values
    assert ranks.min() >= 0 and ranks.max() <= 100
    np.testing.assert_allclose(data["pit"].values, ranks / 100)
    # Each decile of the PIT holds 10% of 200 runs: binomial sd 4.2, so 4 sd is <= 17.
    counts = np.histogram(data["pit"].values[:, 0], bins=10, range=(0, 1.0001))[0]
    assert np.abs(counts - 20).max() <= 17
    # C2ST between ranks and uniform draws stays near chance (sd ~0.035 for 400 points).
    assert data["c2st_ranks"].values.max() < 0.62
    assert data["c2st_dap"].values.max() < 0.62


@pytest.mark.parametrize("scale", [0.5, 2.0], ids=["overconfident", "underconfident"])
def test_miscalibrated_posterior_fails(gaussian_posterior, make_context, scale):
    sbc = SBC(num_sbc_runs=200, num_posterior_samples=100, c2st=False)
    result = sbc.run(make_context(gaussian_posterior(scale=scale)))
    assert result.passed is False
    assert result.p_value < 1e-4
    pit = result.data["pit"].values
    tails = np.mean((pit < 0.1) | (pit > 0.9))
    # Narrow posteriors push true values into the tails (U shape), wide ones away (hump).
    assert tails > 0.35 if scale < 1 else tails < 0.1


def test_same_seed_same_result_and_seed_matters(gaussian_posterior, make_context):
    sbc = SBC(num_sbc_runs=50, num_posterior_samples=50, c2st=False)
    context = make_context(gaussian_posterior())
    first, second = sbc.run(context), sbc.run(context)
    np.testing.assert_array_equal(first.data["ranks"].values, second.data["ranks"].values)
    other = SBC(num_sbc_runs=50, num_posterior_samples=50, c2st=False, seed=7).run(context)
    assert not np.array_equal(first.data["ranks"].values, other.data["ranks"].values)
    # The global generators are left as they were.
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    sbc.run(context)
    assert torch.equal(torch.rand(1), expected)


def test_held_out_pairs_are_used_without_a_simulator(gaussian_posterior, simulator):
    theta = simulator.sample_prior(40, seed=1)
    x = simulator.simulate(theta, seed=2)
    context = DiagnosticContext(posterior=gaussian_posterior(), extras={"held_out": (theta, x)})
    result = SBC(num_sbc_runs=100, num_posterior_samples=30, c2st=False).run(context)
    assert result.data.attrs["source"] == "held_out"
    assert result.data.sizes["sbc_run"] == 40
    np.testing.assert_allclose(result.data["theta"].values, theta.numpy(), rtol=1e-6)


def test_missing_inputs_raise_clear_errors(gaussian_posterior):
    with pytest.raises(DiagnosticInputError, match="'sbc' needs a posterior"):
        SBC().run(DiagnosticContext())
    with pytest.raises(DiagnosticInputError, match="'sbc' needs parameter/data pairs"):
        SBC().run(DiagnosticContext(posterior=gaussian_posterior()))
    with pytest.raises(ValueError, match="num_sbc_runs"):
        SBC(num_sbc_runs=1)


def test_plot_redraws_from_the_saved_dataset(gaussian_posterior, make_context):
    result = SBC(num_sbc_runs=30, num_posterior_samples=20, c2st=False).run(
        make_context(gaussian_posterior())
    )
    reloaded = DiagnosticResult.from_dataset(result.to_dataset())
    figure = SBC().plot(reloaded)
    (ax,) = figure.axes
    assert len(ax.lines) == 2 + 1  # one ECDF difference per parameter, and the zero line
    assert len(ax.collections) == 1  # the simultaneous band


def test_pairs_with_non_finite_data_are_dropped_visibly(gaussian_posterior, simulator):
    theta = simulator.sample_prior(30, seed=1)
    x = simulator.simulate(theta, seed=2)
    x[[3, 7]] = float("nan")
    context = DiagnosticContext(posterior=gaussian_posterior(), extras={"held_out": (theta, x)})
    with pytest.warns(UserWarning, match="dropped 2 of 30 pairs"):
        result = SBC(num_posterior_samples=20, c2st=False).run(context)
    kept = [i for i in range(30) if i not in (3, 7)]
    np.testing.assert_allclose(result.data["theta"].values, theta[kept].numpy(), rtol=1e-6)
