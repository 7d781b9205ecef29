"""sbiplug_trade: TRADE, one normalizing flow for a family of distributions over a condition.

S. Wahl, A. Rousselot, F. Draxler, H. Schopmans, U. Köthe, *TRADE: Transfer of Distributions
between External Conditions with Normalizing Flows*, arXiv 2410.19492.

The names below are imported lazily so that loading the plugin (``sbiplug_trade.plugin``) does
not import torch.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

__all__ = [
    "TRADE",
    "ConditionalFlow",
    "DoubleWell",
    "GaussianMixtureTemperature",
    "MultiWell",
    "Phi4Lattice",
    "PowerPosterior",
    "PowerScalingDiagnostic",
    "TargetNotDifferentiableError",
    "check_differentiable",
    "effective_sample_size",
    "hmc_sample",
    "make_power_posterior",
    "mode_mass_error",
    "mode_masses",
    "negative_log_likelihood",
    "phi4_observables",
    "population_effective_sample_size",
    "power_scaling_sensitivity",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TRADE": ".trade",
        "ConditionalFlow": ".flow",
        "DoubleWell": ".wells",
        "GaussianMixtureTemperature": ".mixture",
        "MultiWell": ".wells",
        "Phi4Lattice": ".lattice",
        "PowerPosterior": ".power",
        "PowerScalingDiagnostic": ".power_scaling",
        "TargetNotDifferentiableError": ".checks",
        "check_differentiable": ".checks",
        "effective_sample_size": ".metrics",
        "hmc_sample": ".mcmc",
        "make_power_posterior": ".power",
        "mode_mass_error": ".metrics",
        "mode_masses": ".metrics",
        "negative_log_likelihood": ".metrics",
        "phi4_observables": ".lattice",
        "population_effective_sample_size": ".metrics",
        "power_scaling_sensitivity": ".power_scaling",
    },
)
