"""Spec validation and option checking give clear errors before any work."""

from __future__ import annotations

import pytest

import sbiplug
from sbiplug.specs import DiagnosticSpec, EstimatorSpec, SimulatorSpec, SpecError, TargetSpec


@pytest.mark.parametrize("name", ["TwoMoons", "two-moons", "2moons", "", "two moons"])
def test_bad_names_are_rejected(name):
    with pytest.raises(SpecError, match="lower_snake_case"):
        SimulatorSpec(name=name, factory="builtins:dict")


def test_bad_factories_are_rejected():
    with pytest.raises(SpecError, match="module:attribute"):
        EstimatorSpec(name="x", factory="not a reference")
    with pytest.raises(SpecError, match="callable"):
        TargetSpec(name="x", factory=42)  # type: ignore[arg-type]


def test_bad_field_values_are_rejected():
    with pytest.raises(SpecError, match="parameter_manifold 'klein_bottle'"):
        SimulatorSpec(name="x", factory="builtins:dict", parameter_manifold="klein_bottle")
    with pytest.raises(SpecError, match="manifolds"):
        EstimatorSpec(name="x", factory="builtins:dict", manifolds=("moebius",))
    with pytest.raises(SpecError, match="unknown requirements"):
        DiagnosticSpec(name="x", factory="builtins:dict", requires=("crystal_ball",))


def test_specs_are_frozen():
    spec = SimulatorSpec(name="x", factory="builtins:dict")
    with pytest.raises(AttributeError):
        spec.name = "y"  # type: ignore[misc]


def test_unknown_options_name_the_estimator_and_list_accepted():
    import torch
    from sbi.utils import BoxUniform

    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    with pytest.raises(TypeError) as error:
        sbiplug.make_estimator("npe", prior, density_estimatr="maf")
    message = str(error.value)
    assert "estimator 'npe'" in message and "density_estimator" in message


def test_bad_option_values_fail_before_training():
    import torch
    from sbi.utils import BoxUniform

    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="density_estimator 'flowy'"):
        sbiplug.make_estimator("npe", prior, density_estimator="flowy")
    with pytest.raises(ValueError, match="classifier 'forest'"):
        sbiplug.make_estimator("nre", prior, classifier="forest")
    with pytest.raises(ValueError, match="sde_type"):
        sbiplug.make_estimator("npse", prior, sde_type="ode")
