"""Hook implementations of sbiplug_fff: estimators ``fff``, ``mfff``, four simulators, the
``fif`` summary net and the ``fif_manifold`` diagnostic."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import (
    DiagnosticSpec,
    EmbeddingNetSpec,
    EstimatorSpec,
    SimulatorSpec,
    hookimpl,
)

_PACKAGE = "sbiplug_fff"


@hookimpl
def register_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="fff",
        factory=f"{_PACKAGE}.estimator:make_fff",
        description="free-form flow posterior estimation (one-pass sampling, exact density)",
        density_estimator=f"{_PACKAGE}.estimator:build_fff",
    )
    yield EstimatorSpec(
        name="mfff",
        factory=f"{_PACKAGE}.estimator:make_mfff",
        description="manifold free-form flow posteriors on the sphere, torus or SO(3)",
        density_estimator=f"{_PACKAGE}.estimator:build_mfff",
        manifolds=("sphere", "torus", "so3"),
    )


@hookimpl
def register_simulators() -> Iterator[SimulatorSpec]:
    yield SimulatorSpec(
        name="vmf_direction",
        factory=f"{_PACKAGE}.simulators.vmf_direction:VMFDirection",
        description="direction on S^2 seen through von Mises-Fisher unit vectors; vMF posterior",
        parameter_manifold="sphere",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="torus_angles",
        factory=f"{_PACKAGE}.simulators.torus_angles:TorusAngles",
        description="two angles on T^2 from noisy trigonometry; wrapping posterior, grid reference",
        parameter_manifold="torus",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="so3_orientation",
        factory=f"{_PACKAGE}.simulators.so3_orientation:SO3Orientation",
        description="rotation seen through noisy rotated vectors; importance-sampled reference",
        parameter_manifold="so3",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="waveform",
        factory=f"{_PACKAGE}.simulators.waveform:Waveform",
        description="3 parameters -> noisy 100-point sinusoid (curved manifold); MCMC reference",
        has_reference_posterior=True,
    )


@hookimpl
def register_embedding_nets() -> Iterator[EmbeddingNetSpec]:
    yield EmbeddingNetSpec(
        name="fif",
        factory=f"{_PACKAGE}.summaries:FIFSummary",
        description="free-form injective flow encoder, pretrained on x (summaries + likelihood)",
    )


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="fif_manifold",
        factory=f"{_PACKAGE}.manifold_check:FIFManifoldDiagnostic",
        description="observations' manifold log-density and reconstruction error vs. simulations",
        requires=("observations",),
    )
