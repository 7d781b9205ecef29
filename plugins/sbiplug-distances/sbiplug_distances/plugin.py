"""Hook implementations of sbiplug_distances (no torch at import: the factory is lazy)."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, hookimpl


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="posterior_modes",
        factory="sbiplug_distances.diagnostic:PosteriorModesDiagnostic",
        description="how many posterior modes, their masses and geodesics (density-based distance)",
        requires=("observations",),
    )
