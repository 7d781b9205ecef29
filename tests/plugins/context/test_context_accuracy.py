"""NPE with a set encoder at the plugin's defaults: one network, right at both ends of its range."""

from __future__ import annotations

import pytest
import torch

import sbiplug
from sbiplug.sbi_internals import allow_missing_trials
from sbiplug_context import set_estimator_options, simulate_with_trials


@pytest.mark.filterwarnings("ignore:Found .* NaN simulations")
def test_set_npe_at_defaults_matches_the_exact_posterior_at_both_ends_of_the_range():
    simulator = sbiplug.make_simulator("gaussian_sets", min_trials=5, max_trials=20)
    theta = simulator.sample_prior(5000, seed=0)
    x = simulator.simulate(theta, seed=1)
    options = set_estimator_options("npe", simulator)
    spec = options.pop("embedding_net")
    torch.manual_seed(0)
    options["embedding_net"] = sbiplug.make_embedding_net(spec["name"], **spec["options"])
    trainer = sbiplug.make_estimator(
        "npe", prior=simulator.prior, show_progress_bars=False, **options
    )
    trainer.append_simulations(theta, x, exclude_invalid_x=False).train()
    posterior = allow_missing_trials(trainer.build_posterior())
    torch.manual_seed(1)
    for k in (5, 20):
        x_o = simulate_with_trials(simulator, simulator.sample_prior(10, seed=k), k, seed=k + 1)
        errors, widths = [], []
        for row in x_o:
            draws = posterior.sample((1000,), x=row.unsqueeze(0), show_progress_bars=False)
            mean, cov = simulator.posterior_moments(row)
            sd = cov.diagonal().sqrt().float()
            errors.append(((draws.mean(0) - mean.float()) / sd).abs().mean())
            widths.append((draws.std(0) / sd).mean())
        # a fit that stalls (seen with sbi's nflows MAF here) is 1-2.5 sd off and 1.8-2.9x wide;
        # the draws' own error is 1/sqrt(1000) sd
        assert float(torch.stack(errors).mean()) < 0.5, k
        assert 0.7 < float(torch.stack(widths).mean()) < 1.6, k
