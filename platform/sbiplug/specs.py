"""Specifications that plugins contribute through the sbiplug hooks.

A spec is plain data: a unique name, a factory (a callable or a lazy ``"module:attr"`` reference
resolved on first use, so listing plugins never imports torch) and a few descriptive fields.
The plugin manager validates every spec centrally and fills in the contributing plugin's name.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MANIFOLDS",
    "DiagnosticSpec",
    "EstimatorSpec",
    "SimulatorSpec",
    "Spec",
    "SpecError",
    "TargetSpec",
    "resolve_reference",
]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
REFERENCE_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
MANIFOLDS = ("euclidean", "sphere", "torus", "so3")
DIAGNOSTIC_REQUIREMENTS = (
    "observations",
    "true_parameters",
    "reference_posterior",
    "log_prob",
    "embedding_net",
    "log_likelihood",
)


class SpecError(ValueError):
    """A spec is malformed: a bad name, factory or field value."""


def resolve_reference(reference: str) -> Any:
    """Import the object named by ``"package.module:attribute.path"``."""
    if not REFERENCE_PATTERN.match(reference):
        raise SpecError(f"factory reference {reference!r} is not of the form 'module:attribute'")
    module_name, _, attribute_path = reference.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute_path.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Common fields of every contribution.

    Arguments:
        name: Unique lower_snake_case name, used in ``make_*`` calls, TOML files and the CLI.
        factory: A callable building the object, or a lazy ``"module:attr"`` reference.
        description: One line shown by ``sbiplug list``.
        plugin: The contributing plugin; filled in by the plugin manager.
    """

    kind = "spec"

    name: str
    factory: Callable[..., Any] | str
    description: str = ""
    plugin: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise SpecError(
                f"{self.kind} name {self.name!r} is invalid: expected lower_snake_case "
                "(a lowercase letter, then lowercase letters, digits or underscores)"
            )
        if isinstance(self.factory, str):
            if not REFERENCE_PATTERN.match(self.factory):
                raise SpecError(
                    f"{self.kind} {self.name!r}: factory {self.factory!r} is not a callable "
                    "nor a 'module:attribute' reference"
                )
        elif not callable(self.factory):
            raise SpecError(
                f"{self.kind} {self.name!r}: factory must be callable or a 'module:attribute' "
                f"string, got {type(self.factory).__name__}"
            )

    def load(self) -> Callable[..., Any]:
        """The factory, importing it first when it is a lazy reference."""
        if isinstance(self.factory, str):
            factory = resolve_reference(self.factory)
            if not callable(factory):
                raise SpecError(f"{self.kind} {self.name!r}: {self.factory!r} is not callable")
            return factory
        return self.factory


@dataclass(frozen=True, kw_only=True)
class SimulatorSpec(Spec):
    """A simulator: ``factory(**options) -> Simulator``.

    Arguments:
        parameter_manifold: Where the parameters live: one of ``MANIFOLDS``.
        has_reference_posterior: Whether ``reference_posterior`` is implemented.
    """

    kind = "simulator"

    parameter_manifold: str = "euclidean"
    has_reference_posterior: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.parameter_manifold not in MANIFOLDS:
            raise SpecError(
                f"simulator {self.name!r}: parameter_manifold {self.parameter_manifold!r} is "
                f"not one of {', '.join(MANIFOLDS)}"
            )


@dataclass(frozen=True, kw_only=True)
class EstimatorSpec(Spec):
    """An sbi-compatible trainer: ``factory(prior=..., **options) -> trainer``.

    Arguments:
        has_density: Whether the posterior has a tractable ``log_prob``.
        manifolds: Parameter manifolds the estimator handles. When it lists more than
            ``"euclidean"``, a Study passes ``manifold=`` from the simulator.
    """

    kind = "estimator"

    has_density: bool = True
    manifolds: tuple[str, ...] = ("euclidean",)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [m for m in self.manifolds if m not in MANIFOLDS]
        if not self.manifolds or unknown:
            raise SpecError(
                f"estimator {self.name!r}: manifolds {self.manifolds!r} must be a non-empty "
                f"tuple drawn from {', '.join(MANIFOLDS)}"
            )


@dataclass(frozen=True, kw_only=True)
class DiagnosticSpec(Spec):
    """A diagnostic: ``factory(**options) -> Diagnostic``.

    Arguments:
        requires: What the diagnostic needs from a study, drawn from
            ``DIAGNOSTIC_REQUIREMENTS``; a study checks these before any work starts.
        automatic: Run in every study whose requirements it meets, without being asked.
    """

    kind = "diagnostic"

    requires: tuple[str, ...] = ()
    automatic: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [r for r in self.requires if r not in DIAGNOSTIC_REQUIREMENTS]
        if unknown:
            raise SpecError(
                f"diagnostic {self.name!r}: unknown requirements {unknown}; expected some of "
                f"{', '.join(DIAGNOSTIC_REQUIREMENTS)}"
            )


@dataclass(frozen=True, kw_only=True)
class TargetSpec(Spec):
    """An unnormalised density family ``log p~(x | c)``: ``factory(**options) -> Target``."""

    kind = "target"


SPEC_KINDS: dict[str, type[Spec]] = {
    "simulators": SimulatorSpec,
    "estimators": EstimatorSpec,
    "diagnostics": DiagnosticSpec,
    "targets": TargetSpec,
}
