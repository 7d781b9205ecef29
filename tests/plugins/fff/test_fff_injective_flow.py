"""FreeFormInjectiveFlow: exact manifold density, learned manifolds, conditioning, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from sbiplug_fff import FreeFormInjectiveFlow, fit_injective_flow

D, d = 4, 2


def _make_linear(flow: FreeFormInjectiveFlow, weight: torch.Tensor) -> None:
    """Turn the residual nets into linear maps: decoder W z, encoder W^+ y (z-scored units)."""
    with torch.no_grad():
        for net, skip in ((flow.decoder, weight), (flow.encoder, torch.linalg.pinv(weight))):
            net.skip.weight.copy_(skip)
            net.output_layer[1].weight.zero_()
            net.output_layer[1].bias.zero_()


def test_log_prob_of_a_linear_injective_map_matches_the_closed_form():
    torch.manual_seed(0)
    weight = torch.randn(D, d)
    shift, scale = torch.randn(D), torch.rand(D) + 0.5
    flow = FreeFormInjectiveFlow(D, d, hidden_features=8, shift=shift, scale=scale).eval()
    _make_linear(flow, weight)
    z = torch.randn(6, d)
    x = shift + scale * (z @ weight.T)  # on the manifold
    torch.testing.assert_close(flow.encode(x), z, atol=1e-5, rtol=0)
    assert float(flow.reconstruction_error(x).max()) < 1e-8
    # the pushforward of N(0, I_d) by x = shift + S W z has density N(z) / sqrt(det(W^T S^2 W))
    scaled = (scale[:, None] * weight).double()
    normal = -0.5 * z.double().pow(2).sum(-1) - 0.5 * d * math.log(2 * math.pi)
    expected = normal - 0.5 * torch.logdet(scaled.T @ scaled)
    log_prob = flow.log_prob(x)
    assert log_prob.dtype == torch.float64
    torch.testing.assert_close(log_prob, expected, atol=1e-5, rtol=0)


def test_fit_learns_the_sine_manifold():
    """The authors' toy: a 1-D sine curve in R^2 seen with noise 0.1; d = 1."""
    torch.manual_seed(0)
    t = torch.rand(2000, 1) * 4 - 2
    x = torch.cat([t, torch.sin(t)], dim=1)
    flow = fit_injective_flow(
        x + 0.05 * torch.randn_like(x),
        1,
        num_steps=400,
        batch_size=128,
        hidden_features=32,
        noise=0.1,
    )
    draws = flow.sample((500,))
    distance = (draws[:, 1] - torch.sin(draws[:, 0])).abs()
    # bound: the data's own noise is 0.05 per coordinate; the manifold sits well inside it
    assert float(distance.median()) < 0.05
    # the data cover t in [-2, 2]; Gaussian-latent tails stretch a little past the ends
    assert float(draws[:, 0].abs().quantile(0.9)) < 2.2
    inside = torch.cat([t[:200], torch.sin(t[:200])], 1)
    assert float(flow.reconstruction_error(inside).median()) < 0.05**2
    off = inside + torch.tensor([0.0, 1.0])
    assert float(flow.reconstruction_error(off).median()) > 0.25  # ~1 off the curve
    # a density on the manifold: integrates to about 1 along the curve
    grid = torch.linspace(-2.5, 2.5, 2001)[:, None]
    points = torch.cat([grid, torch.sin(grid)], 1)
    arc = (1 + torch.cos(grid[:, 0]) ** 2).sqrt() * (5 / 2000)
    mass = float((flow.log_prob(points).exp() * arc.double()).sum())
    assert 0.8 < mass < 1.2


def test_conditional_flow_moves_its_manifold_with_the_condition():
    torch.manual_seed(1)
    c = torch.rand(2000, 1) * 2 - 1
    s = torch.randn(2000, 1)
    x = torch.cat([s, s + 2 * c], dim=1)  # a line whose offset is the condition
    flow = fit_injective_flow(x, 1, c, num_steps=250, batch_size=128, hidden_features=32)
    for value in (-0.8, 0.8):
        draws = flow.sample((300,), torch.tensor([[value]]))[:, 0]
        offset = draws[:, 1] - draws[:, 0]
        assert abs(float(offset.median()) - 2 * value) < 0.15
    assert flow.log_prob(x[:5], c[:5]).shape == (5,)
    with pytest.raises(ValueError, match="conditional"):
        flow.log_prob(x[:5])


def test_bad_input_is_an_error_before_training():
    x = torch.randn(50, 3)
    with pytest.raises(ValueError, match=r"latent_features \(d = 3\) must be smaller .*D = 3"):
        fit_injective_flow(x, 3)
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        fit_injective_flow(x.reshape(50, 3, 1), 1)
    bad = x.clone()
    bad[7, 1] = float("nan")
    with pytest.raises(ValueError, match=r"1 rows with NaN .*row 7"):
        fit_injective_flow(bad, 1)
    with pytest.raises(ValueError, match="must be smaller"):
        FreeFormInjectiveFlow(3, 4)
    flow = FreeFormInjectiveFlow(3, 1)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\)"):
        flow.log_prob(torch.randn(4, 2))
