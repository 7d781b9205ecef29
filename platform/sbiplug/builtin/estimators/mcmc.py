"""MCMC defaults for likelihood- and ratio-based estimators (NLE, NRE).

The posterior keeps ``num_chains`` chains: sbi's vectorised slice sampler returns the draws
chain-major, so ``samples.reshape(num_chains, -1, dim)`` recovers the chains for R-hat and ESS
whenever the number of draws is a multiple of ``num_chains``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MCMC_PARAMETERS", "McmcPosteriorMixin"]

DEFAULT_MCMC_PARAMETERS: dict[str, Any] = {
    "method": "slice_np_vectorized",
    "num_chains": 4,
    "warmup_steps": 100,
    "thin": 1,
    "init_strategy": "resample",
}


class McmcPosteriorMixin:
    """``build_posterior`` that samples by multi-chain MCMC unless told otherwise.

    Explicit ``posterior_parameters``, ``mcmc_method`` or ``mcmc_parameters`` go to sbi as given.
    """

    def build_posterior(self, *args: Any, **kwargs: Any) -> Any:
        explicit = ("posterior_parameters", "mcmc_method", "mcmc_parameters")
        if kwargs.get("sample_with", "mcmc") == "mcmc" and not any(k in kwargs for k in explicit):
            from sbi.inference.posteriors.posterior_parameters import MCMCPosteriorParameters

            kwargs["posterior_parameters"] = MCMCPosteriorParameters(**DEFAULT_MCMC_PARAMETERS)
        return super().build_posterior(*args, **kwargs)  # type: ignore[misc]
