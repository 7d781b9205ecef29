"""Look up and build contributions by name: ``simulators()``, ``make_simulator(name)``, ...

Options are checked against the factory's signature and annotations before anything is built
(:mod:`sbiplug.option_checks`): a typo in an option name fails at once with the closest name and
the accepted options, a value of the wrong type or range with what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sbiplug.option_checks import check_call_options
from sbiplug.plugins import get_plugin_manager
from sbiplug.specs import (
    DiagnosticSpec,
    EstimatorSpec,
    SimulatorSpec,
    Spec,
    SpecError,
    TargetSpec,
)

if TYPE_CHECKING:
    from torch.distributions import Distribution

    from sbiplug.diagnostic import Diagnostic
    from sbiplug.simulator import Simulator
    from sbiplug.target import Target

__all__ = [
    "build",
    "check_options",
    "check_simulator_facts",
    "diagnostics",
    "estimators",
    "make_diagnostic",
    "make_estimator",
    "make_simulator",
    "make_target",
    "simulators",
    "targets",
]


def simulators() -> Mapping[str, SimulatorSpec]:
    """Every registered simulator spec by name."""
    return get_plugin_manager().specs("simulators")  # type: ignore[return-value]


def estimators() -> Mapping[str, EstimatorSpec]:
    """Every registered estimator spec by name."""
    return get_plugin_manager().specs("estimators")  # type: ignore[return-value]


def diagnostics() -> Mapping[str, DiagnosticSpec]:
    """Every registered diagnostic spec by name."""
    return get_plugin_manager().specs("diagnostics")  # type: ignore[return-value]


def targets() -> Mapping[str, TargetSpec]:
    """Every registered target spec by name."""
    return get_plugin_manager().specs("targets")  # type: ignore[return-value]


def check_options(spec: Spec, factory: Any, options: Mapping[str, Any], **fixed: Any) -> None:
    """Raise :class:`~sbiplug.option_checks.InvalidOptionError` when ``options`` do not fit.

    Names, required options, types and ranges are checked against ``factory``'s signature and
    annotations (:func:`~sbiplug.option_checks.check_call_options`); ``fixed`` are the
    arguments sbiplug passes itself (an estimator's ``prior``). The error is a ``TypeError``
    and a ``ValueError``, and names the spec and its plugin.
    """
    check_call_options(
        factory,
        options,
        owner=f"{spec.kind} {spec.name!r} (plugin {spec.plugin!r})",
        fixed=fixed,
    )


def build(spec: Spec, options: Mapping[str, Any], **fixed: Any) -> Any:
    """Load ``spec``'s factory, check ``options`` and call it."""
    factory = spec.load()
    check_options(spec, factory, options, **fixed)
    return factory(**fixed, **options)


def make_simulator(name: str, **options: Any) -> Simulator:
    """Build the simulator registered as ``name``."""
    from sbiplug.simulator import Simulator

    spec = get_plugin_manager().get("simulators", name)
    simulator = build(spec, options)
    if not isinstance(simulator, Simulator):
        raise TypeError(
            f"simulator {name!r} (plugin {spec.plugin!r}) built a {type(simulator).__name__}; "
            "expected an sbiplug.Simulator"
        )
    check_simulator_facts(spec, simulator)
    return simulator


def check_simulator_facts(spec: SimulatorSpec, simulator: Simulator) -> None:
    """Raise :class:`SpecError` when ``spec`` and the simulator's class disagree.

    ``parameter_manifold`` and ``has_reference_posterior`` are facts of the class; the spec
    repeats them so that listing needs no torch import. The class is the truth: the spec must
    match it. ``has_reference_posterior`` means "the class implements ``reference_posterior``"
    (an instance may still lack one for some options, as a contaminated data set does).
    """
    from sbiplug.simulator import Simulator

    cls = type(simulator)
    implements_reference = cls.reference_posterior is not Simulator.reference_posterior
    mismatches = []
    if spec.parameter_manifold != simulator.parameter_manifold:
        mismatches.append(
            f"parameter_manifold={spec.parameter_manifold!r} but {cls.__name__} has "
            f"{simulator.parameter_manifold!r}"
        )
    if spec.has_reference_posterior != implements_reference:
        does = "implements" if implements_reference else "does not implement"
        mismatches.append(
            f"has_reference_posterior={spec.has_reference_posterior} but {cls.__name__} {does} "
            "reference_posterior"
        )
    if mismatches:
        raise SpecError(
            f"simulator {spec.name!r} of plugin {spec.plugin!r}: its spec says "
            f"{'; and '.join(mismatches)}. Make the spec match the class."
        )


def make_estimator(name: str, prior: Distribution, **options: Any) -> Any:
    """Build the sbi trainer registered as ``name`` for ``prior``."""
    spec = get_plugin_manager().get("estimators", name)
    return build(spec, options, prior=prior)


def make_diagnostic(name: str, **options: Any) -> Diagnostic:
    """Build the diagnostic registered as ``name``."""
    spec = get_plugin_manager().get("diagnostics", name)
    diagnostic = build(spec, options)
    if not getattr(diagnostic, "name", None) or diagnostic.name == "diagnostic":
        diagnostic.name = name
    return diagnostic


def make_target(name: str, **options: Any) -> Target:
    """Build the target family registered as ``name``."""
    spec = get_plugin_manager().get("targets", name)
    return build(spec, options)
