"""Hook implementations of sbiplug_ood (no torch at import: the factory is a lazy reference)."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, hookimpl


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="ood",
        factory="sbiplug_ood.diagnostic:OODDiagnostic",
        description="are the observations out of distribution? gradient-norm OOD scores",
        requires=("observations",),
    )
