"""NPE through ``make_estimator`` recovers the analytic posterior of a linear Gaussian."""

from __future__ import annotations

import torch

import sbiplug
from sbiplug.toolkit import seed_all


def test_npe_reaches_c2st_bound_on_gaussian_linear():
    """C2ST of NPE draws against exact posterior draws stays below 0.6.

    A perfect posterior gives 0.5; with 1,000 draws per side a 5-fold classifier's accuracy
    scatters by about 0.02, so 0.6 leaves room for noise but fails a posterior that is off by
    a fraction of its width (a mean shift of 0.3 posterior sd already gives about 0.56 per dim).
    """
    from sbi.utils.metrics import c2st

    seed_all(0)
    simulator = sbiplug.make_simulator("gaussian_linear", dim=3)
    theta = simulator.sample_prior(3_000, seed=0)
    x = simulator.simulate(theta, seed=1)
    trainer = sbiplug.make_estimator(
        "npe", simulator.prior, density_estimator="maf", show_progress_bars=False
    )
    trainer.append_simulations(theta, x).train(max_num_epochs=60, training_batch_size=100)
    posterior = trainer.build_posterior()

    observations = simulator.simulate(simulator.sample_prior(2, seed=2), seed=3)
    for index, x_o in enumerate(observations):
        exact = simulator.reference_posterior(x_o, 1_000, seed=10 + index)
        seed_all(20 + index)
        approximate = posterior.sample((1_000,), x=x_o, show_progress_bars=False)
        score = float(c2st(exact, approximate, seed=index))
        assert score < 0.6, f"observation {index}: C2ST {score:.3f} >= 0.6"
        shifted = exact + 1.0 * torch.tensor(0.05).sqrt()  # one posterior sd off
        assert float(c2st(exact, shifted, seed=index)) > 0.65  # the test can tell
