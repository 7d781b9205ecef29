"""Hook implementations (no torch at import: factories are lazy references)."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, hookimpl


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield from ()
