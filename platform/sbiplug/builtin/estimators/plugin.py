"""Built-in plugin contributing sbi's neural estimators."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug.hookspecs import hookimpl
from sbiplug.specs import EstimatorSpec

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
