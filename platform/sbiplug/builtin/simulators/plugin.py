"""Built-in plugin contributing the sbibm benchmark simulators."""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug.hookspecs import hookimpl
from sbiplug.specs import SimulatorSpec

_PACKAGE = "sbiplug.builtin.simulators"


@hookimpl
def register_simulators() -> Iterator[SimulatorSpec]:
    yield SimulatorSpec(
        name="two_moons",
        factory=f"{_PACKAGE}.two_moons:TwoMoons",
        description="sbibm two moons: 2 parameters, bimodal crescent posterior",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="gaussian_linear",
        factory=f"{_PACKAGE}.gaussian_linear:GaussianLinear",
        description="sbibm Gaussian linear: 10-D, Gaussian prior, analytic posterior",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="gaussian_linear_uniform",
        factory=f"{_PACKAGE}.gaussian_linear:GaussianLinearUniform",
        description="sbibm Gaussian linear with a uniform prior: truncated analytic posterior",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="gaussian_mixture",
        factory=f"{_PACKAGE}.gaussian_mixture:GaussianMixture",
        description="sbibm Gaussian mixture: 2-D, two shared-mean components",
        has_reference_posterior=True,
    )
    yield SimulatorSpec(
        name="slcp",
        factory=f"{_PACKAGE}.slcp:SLCP",
        description="sbibm simple likelihood, complex posterior: 5 parameters, 8-D data",
    )
    yield SimulatorSpec(
        name="sir",
        factory=f"{_PACKAGE}.sir:SIR",
        description="sbibm SIR epidemic ODE with binomial observation noise",
    )
    yield SimulatorSpec(
        name="lotka_volterra",
        factory=f"{_PACKAGE}.lotka_volterra:LotkaVolterra",
        description="sbibm Lotka-Volterra predator-prey ODE with log-normal noise",
    )
