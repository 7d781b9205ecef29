"""Hook specifications of the ``sbiplug`` plugin system (pluggy, project name ``"sbiplug"``).

Each contribution hook is a generator (or returns an iterable) of specs, conda style::

    @sbiplug.hookimpl
    def register_simulators():
        yield SimulatorSpec(name="my_model", factory="my_package.model:MyModel")
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from sbiplug.specs import (
    DiagnosticSpec,
    EmbeddingNetSpec,
    EstimatorSpec,
    SimulatorSpec,
    TargetSpec,
)

__all__ = ["PROJECT_NAME", "SbiplugHookSpecs", "hookimpl", "hookspec"]

PROJECT_NAME = "sbiplug"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class SbiplugHookSpecs:
    """The hooks a plugin may implement."""

    @hookspec
    def register_simulators(self) -> Iterable[SimulatorSpec]:
        """Yield the simulators (prior + forward model) this plugin contributes."""

    @hookspec
    def register_estimators(self) -> Iterable[EstimatorSpec]:
        """Yield the sbi-compatible estimators (trainer factories) this plugin contributes."""

    @hookspec
    def register_diagnostics(self) -> Iterable[DiagnosticSpec]:
        """Yield the diagnostics (checks of a trained posterior) this plugin contributes."""

    @hookspec
    def register_targets(self) -> Iterable[TargetSpec]:
        """Yield the unnormalised density families log p~(x | c) this plugin contributes."""

    @hookspec
    def register_embedding_nets(self) -> Iterable[EmbeddingNetSpec]:
        """Yield the summary (embedding) networks, built from JSON options, it contributes."""


CONTRIBUTION_HOOKS = {
    "simulators": "register_simulators",
    "estimators": "register_estimators",
    "diagnostics": "register_diagnostics",
    "targets": "register_targets",
    "embedding_nets": "register_embedding_nets",
}
