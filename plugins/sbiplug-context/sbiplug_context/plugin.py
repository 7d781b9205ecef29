"""Hook implementations of sbiplug_context (no torch at import: factories are lazy references)."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, EmbeddingNetSpec, SimulatorSpec, hookimpl

_PACKAGE = "sbiplug_context"


@hookimpl
def register_embedding_nets() -> Iterator[EmbeddingNetSpec]:
    yield EmbeddingNetSpec(
        name="set_deepsets",
        factory=f"{_PACKAGE}.encoders:DeepSetEncoder",
        description="DeepSets over NaN-padded sets of varying size (mean/sum pooling + log n)",
    )
    yield EmbeddingNetSpec(
        name="set_transformer",
        factory=f"{_PACKAGE}.encoders:SetTransformerEncoder",
        description="Set Transformer (ISAB + PMA) over NaN-padded sets of varying size",
    )


@hookimpl
def register_simulators() -> Iterator[SimulatorSpec]:
    yield SimulatorSpec(
        name="gaussian_sets",
        factory=f"{_PACKAGE}.simulators:GaussianSets",
        description="Gaussian means from a varying number of i.i.d. trials (NaN-padded sets)",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="mixed_effects",
        factory=f"{_PACKAGE}.simulators:MixedEffects",
        description="random-intercept regression, varying number of trials, exact posterior",
        has_reference_posterior=True,
    )


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="environment_extrapolation",
        factory=f"{_PACKAGE}.diagnostic:EnvironmentExtrapolation",
        description="flags observations whose set embedding lies outside the simulated ones",
        requires=("observations", "set_encoder"),
        automatic=True,
    )
