"""sbiplug-fff's and sbiplug-trade's flows implement flowanalysis's ``latent_decoder`` protocol.

The protocol is duck-typed (no plugin imports another), so this needs three plugins and lives
outside each plugin's own tests.
"""

from __future__ import annotations

import pytest
import torch

from sbiplug_fff import FreeFormFlow, ManifoldFreeFormFlow
from sbiplug_flowanalysis import (
    LatentDecoderProvider,
    decoder_jacobian,
    entropic_metrics,
    latent_decoder,
)
from sbiplug_flowanalysis.metrics import log_volume
from sbiplug_trade.flow import ConditionalFlow


def test_free_form_flow_decoder_is_its_sampler():
    torch.manual_seed(0)
    flow = FreeFormFlow(2, (3,), hidden_features=16, theta_scale=torch.tensor([2.0, 0.5]))
    x_o = torch.randn(3)
    assert isinstance(flow, LatentDecoderProvider)
    found = latent_decoder(flow, x_o)
    z = torch.randn(5, 2)
    embedded = flow.embed(x_o.reshape(1, 3)).expand(5, -1)
    expected = flow.from_flow_space(flow.decode(z, embedded)[0])
    torch.testing.assert_close(found.decoder(z), expected)
    metrics = entropic_metrics(found.decoder, found.latent, num_samples=200, seed=0)
    assert metrics.prior_included and metrics.total_correlation >= 0


def test_manifold_free_form_flow_uses_the_latent_tangent_space():
    torch.manual_seed(1)
    flow = ManifoldFreeFormFlow("sphere", (2,), hidden_features=16, latent="uniform")
    found = latent_decoder(flow, torch.zeros(2))
    assert found.tangent_basis is not None
    metrics = entropic_metrics(
        found.decoder, found.latent, num_samples=100, tangent_basis=found.tangent_basis, seed=0
    )
    assert metrics.spectrum.shape == (2,) and metrics.directions.shape == (2, 3)
    assert not metrics.prior_included and metrics.total_correlation >= -1e-9


@pytest.mark.parametrize("latent", ["standard", "temperature"])
def test_trade_flow_decoder_gives_its_density(latent):
    torch.manual_seed(2)
    flow = ConditionalFlow(2, 1.0, latent=latent, transforms=2, hidden_features=(16,))
    with torch.no_grad():  # move the flow away from the identity
        for parameter in flow.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    found = latent_decoder(flow, 2.0)
    z = found.latent.sample((50,))
    x = found.decoder(z)
    log_q = found.latent.log_prob(z).double() - log_volume(decoder_jacobian(found.decoder, z))
    expected = flow.log_prob(x, torch.full((50, 1), 2.0)).detach().double()
    torch.testing.assert_close(log_q, expected, atol=1e-4, rtol=0)
