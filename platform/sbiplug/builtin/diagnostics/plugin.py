"""Built-in plugin contributing the standard posterior diagnostics."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug.hookspecs import hookimpl
from sbiplug.specs import DiagnosticSpec

_PACKAGE = "sbiplug.builtin.diagnostics"


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="sbc",
        factory=f"{_PACKAGE}.sbc:SBC",
        description="simulation-based calibration: ranks, PIT, KS and C2ST checks",
    )
    yield DiagnosticSpec(
        name="tarp",
        factory=f"{_PACKAGE}.tarp:TARP",
        description="tests of accuracy with random points (expected coverage)",
    )
    yield DiagnosticSpec(
        name="coverage",
        factory=f"{_PACKAGE}.coverage:Coverage",
        description="expected coverage of highest-density regions from log-probabilities",
        requires=("log_prob",),
    )
    yield DiagnosticSpec(
        name="c2st_reference",
        factory=f"{_PACKAGE}.c2st_reference:C2STReference",
        description="C2ST between posterior draws and the simulator's reference posterior",
        requires=("observations", "reference_posterior"),
    )
    yield DiagnosticSpec(
        name="ppc",
        factory=f"{_PACKAGE}.ppc:PosteriorPredictiveCheck",
        description="posterior predictive check against the observations",
        requires=("observations",),
    )
