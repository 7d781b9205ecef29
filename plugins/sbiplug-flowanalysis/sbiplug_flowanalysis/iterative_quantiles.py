"""Gaussianising coupling layers for the constructive flow: conditional quantiles to N(0, 1).

Draxler, Wahl, Schnörr, Köthe, *On the Universality of Volume-Preserving and Coupling-Based
Normalizing Flows*, ICML 2024 (arXiv 2402.06578): any coupling family that contains the affine
maps inherits the constructive universality of the affine one. This module's family is the
monotone piecewise-linear maps. A layer rotates z, splits it into a passive half z_p and an
active half z_a, and sends each active coordinate through the map that takes J of its conditional
quantiles q_j(u), u = (z_p, x), at levels p_j = (j + 1/2) / J to the standard normal quantiles
g_j = Phi^-1(p_j), extended linearly beyond the outer knots. Damped towards the identity, the
output knots are (1 - eta) q_j + eta g_j. The affine standardisation matches the first two
moments; this map matches J quantiles, so one layer removes skew and multimodality the affine
one cannot, and the greedy fit needs far fewer layers. The conditional quantiles come from
equal-count bins of a scalar passive coordinate (:class:`BinnedQuantileConditioner`) or from a
small quantile-regression network (:class:`NetworkQuantileConditioner`, fitted by the pinball
loss with non-crossing outputs).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sbiplug_flowanalysis.iterative_layers import RotatedCoupling, fit_by_minibatches

__all__ = [
    "BinnedQuantileConditioner",
    "NetworkQuantileConditioner",
    "QuantileCouplingLayer",
    "fit_binned_quantiles",
    "fit_network_quantiles",
    "quantile_levels",
]

SPACING_FLOOR = 1e-4


def quantile_levels(knots: int) -> tuple[Tensor, Tensor]:
    """Levels p_j = (j + 1/2) / J and their standard normal quantiles, each ``(J,)``."""
    levels = (torch.arange(knots, dtype=torch.float64) + 0.5) / knots
    targets = math.sqrt(2) * torch.erfinv(2 * levels - 1)
    return levels.float(), targets.float()


def _increasing(knots: Tensor, floor: Tensor | float) -> Tensor:
    """``knots`` ``(..., J)`` with every gap raised to at least ``floor`` (a strict order)."""
    gaps = (knots[..., 1:] - knots[..., :-1]).clamp_min(floor)
    return torch.cat([knots[..., :1], knots[..., :1] + gaps.cumsum(-1)], dim=-1)


def piecewise_linear(y: Tensor, inputs: Tensor, outputs: Tensor) -> tuple[Tensor, Tensor]:
    """The increasing piecewise-linear map through ``(inputs, outputs)``, extended linearly.

    Arguments:
        y: Points ``(N, A)``.
        inputs, outputs: Strictly increasing knots ``(N, A, J)``, J >= 2.

    Returns:
        The images ``(N, A)`` and log slopes ``(N, A)`` at ``y``.
    """
    index = torch.searchsorted(inputs, y.unsqueeze(-1).contiguous(), right=True) - 1
    index = index.clamp(0, inputs.shape[-1] - 2)
    x0, x1 = inputs.gather(-1, index), inputs.gather(-1, index + 1)
    y0, y1 = outputs.gather(-1, index), outputs.gather(-1, index + 1)
    slope = ((y1 - y0) / (x1 - x0)).squeeze(-1)
    return y0.squeeze(-1) + (y - x0.squeeze(-1)) * slope, slope.log()


class BinnedQuantileConditioner(nn.Module):
    """Input and output knots of each active coordinate given a scalar u.

    Arguments:
        centres: Mean u of each equal-count bin ``(K,)``, increasing.
        quantiles: Each bin's quantiles of the active half ``(K, A, J)``, increasing in J;
            linearly interpolated between the centres (constant outside them), which keeps
            them increasing.
        damping: eta in (0, 1].
    """

    def __init__(self, centres: Tensor, quantiles: Tensor, damping: float):
        super().__init__()
        self.register_buffer("centres", centres.float())
        self.register_buffer("quantiles", quantiles.float())
        self.register_buffer("targets", quantile_levels(quantiles.shape[-1])[1])
        self.register_buffer("eta", torch.tensor(float(damping)))

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Knots ``(N, A, J)`` in and out for u ``(N, 1)``."""
        u = u[:, 0]
        if len(self.centres) == 1:
            inputs = self.quantiles[0].expand(len(u), *self.quantiles.shape[1:])
        else:
            index = (torch.searchsorted(self.centres, u.contiguous(), right=True) - 1).clamp(
                0, len(self.centres) - 2
            )
            left, right = self.centres[index], self.centres[index + 1]
            weight = ((u - left) / (right - left)).clamp(0, 1)[:, None, None]
            inputs = torch.lerp(self.quantiles[index], self.quantiles[index + 1], weight)
        return inputs, torch.lerp(inputs, self.targets, self.eta)


