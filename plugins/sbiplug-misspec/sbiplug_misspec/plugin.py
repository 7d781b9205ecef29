"""Hook implementations of sbiplug_misspec: lazy specs only (no torch at import)."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, EmbeddingNetSpec, EstimatorSpec, SimulatorSpec, hookimpl

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


@hookimpl
def register_embedding_nets() -> Iterator[EmbeddingNetSpec]:
    yield EmbeddingNetSpec(
        name="deepset",
        factory=f"{_PACKAGE}.networks:DeepSetEmbedding",
        description="DeepSet for sets (n, d) with a linear output and a set-mean skip",
    )
    yield EmbeddingNetSpec(
        name="mlp_linear",
        factory=f"{_PACKAGE}.networks:MLPEmbedding",
        description="MLP summary network for vectors, linear output (summaries can be normal)",
    )
