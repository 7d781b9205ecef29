"""``npe_total_correlation``: NPE trained on NLL + alpha * manifold total correlation."""

from __future__ import annotations

import pytest
import torch

import sbiplug
from sbiplug.sbi_internals import trained_network
from sbiplug_flowanalysis import (
    TotalCorrelationNPE,
    decoder_jacobian,
    latent_decoder,
    per_sample_total_correlation,
    total_correlation_penalty,
)
from sbiplug_flowanalysis.regularizer import _batch_encoder


@pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")
def test_trains_at_its_defaults_to_the_exact_gaussian_posterior():
    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    theta = simulator.sample_prior(1000, seed=0)
    x = simulator.simulate(theta, seed=1)
    torch.manual_seed(1)
    trainer = sbiplug.make_estimator("npe_total_correlation", prior=simulator.prior)
    assert isinstance(trainer, TotalCorrelationNPE) and trainer.alpha == 0.5
    trainer.append_simulations(theta, x).train(max_num_epochs=30)
    posterior = trainer.build_posterior()
    draws = posterior.sample((2000,), x=x[:1], show_progress_bars=False)
    # exact posterior N(x / 2, 0.05 I); 2000 draws: mean error ~0.005, variance error ~3 %
    torch.testing.assert_close(draws.mean(0), x[0] / 2, atol=0.04, rtol=0)
    torch.testing.assert_close(draws.var(0), torch.full((2,), 0.05), atol=0.015, rtol=0)

    # the penalty is the decoder's per-sample total correlation, row by row
    network = trained_network(trainer)
    penalty = total_correlation_penalty(_batch_encoder(network, x[:3]), theta[:3])
    for row in range(3):
        found = latent_decoder(network, x[row])
        z = found.encoder(theta[row : row + 1]).detach()
        direct = per_sample_total_correlation(decoder_jacobian(found.decoder, z))
        assert float(penalty[row].detach()) == pytest.approx(float(direct[0]), abs=1e-4)
    assert penalty.requires_grad and float(penalty.detach().min()) >= -1e-5


def test_alpha_is_checked():
    with pytest.raises(ValueError, match="alpha"):
        sbiplug.make_estimator("npe_total_correlation", prior=None, alpha=-1.0)
