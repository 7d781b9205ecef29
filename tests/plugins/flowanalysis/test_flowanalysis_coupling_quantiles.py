"""Quantile couplings: the piecewise-linear map, binned and network conditional quantiles."""

from __future__ import annotations

import torch
from scipy import stats

from sbiplug_flowanalysis.iterative_layers import CouplingLayer, fit_binned_conditioner
from sbiplug_flowanalysis.iterative_quantiles import (
    QuantileCouplingLayer,
    fit_binned_quantiles,
    fit_network_quantiles,
    piecewise_linear,
    quantile_levels,
)


def _bimodal(n: int, seed: int) -> torch.Tensor:
    """u ~ N(0, 1); given u, two modes at +-(1 + u / 2) with sd 0.3: no affine map fixes it."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, generator=g)
    side = 2 * torch.randint(2, (n,), generator=g) - 1
    active = side * (1 + 0.5 * u) + 0.3 * torch.randn(n, generator=g)
    return torch.stack([u, active], dim=-1)


def test_piecewise_linear_inverts_and_its_log_slope_is_the_derivative():
    g = torch.Generator().manual_seed(0)

    def increasing() -> torch.Tensor:
        start = torch.randn(50, 3, 1, generator=g, dtype=torch.float64)
        return start + torch.rand(50, 3, 6, generator=g, dtype=torch.float64).cumsum(-1)

    inputs, outputs = increasing(), increasing()
    y = 4 * torch.randn(50, 3, generator=g, dtype=torch.float64)  # many beyond the outer knots
    image, log_slope = piecewise_linear(y, inputs, outputs)
    back, inverse_log_slope = piecewise_linear(image, outputs, inputs)
    assert torch.allclose(back, y, atol=1e-10)
    assert torch.allclose(inverse_log_slope, -log_slope, atol=1e-10)
    step = 1e-6
    shifted, _ = piecewise_linear(y + step, inputs, outputs)
    # A step that crosses a knot changes the slope: compare where it does not.
    same_piece = (log_slope - piecewise_linear(y + step, inputs, outputs)[1]).abs() < 1e-6
    finite = ((shifted - image) / step).log()
    assert same_piece.float().mean() > 0.95
    assert torch.allclose(finite[same_piece], log_slope[same_piece], atol=1e-6)


def test_an_undamped_binned_layer_gaussianises_a_bimodal_conditional():
    train, test = _bimodal(40000, 0), _bimodal(20000, 1)
    knots = 32
    quantile = QuantileCouplingLayer(
        torch.eye(2),
        1,
        fit_binned_quantiles(train[:, :1], train[:, 1:], bins=40, knots=knots, damping=1.0),
    )
    affine_conditioner, _, _ = fit_binned_conditioner(
        train[:, :1], train[:, 1:], bins=40, damping=1.0
    )
    affine = CouplingLayer(torch.eye(2), 1, affine_conditioner)
    empty = test.new_zeros(len(test), 0)
    quantile_ks = stats.kstest(quantile(test, empty)[0][:, 1].numpy(), "norm").statistic
    affine_ks = stats.kstest(affine(test, empty)[0][:, 1].numpy(), "norm").statistic
    # The map sends each bin's quantiles to the normal ones, so between two knots (mass 1/J)
    # the CDFs differ by less than 1/J; 0.02 covers the quantiles' sampling error (1000
    # rows a bin) and the interpolation between bins.
    assert quantile_ks < 1 / knots + 0.02
    # Matching the mean and std leaves the two modes: far from normal.
    assert affine_ks > 0.1


def test_network_quantiles_recover_a_heteroscedastic_gaussian():
    torch.manual_seed(0)  # the network's initial weights
    g = torch.Generator().manual_seed(0)
    u = torch.randn(20000, 1, generator=g)
    scale = 0.4 * (0.3 * u).exp()
    active = 0.5 * u + scale * torch.randn(20000, 1, generator=g)
    conditioner = fit_network_quantiles(
        u, active, knots=8, num_steps=1500, generator=torch.Generator().manual_seed(1)
    )
    grid = torch.linspace(-1.5, 1.5, 7)[:, None]
    _, normal = quantile_levels(8)
    sd = 0.4 * (0.3 * grid).exp()
    exact = 0.5 * grid + sd * normal  # (7, 8)
    predicted = conditioner.quantiles(grid)[:, 0]
    # Within |u| <= 1.5 sd of the data; the outer levels' sampling error there is ~0.05 sd.
    assert ((predicted - exact) / sd).abs().max() < 0.2
    inputs, outputs = conditioner(grid)
    assert torch.allclose(outputs, torch.lerp(inputs, normal, 0.5))
