"""Decoders z -> theta | x_o of sbi NPE flows (nflows and zuko), the protocol, and clear errors."""

from __future__ import annotations

import pytest
import torch
from sbi.inference import NLE, NPE
from sbi.utils import BoxUniform
from torch.distributions import Independent, Normal

from sbiplug_flowanalysis import (
    LatentDecoderProvider,
    NoDecoderError,
    decoder_jacobian,
    entropic_metrics,
    latent_decoder,
)
from sbiplug_flowanalysis.metrics import log_volume

PRIOR = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))


def _simulations(n: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    theta = 4 * torch.rand(n, 2, generator=generator) - 2
    return theta, theta + 0.3 * torch.randn(n, 2, generator=generator)


@pytest.fixture(scope="module", params=["maf", "zuko_nsf"])
def trained(request):
    torch.manual_seed(0)
    theta, x = _simulations()
    trainer = NPE(PRIOR, density_estimator=request.param, show_progress_bars=False)
    trainer.append_simulations(theta, x).train(max_num_epochs=3)
    return trainer, x[0]


@pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")
def test_decoder_is_the_flow_sampler_with_its_density(trained):
    trainer, x_o = trained
    posterior = trainer.build_posterior()
    network = posterior.posterior_estimator
    found = latent_decoder(posterior, x_o)
    assert latent_decoder(trainer, x_o).kind == found.kind in ("nflows", "zuko")
    z = found.latent.sample((64,))
    theta = found.decoder(z)
    # the encoder inverts the decoder, and the change of variables gives the flow's log q
    torch.testing.assert_close(found.encoder(theta), z, atol=1e-4, rtol=0)
    jacobian = decoder_jacobian(found.decoder, z)
    log_q = found.latent.log_prob(z).double() - log_volume(jacobian)
    expected = network.log_prob(theta.unsqueeze(0), x_o.unsqueeze(0))[0]
    torch.testing.assert_close(log_q.float(), expected.detach(), atol=2e-3, rtol=0)
    # Monte Carlo over the prior latent and over encoded posterior draws agree
    prior_run = entropic_metrics(found.decoder, found.latent, num_samples=3000, seed=0)
    draws = network.sample((3000,), x_o.unsqueeze(0))[:, 0].detach()
    data_run = entropic_metrics(found.decoder, found.latent, z=found.encoder(draws).detach())
    assert (
        abs(prior_run.entropy - data_run.entropy)
        < 5 * (prior_run.entropy_se + data_run.entropy_se) + 0.02
    )
    assert prior_run.prior_included and float(prior_run.prior_entropies[0]) == pytest.approx(
        1.4189385
    )


def test_estimators_without_a_decoder_raise_a_clear_error():
    theta, x = _simulations(60)
    nle = NLE(PRIOR, show_progress_bars=False).append_simulations(theta, x)
    with pytest.raises(ValueError, match="train"):
        latent_decoder(nle, x[0])
    with pytest.raises(NoDecoderError, match=r"no decoder z -> theta.*MCMC"):
        latent_decoder(torch.nn.Linear(2, 2), x[0])
    with pytest.raises(NoDecoderError, match="CMPE"):
        latent_decoder(object(), x[0])


class _Provider:
    """A user's flow implementing the protocol with a fixed linear decoder."""

    def latent_decoder(self, condition):
        matrix = torch.tensor([[2.0, 0.0], [0.0, 0.5]]) * (1 + float(condition.sum()))
        normal = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
        return (lambda z: z @ matrix.T), normal


def test_protocol_objects_are_used_directly():
    provider = _Provider()
    assert isinstance(provider, LatentDecoderProvider)
    found = latent_decoder(provider, torch.zeros(2))
    metrics = entropic_metrics(found.decoder, found.latent, num_samples=8)
    torch.testing.assert_close(
        metrics.spectrum, 1.4189385 + torch.tensor([2.0, 0.5], dtype=torch.float64).log()
    )

    class Broken:
        def latent_decoder(self, condition):
            return "nothing"

    with pytest.raises(TypeError, match="must return"):
        latent_decoder(Broken(), torch.zeros(2))
