"""Default parameter names count from 1, everywhere names are generated."""

from __future__ import annotations

import torch

from sbiplug import DiagnosticContext
from sbiplug.toolkit import default_parameter_names, parameter_names, parameter_names_or_default


def test_default_names_count_from_one():
    assert default_parameter_names(3) == ["theta_1", "theta_2", "theta_3"]
    assert default_parameter_names(0) == []


def test_given_names_are_kept_only_when_they_fit():
    assert parameter_names_or_default(("a", "b"), 2) == ["a", "b"]
    assert parameter_names_or_default(("a",), 2) == ["theta_1", "theta_2"]
    assert parameter_names_or_default(None, 1) == ["theta_1"]


def test_contexts_and_built_in_simulators_use_the_same_names():
    import sbiplug

    context = DiagnosticContext(theta=torch.zeros(5, 2))
    assert context.parameter_names == ["theta_1", "theta_2"]
    assert parameter_names(context, 3) == ["theta_1", "theta_2", "theta_3"]
    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    assert list(simulator.parameter_names) == default_parameter_names(2)