def fit_binned_quantiles(
    u: Tensor, active: Tensor, *, bins: int = 64, knots: int = 16, damping: float = 0.5
) -> BinnedQuantileConditioner:
    """Empirical quantiles of ``active`` ``(n, A)`` in equal-count bins of ``u`` ``(n, 1)``."""
    order = torch.argsort(u[:, 0])
    groups = [g for g in torch.tensor_split(order, min(bins, len(order))) if len(g)]
    centres = torch.stack([u[g, 0].mean() for g in groups])
    centres = centres + torch.arange(len(centres), dtype=centres.dtype) * 1e-7  # ties
    levels, _ = quantile_levels(knots)
    per_bin = []
    for group in groups:
        values = active[group]
        quantiles = torch.quantile(values, levels, dim=0).T  # (A, J)
        floor = SPACING_FLOOR * values.std(0, correction=0).clamp_min(1e-3)[:, None]
        per_bin.append(_increasing(quantiles, floor))
    return BinnedQuantileConditioner(centres, torch.stack(per_bin), damping)


class NetworkQuantileConditioner(nn.Module):
    """Input and output knots from a network predicting conditional quantiles of u ``(N, P)``.

    The network gives the lowest quantile and J - 1 positive gaps (softplus), so the predicted
    quantiles never cross. Its last layer starts so that the knots are the standard normal
    quantiles (the identity map).

    Arguments:
        in_features: Width of u = (z_p, x).
        active: A, the width of the active half.
        knots: J.
        hidden_features: Widths of the SiLU network.
        damping: eta in (0, 1].
    """

    def __init__(
        self,
        in_features: int,
        active: int,
        knots: int,
        hidden_features: Sequence[int],
        damping: float,
    ):
        super().__init__()
        widths = [in_features, *hidden_features]
        modules: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(widths):
            modules += [nn.Linear(width_in, width_out), nn.SiLU()]
        last = nn.Linear(widths[-1], active * knots)
        _, targets = quantile_levels(knots)
        start = torch.cat([targets[:1], _inverse_softplus(targets.diff() - SPACING_FLOOR)])
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.copy_(start.repeat(active))
        self.net = nn.Sequential(*modules, last)
        self.active, self.knots = active, knots
        self.register_buffer("targets", targets)
        self.register_buffer("eta", torch.tensor(float(damping)))

    def quantiles(self, u: Tensor) -> Tensor:
        """Predicted conditional quantiles ``(N, A, J)``, strictly increasing in J."""
        raw = self.net(u).reshape(len(u), self.active, self.knots)
        gaps = F.softplus(raw[..., 1:]) + SPACING_FLOOR
        return torch.cat([raw[..., :1], raw[..., :1] + gaps.cumsum(-1)], dim=-1)

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        inputs = self.quantiles(u)
        return inputs, torch.lerp(inputs, self.targets, self.eta)


def _inverse_softplus(value: Tensor) -> Tensor:
    return value + torch.log(-torch.expm1(-value))


def fit_network_quantiles(
    u: Tensor,
    active: Tensor,
    *,
    knots: int = 16,
    hidden_features: Sequence[int] = (64, 64),
    damping: float = 0.5,
    num_steps: int = 1000,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    generator: torch.Generator | None = None,
) -> NetworkQuantileConditioner:
    """Fit the conditional quantiles of ``active`` ``(n, A)`` given u ``(n, P)``, pinball loss.

    Only this layer's small network is trained (no gradient reaches earlier layers).
    """
    conditioner = NetworkQuantileConditioner(
        u.shape[-1], active.shape[-1], knots, hidden_features, damping
    )
    levels, _ = quantile_levels(knots)

    def pinball(index: Tensor) -> Tensor:
        residual = active[index].unsqueeze(-1) - conditioner.quantiles(u[index])
        return torch.maximum(levels * residual, (levels - 1) * residual).sum((-1, -2)).mean()

    return fit_by_minibatches(
        conditioner, pinball, len(u), num_steps, batch_size, learning_rate, generator
    )


class QuantileCouplingLayer(RotatedCoupling):
    """z <- rotate by Q, then z_a <- T(z_a; u), u = (z_p, x), T through the conditioner's knots.

    Arguments:
        rotation: Orthogonal Q ``(D, D)``.
        passive: Number P of passive coordinates after the rotation (the first P).
        conditioner: ``conditioner(u) -> (inputs, outputs)``, knots ``(N, D - P, J)``.
    """

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        passive, active, u = self._split(z @ self.rotation.T, c)
        inputs, outputs = self.conditioner(u)
        image, log_slope = piecewise_linear(active, inputs, outputs)
        return torch.cat([passive, image], dim=-1), log_slope.sum(-1)

    def inverse(self, z: Tensor, c: Tensor) -> Tensor:
        passive, active, u = self._split(z, c)
        inputs, outputs = self.conditioner(u)
        preimage, _ = piecewise_linear(active, outputs, inputs)
        return torch.cat([passive, preimage], dim=-1) @ self.rotation
