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

from sbiplug.errors import FactoryImportError

__all__ = [
    "MANIFOLDS",
    "DiagnosticSpec",
    "EmbeddingNetSpec",
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
    "set_encoder",
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
        """The factory, importing it first when it is a lazy reference.

        Raises:
            FactoryImportError: the reference's module or attribute cannot be imported; the
                message names the spec, its plugin and what is missing.
        """
        if not isinstance(self.factory, str):
            return self.factory
        try:
            factory = resolve_reference(self.factory)
        except (ImportError, AttributeError) as error:
            missing = error.name if isinstance(error, ModuleNotFoundError) else None
            raise FactoryImportError(
                self.kind,
                self.name,
                self.plugin or "<unregistered>",
                self.factory,
                f"{type(error).__name__}: {error}",
                missing=missing,
            ) from error
        if not callable(factory):
            raise SpecError(f"{self.kind} {self.name!r}: {self.factory!r} is not callable")
        return factory


@dataclass(frozen=True, kw_only=True)
class SimulatorSpec(Spec):
    """A simulator: ``factory(**options) -> Simulator``.

    The two descriptive fields repeat facts of the simulator class so that listing needs no
    import of it (nor of torch). The class is the truth: building the simulator checks that
    they match it and raises :class:`SpecError` naming the plugin when they do not.

    Arguments:
        parameter_manifold: Where the parameters live: one of ``MANIFOLDS``; equal to the
            class's ``parameter_manifold``.
        has_reference_posterior: Whether the class implements ``reference_posterior``.
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
        density_estimator: For a conditional density estimator, a callable or lazy
            ``"module:attr"`` reference to ``builder_factory(**options) -> builder``, where
            ``builder(batch_theta, batch_x)`` is what sbi's ``NPE(density_estimator=...)``
            accepts; ``sbiplug.density_estimator(name)`` returns it. ``None`` otherwise.
    """

    kind = "estimator"

    has_density: bool = True
    manifolds: tuple[str, ...] = ("euclidean",)
    density_estimator: Callable[..., Any] | str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        builder = self.density_estimator
        if builder is not None and not (
            callable(builder) or (isinstance(builder, str) and REFERENCE_PATTERN.match(builder))
        ):
            raise SpecError(
                f"estimator {self.name!r}: density_estimator {builder!r} is not a callable "
                "nor a 'module:attribute' reference"
            )
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


@dataclass(frozen=True, kw_only=True)
class EmbeddingNetSpec(Spec):
    """A summary (embedding) network: ``factory(**options) -> torch.nn.Module``.

    Options are JSON values, so a trained estimator that uses the network is saved as its
    weights plus ``{"name": ..., "options": ...}`` and rebuilt by name when loaded.
    """

    kind = "embedding_net"


SPEC_KINDS: dict[str, type[Spec]] = {
    "simulators": SimulatorSpec,
    "estimators": EstimatorSpec,
    "diagnostics": DiagnosticSpec,
    "targets": TargetSpec,
    "embedding_nets": EmbeddingNetSpec,
}
