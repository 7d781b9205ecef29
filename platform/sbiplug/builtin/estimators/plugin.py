"""Built-in plugin contributing sbi's neural estimators."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug.hookspecs import hookimpl
from sbiplug.specs import EmbeddingNetSpec, EstimatorSpec

_PACKAGE = "sbiplug.builtin.estimators"


@hookimpl
def register_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="npe",
        factory=f"{_PACKAGE}.npe:make_npe",
        description="sbi neural posterior estimation (maf, nsf, mdn, zuko_*)",
        density_estimator=f"{_PACKAGE}.npe:build_density_estimator",
    )
    yield EstimatorSpec(
        name="nle",
        factory=f"{_PACKAGE}.nle:make_nle",
        description="sbi neural likelihood estimation; posterior by MCMC (chains kept)",
    )
    yield EstimatorSpec(
        name="nre",
        factory=f"{_PACKAGE}.nre:make_nre",
        description="sbi neural ratio estimation; posterior by MCMC (chains kept)",
    )
    yield EstimatorSpec(
        name="fmpe",
        factory=f"{_PACKAGE}.vector_field:make_fmpe",
        description="sbi flow matching posterior estimation (ODE sampler)",
    )
    yield EstimatorSpec(
        name="npse",
        factory=f"{_PACKAGE}.vector_field:make_npse",
        description="sbi neural posterior score estimation (diffusion)",
    )


@hookimpl
def register_embedding_nets() -> Iterator[EmbeddingNetSpec]:
    module = f"{_PACKAGE}.embedding_nets"
    yield EmbeddingNetSpec(
        name="fc", factory=f"{module}:make_fc", description="sbi FCEmbedding (MLP, vector x)"
    )
    yield EmbeddingNetSpec(
        name="cnn", factory=f"{module}:make_cnn", description="sbi CNNEmbedding (1-D/2-D x)"
    )
    yield EmbeddingNetSpec(
        name="permutation_invariant",
        factory=f"{module}:make_permutation_invariant",
        description="sbi PermutationInvariantEmbedding (DeepSet over i.i.d. trials)",
    )
