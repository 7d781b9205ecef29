"""The conditional von Mises(-Fisher) mixture latent of M-FFF: normalised, sampled, trained."""

from __future__ import annotations

import math

import pytest
import torch

from sbiplug_fff import fit_flow
from sbiplug_fff.distributions import ProductVonMises
from sbiplug_fff.flow import ManifoldFreeFormFlow
from sbiplug_fff.latents import ConditionalMixtureLatent, resolve_latent
from sbiplug_fff.manifolds import Torus, so3, sphere, torus


def _random_mixture(manifold, condition_features: int = 3) -> ConditionalMixtureLatent:
    torch.manual_seed(0)
    latent = ConditionalMixtureLatent(manifold, condition_features, components=3)
    with torch.no_grad():  # a condition-dependent mixture with kappa ~ 0.1-20
        for parameter in latent.parameters():
            parameter.add_(0.4 * torch.randn_like(parameter))
    return latent


def _torus_grid(size: int = 400) -> tuple[torch.Tensor, float]:
    centres = -math.pi + (torch.arange(size) + 0.5) * (2 * math.pi / size)
    angles = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    return Torus.from_angles(angles), (2 * math.pi / size) ** 2


def test_mixture_is_normalised_on_the_torus_and_the_sphere() -> None:
    # torus: midpoint rule on a 400^2 grid (error << 1e-3 for these smooth densities)
    latent = _random_mixture(torus(2))
    points, cell = _torus_grid()
    for condition in torch.randn(3, 3):
        with torch.no_grad():
            log_density = latent.log_prob(points, condition.expand(len(points), -1))
        assert abs(float(log_density.double().exp().sum()) * cell - 1) < 1e-3
    # sphere: Monte Carlo under the uniform distribution, 4 standard errors
    latent = _random_mixture(sphere(2))
    points = sphere(2).sample_uniform((100_000,))
    for condition in torch.randn(3, 3):
        with torch.no_grad():
            log_density = latent.log_prob(points, condition.expand(len(points), -1))
        values = log_density.double().exp() * 4 * math.pi
        assert abs(float(values.mean()) - 1) < 4 * float(values.std()) / math.sqrt(len(values))


def test_one_component_torus_mixture_is_the_product_of_von_mises() -> None:
    latent = ConditionalMixtureLatent(torus(2), 0, components=1, initial_concentration=2.5)
    empty = torch.zeros(5, 0)
    _, locations, kappa = latent.parameters_at(empty)
    reference = ProductVonMises(torus(2).to_angles(locations[0, 0]), kappa[0, 0])
    points = torus(2).sample_uniform((5,))
    torch.testing.assert_close(latent.log_prob(points, empty), reference.log_prob(points))


@pytest.mark.parametrize("manifold", [torus(2), sphere(2)], ids=repr)
def test_mixture_sampler_matches_its_density(manifold) -> None:
    latent = _random_mixture(manifold)
    condition = torch.randn(1, 3)
    torch.manual_seed(1)
    draws = latent.sample(condition.expand(40_000, -1))
    assert manifold.contains(draws, atol=1e-5).all()
    # E[z] by the sampler against E[z] under the density (importance weights on uniform points)
    points = manifold.sample_uniform((200_000,))
    with torch.no_grad():
        weights = latent.log_prob(points, condition.expand(len(points), -1)).exp()
    expected = (weights.unsqueeze(-1) * points).sum(0) / weights.sum()
    torch.testing.assert_close(draws.mean(0), expected, atol=0.03, rtol=0)


def test_mixture_latent_receives_gradients_and_the_density_stays_exact() -> None:
    torch.manual_seed(2)
    flow = ManifoldFreeFormFlow(torus(2), (3,), hidden_features=32, latent="mixture")
    theta, condition = torus(2).sample_uniform((64,)), torch.randn(64, 3)
    flow.train()
    flow.loss(theta, condition).mean().backward()
    last = flow.mixture_latent.net[-1]
    for grad in (last.weight.grad, last.bias.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # log q = log p_Z(f(theta) | x) - log|det| holds for the learned latent: normalised on T^2
    optimizer = torch.optim.SGD(flow.parameters(), lr=1e-2)
    optimizer.step()
    flow.eval()
    points, cell = _torus_grid(200)
    with torch.no_grad():
        density = flow.log_prob(points, condition[:1].expand(len(points), -1))[0].exp()
    assert abs(float(density.double().sum()) * cell - 1) < 0.01


def test_fitted_flow_with_mixture_latent_is_normalised() -> None:
    # an unconditional fit (learnable mixture) to a wrapped von Mises pair across +-pi
    torch.manual_seed(3)
    data = ProductVonMises(torch.tensor([math.pi, 0.5]), torch.tensor([8.0, 3.0])).sample((2000,))
    flow = fit_flow(data, "torus", num_steps=150, hidden_features=32, latent="mixture")
    points, cell = _torus_grid(200)
    with torch.no_grad():
        density = flow.log_prob(points).exp()
    assert abs(float(density.double().sum()) * cell - 1) < 0.05
    # the fit puts the first angle's mass across the seam, around pi
    draws = Torus(2).to_angles(flow.sample((2000,)))
    assert float(draws[:, 0].cos().mean()) < -0.6


def test_latent_names_and_manifolds() -> None:
    assert resolve_latent("auto", torus(2)) == "mixture"
    assert resolve_latent("auto", so3()) == "uniform"
    with pytest.raises(ValueError, match="supported latents: auto, mixture, uniform"):
        resolve_latent("gaussian", sphere(2))
    with pytest.raises(ValueError, match="not on so3"):
        ManifoldFreeFormFlow(so3(), (2,), latent="mixture")
