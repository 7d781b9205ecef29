"""Hook implementations of sbiplug_trade: TRADE targets and the power-scaling diagnostic."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import DiagnosticSpec, TargetSpec, hookimpl

_PACKAGE = "sbiplug_trade"


@hookimpl
def register_targets() -> Iterator[TargetSpec]:
    yield TargetSpec(
        name="gmm_temperature",
        factory=f"{_PACKAGE}.mixture:GaussianMixtureTemperature",
        description="TRADE 2-D six-component GMM^beta, beta in [0.162, 6.16]; exact sampler",
    )
    yield TargetSpec(
        name="double_well",
        factory=f"{_PACKAGE}.wells:DoubleWell",
        description="2-D double well x1^4 - 4x1^2 + x2^2/2 over temperature; exact sampler",
    )
    yield TargetSpec(
        name="multi_well",
        factory=f"{_PACKAGE}.wells:MultiWell",
        description="d-D product of quartic wells over temperature (2^d modes); exact sampler",
    )
    yield TargetSpec(
        name="phi4",
        factory=f"{_PACKAGE}.lattice:Phi4Lattice",
        description="8x8 lattice phi^4 over hopping kappa in [0.22, 0.32]; HMC ground truth",
    )
    yield TargetSpec(
        name="power_posterior",
        factory=f"{_PACKAGE}.power:make_power_posterior",
        description="posterior with likelihood (or prior) raised to alpha, from a simulator or NLE",
    )


@hookimpl
def register_diagnostics() -> Iterator[DiagnosticSpec]:
    yield DiagnosticSpec(
        name="power_scaling",
        factory=f"{_PACKAGE}.power_scaling:PowerScalingDiagnostic",
        description="posterior mean/sd across likelihood or prior power alpha, by TRADE and by IS",
        requires=("observations",),
    )
