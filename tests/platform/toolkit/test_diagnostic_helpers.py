"""Diagnostic plumbing: seeds, progress bars, inputs, figures and the verdict of a test."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

import sbiplug
from sbiplug import DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    HELD_OUT_KEY,
    DiagnosticInputError,
    calibration_pairs,
    figure_and_axes,
    require_observations,
    require_posterior,
    require_simulator,
    require_variables,
    resolve_progress,
    resolve_seed,
    significance,
)


def test_seed_and_progress_resolution():
    context = DiagnosticContext(seed=7, show_progress_bars=True)
    assert resolve_seed(3, context) == 3 and resolve_seed(None, context) == 7
    assert resolve_seed(None, DiagnosticContext()) == 0
    assert resolve_progress(None, context) is True and resolve_progress(False, context) is False


def test_missing_inputs_name_the_diagnostic():
    empty = DiagnosticContext()
    for require in (require_posterior, require_simulator, require_observations):
        with pytest.raises(DiagnosticInputError, match="diagnostic 'mine' needs"):
            require(empty, "mine")
    assert issubclass(DiagnosticInputError, ValueError)


def test_observations_get_a_batch_dimension_and_a_checked_shape():
    simulator = sbiplug.make_simulator("two_moons")
    single = DiagnosticContext(simulator=simulator, observations=torch.zeros(2, dtype=torch.int64))
    observations = require_observations(single, "mine")
    assert observations.shape == (1, 2) and observations.dtype == torch.float32
    batch = DiagnosticContext(observations=torch.zeros(4, 3))
    assert require_observations(batch, "mine").shape == (4, 3)
    with pytest.raises(DiagnosticInputError, match="do not match one observation of shape"):
        require_observations(batch, "mine", observation_shape=(2,))


def test_calibration_pairs_prefer_held_out_and_drop_non_finite_data():
    theta = torch.randn(6, 2)
    x = torch.randn(6, 3)
    x[2, 0] = float("nan")
    context = DiagnosticContext(extras={HELD_OUT_KEY: (theta, x)})
    with pytest.warns(UserWarning, match="dropped 1 of 5"):
        pairs, data, source = calibration_pairs(context, 5, seed=0, diagnostic="mine")
    assert source == "held_out" and pairs.shape == (4, 2) and torch.isfinite(data).all()
    simulated = DiagnosticContext(simulator=sbiplug.make_simulator("two_moons"))
    first = calibration_pairs(simulated, 4, seed=1, diagnostic="mine")
    again = calibration_pairs(simulated, 4, seed=1, diagnostic="mine")
    assert first[2] == "simulated" and torch.equal(first[0], again[0])
    with pytest.raises(DiagnosticInputError, match="needs parameter/data pairs"):
        calibration_pairs(DiagnosticContext(), 4, seed=0, diagnostic="mine")


def test_figure_and_axes_reuse_given_axes_or_make_one():
    import matplotlib.pyplot as plt

    figure, ax = figure_and_axes(None, figsize=(4.0, 2.0))
    assert isinstance(figure, matplotlib.figure.Figure) and ax.figure is figure
    assert tuple(figure.get_size_inches()) == (4.0, 2.0)
    other, axes = plt.subplots(1, 2)
    assert figure_and_axes(axes[1]) == (other, axes[1])
    with pytest.raises(ValueError, match=r"diagnostic 'mine'.*\['pit'\]"):
        require_variables(None, ("pit",), "mine")


def test_significance_is_bonferroni_at_alpha_and_builds_a_result():
    verdict = significance(np.array([0.02, 0.4]), alpha=0.05)
    assert verdict == {"p_value": pytest.approx(0.04), "passed": False, "threshold": 0.05}
    assert significance(0.2, 0.05)["passed"] is True
    result = DiagnosticResult(name="mine", statistic=1.0, **significance(0.2, 0.05))
    assert result.passed and result.p_value == 0.2 and result.threshold == 0.05
