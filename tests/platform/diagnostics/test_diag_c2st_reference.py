"""C2ST against the reference posterior: near 0.5 for the exact posterior, high when shifted."""

from __future__ import annotations

import pytest
import torch

import sbiplug
from sbiplug.builtin.diagnostics.c2st_reference import C2STReference
from sbiplug.toolkit import DiagnosticInputError


def test_exact_posterior_is_indistinguishable(gaussian_posterior, make_context):
    context = make_context(gaussian_posterior(), num_observations=1)
    result = C2STReference(num_samples=400).run(context)
    # Accuracy of 800 points under the null: sd ~0.018.
    assert result.passed is True
    assert result.statistic < 0.57
    assert result.data["c2st"].dims == ("observation",)
    means = result.data[["posterior_mean", "reference_mean"]]
    torch.testing.assert_close(
        torch.as_tensor(means["posterior_mean"].values),
        torch.as_tensor(means["reference_mean"].values),
        atol=0.06,  # 4 standard errors of a mean of 400 draws with sd 0.22
        rtol=0,
    )


def test_shifted_posterior_is_detected(gaussian_posterior, make_context):
    # A shift of 0.5 is 2.2 posterior sd per parameter: the Bayes-optimal accuracy is 0.94.
    context = make_context(gaussian_posterior(shift=0.5), num_observations=1)
    result = C2STReference(num_samples=300).run(context)
    assert result.passed is False
    assert result.statistic > 0.85


def test_stored_draws_are_used_without_a_posterior(simulator, make_context):
    context = make_context(None, num_observations=1)
    x_o = context.observations[0]
    context.posterior_samples = simulator.reference_posterior(x_o, 300, seed=5).unsqueeze(0)
    result = C2STReference(num_samples=300).run(context)
    assert result.statistic < 0.58


def test_missing_inputs_raise_clear_errors(gaussian_posterior, make_context):
    with pytest.raises(DiagnosticInputError, match="'c2st_reference' needs observations"):
        C2STReference().run(make_context(gaussian_posterior(), observations=None))
    slcp = sbiplug.make_simulator("slcp")
    with pytest.raises(DiagnosticInputError, match="simulator 'slcp' without one"):
        C2STReference().run(make_context(gaussian_posterior(), simulator=slcp))
    with pytest.raises(ValueError, match="threshold"):
        C2STReference(threshold=0.3)
