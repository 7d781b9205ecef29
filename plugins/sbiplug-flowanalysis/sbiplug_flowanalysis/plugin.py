"""Hook implementations (no torch at import: factories are lazy references)."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, EstimatorSpec, hookimpl


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="entropic_metrics",
        factory="sbiplug_flowanalysis.diagnostic:EntropicMetricsDiagnostic",
        description="how many effective dimensions has the flow posterior? entropy spectrum, "
        "MPMI and total correlation of its decoder",
        requires=("observations",),
    )
    yield DiagnosticSpec(
        name="volume_preservation",
        factory="sbiplug_flowanalysis.volume:VolumePreservationDiagnostic",
        description="is the posterior flow (nearly) volume-preserving? spread of log|det J| "
        "and the -1/2 chi^2_D density-value law",
        requires=("observations",),
    )


@hookimpl
def register_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="npe_total_correlation",
        factory="sbiplug_flowanalysis.regularizer:make_total_correlation_npe",
        description="NPE whose flow is trained with NLL + alpha * manifold total correlation "
        "(disentangled latents)",
    )
    yield EstimatorSpec(
        name="iterative_coupling",
        factory="sbiplug_flowanalysis.iterative_npe:make_iterative_coupling",
        description="NPE with a coupling flow built layer by layer (constructive universality "
        "proof; no end-to-end training)",
        density_estimator="sbiplug_flowanalysis.iterative_npe:build_iterative_coupling",
    )
