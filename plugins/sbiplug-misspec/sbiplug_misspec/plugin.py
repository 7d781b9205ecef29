"""Hook implementations of sbiplug_misspec: lazy specs only (no torch at import)."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, EstimatorSpec, SimulatorSpec, hookimpl

_PACKAGE = "sbiplug_misspec"


@hookimpl
def register_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="npe_mmd",
        factory=f"{_PACKAGE}.estimator:NPEMMD",
        description="NPE with an MMD-to-N(0,I) regularised summary net (misspecification-aware)",
    )


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="misspecification",
        factory=f"{_PACKAGE}.diagnostic:MisspecificationDiagnostic",
        description="summary-space root-MMD test of the observations against the simulator",
        requires=("observations", "embedding_net"),
        automatic=True,
    )


@hookimpl
def register_simulators() -> Iterator[SimulatorSpec]:
    yield SimulatorSpec(
        name="gaussian_means",
        factory=f"{_PACKAGE}.simulator:GaussianMeans",
        description="2-D Gaussian means, n_obs iid draws; knobs for misspecified data",
        has_reference_posterior=True,
    )
