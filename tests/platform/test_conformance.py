"""Every built-in simulator and estimator passes the sbiplug.testing conformance kit.

Each estimator is trained on a tiny problem (300 simulations of a 2-D gaussian_linear_uniform)
through ``make_estimator``, sampled (``sample`` and, through sbi's ``run_sbc``, ``sample_batched``),
checked for reproducible draws and ``log_prob``, and saved and reloaded.
"""

from __future__ import annotations

import pytest
import torch

import sbiplug
from sbiplug.plugins import BUILTIN_PLUGINS
from sbiplug.testing import check_estimator, check_simulator

BUILTIN_SIMULATORS = (
    "gaussian_linear",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "lotka_volterra",
    "sir",
    "slcp",
    "two_moons",
)

# Short chains keep likelihood- and ratio-based posteriors to seconds: the kit checks shapes,
# seeds and round trips, not accuracy.
SHORT_MCMC = {
    "posterior_parameters": {
        "method": "slice_np_vectorized",
        "num_chains": 4,
        "warmup_steps": 5,
        "thin": 1,
        "init_strategy": "proposal",
    }
}
SMALL_FLOW = {"hidden_features": 16, "num_transforms": 1}

# name: (estimator, estimator options, build_posterior options, sample options)
ESTIMATOR_CASES = {
    "npe-maf": ("npe", {"density_estimator": "maf", **SMALL_FLOW}, None, None),
    "npe-zuko_nsf": ("npe", {"density_estimator": "zuko_nsf", **SMALL_FLOW}, None, None),
    "nle": ("nle", {"density_estimator": "mdn"}, SHORT_MCMC, None),
    "nre": ("nre", {}, SHORT_MCMC, None),
    "fmpe": ("fmpe", {}, None, None),
    "npse": ("npse", {}, None, {"steps": 50}),  # 50 diffusion steps instead of 500
}


def _builtin(kind: str) -> set[str]:
    specs = getattr(sbiplug, kind)()
    return {name for name, spec in specs.items() if spec.plugin in BUILTIN_PLUGINS}


def test_the_lists_cover_every_builtin():
    assert _builtin("simulators") == set(BUILTIN_SIMULATORS)
    assert _builtin("estimators") == {case[0] for case in ESTIMATOR_CASES.values()}


@pytest.mark.parametrize("name", BUILTIN_SIMULATORS)
def test_builtin_simulator_conforms(name):
    report = check_simulator(name, num_simulations=10)
    assert report["name"] == name
    assert report["reference_posterior"] == sbiplug.simulators()[name].has_reference_posterior


@pytest.mark.parametrize("case", ESTIMATOR_CASES, ids=list(ESTIMATOR_CASES))
def test_builtin_estimator_conforms(case):
    name, options, posterior_options, sample_options = ESTIMATOR_CASES[case]
    if posterior_options is not None:
        from sbi.inference.posteriors.posterior_parameters import MCMCPosteriorParameters

        posterior_options = {
            "posterior_parameters": MCMCPosteriorParameters(
                **posterior_options["posterior_parameters"]
            )
        }
    report = check_estimator(
        name,
        estimator_options=options,
        posterior_options=posterior_options,
        sample_options=sample_options,
        num_samples=8 if posterior_options else 20,
    )
    samples = 8 if posterior_options else 20
    assert report["sample_shape"] == (samples, 2)
    assert report["sbc_ranks_shape"] == (3, 2)
    assert report["save_load_checked"] is True
    if sbiplug.estimators()[name].has_density:
        assert report["log_prob_mean"] is not None and torch.isfinite(
            torch.tensor(report["log_prob_mean"])
        )
