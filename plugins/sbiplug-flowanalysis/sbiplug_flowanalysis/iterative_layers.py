"""The layers of the constructive coupling flow: rotation + standardising affine coupling.

Draxler, Wahl, Schnörr, Köthe, *On the Universality of Volume-Preserving and Coupling-Based
Normalizing Flows*, ICML 2024 (arXiv 2402.06578), Section 4. A layer rotates z by Q, splits it
into a passive half z_p and an active half z_a and standardises the active half conditionally on
u = (z_p, x): z_a <- s(u) z_a + t(u) with s = 1/sigma(u), t = -mu(u)/sigma(u), damped towards the
identity (s <- 1 + eta (s - 1), t <- eta t). The Gaussian-latent NLL then falls by
``coupling_gain(mu, sigma)`` = E[1/2 (mu^2 + sigma^2 - 1) - log sigma] >= 0 per active dimension
(undamped; a damped step keeps at least the fraction eta of it, the new loss being convex in
eta). mu and sigma come from equal-count bins of a 1-D passive coordinate with cubic
interpolation between bin centres (the paper's 2-D construction, :class:`BinnedConditioner`) or,
for a wider u (conditional flows, D > 3), from a small heteroscedastic regression network fitted
on this layer alone (:class:`NetworkConditioner`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "BinnedConditioner",
    "CouplingLayer",
    "LinearGaussianLayer",
    "NetworkConditioner",
    "RotatedCoupling",
    "coupling_gain",
    "fit_binned_conditioner",
    "fit_by_minibatches",
    "fit_linear_gaussian",
    "fit_network_conditioner",
]

SIGMA_FLOOR = 1e-3
ConditionerT = TypeVar("ConditionerT", bound=nn.Module)


def coupling_gain(mu: Tensor, sigma: Tensor) -> Tensor:
    """ΔL = 1/2 (mu^2 + sigma^2 - 1) - log sigma summed over the last (active) axis, >= 0.

    Arguments:
        mu, sigma: Conditional mean and std of the active half, shape ``(..., A)``.

    Returns:
        The NLL decrease of the exact standardisation, shape ``(...)``.
    """
    return (0.5 * (mu.pow(2) + sigma.pow(2) - 1) - sigma.log()).sum(-1)


def _damped(mu: Tensor, sigma: Tensor, damping: float) -> tuple[Tensor, Tensor]:
    """log s and t of the damped standardisation, shapes as ``mu``."""
    scale = 1 + damping * (1 / sigma - 1)
    return scale.log(), -damping * mu / sigma


class BinnedConditioner(nn.Module):
    """log s(u), t(u) of a scalar u, interpolated from values at bin centres.

    Arguments:
        knots: Bin centres ``(K,)``, increasing.
        edges: Inner bin edges ``(K - 1,)`` (for ``interpolation="constant"``).
        log_scale, shift: Values at the knots, ``(K, A)``.
        interpolation: ``"cubic"`` (a not-a-knot cubic spline; constant outside the knots) or
            ``"constant"`` (the value of u's bin).
    """

    def __init__(
        self, knots: Tensor, edges: Tensor, log_scale: Tensor, shift: Tensor, interpolation: str
    ):
        super().__init__()
        self.interpolation = interpolation
        values = torch.cat([log_scale, shift], dim=-1)  # (K, 2A)
        if interpolation == "cubic" and len(knots) >= 4:
            from scipy.interpolate import CubicSpline

            spline = CubicSpline(knots.double().numpy(), values.double().numpy(), axis=0)
            coefficients = torch.from_numpy(np.ascontiguousarray(spline.c)).float()
        else:  # constant pieces (also for too few knots to fit a cubic)
            coefficients = torch.zeros(4, max(len(knots) - 1, 1), values.shape[-1])
            coefficients[3, : len(knots) - 1] = values[:-1]
        self.register_buffer("knots", knots.float())
        self.register_buffer("edges", edges.float())
        self.register_buffer("values", values.float())
        self.register_buffer("coefficients", coefficients)
        # Flag buffers let a flow rebuild its layers from a state_dict alone.
        self.register_buffer("cubic", torch.tensor(int(interpolation == "cubic")))

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """log s and t for u ``(N, 1)``: two tensors ``(N, A)``."""
        u = u[:, 0]
        if self.interpolation == "constant" or len(self.knots) < 4:
            values = self.values[torch.searchsorted(self.edges, u.contiguous(), right=True)]
        else:
            inside = u.clamp(self.knots[0], self.knots[-1]).contiguous()
            index = (torch.searchsorted(self.knots, inside, right=True) - 1).clamp(
                0, len(self.knots) - 2
            )
            dx = (inside - self.knots[index])[:, None]
            c = self.coefficients[:, index]  # (4, N, 2A)
            values = ((c[0] * dx + c[1]) * dx + c[2]) * dx + c[3]
        log_scale, shift = values.chunk(2, dim=-1)
        return log_scale, shift


def fit_binned_conditioner(
    u: Tensor, active: Tensor, *, bins: int = 64, damping: float = 0.5, interpolation: str = "cubic"
) -> tuple[BinnedConditioner, Tensor, Tensor]:
    """Per-bin mean and std of ``active`` in equal-count bins of ``u``.

    Arguments:
        u: The passive coordinate ``(n, 1)``.
        active: The active half ``(n, A)``.
        bins: Number of equal-count bins (64 in the paper).
        damping: eta in (0, 1].
        interpolation: ``"cubic"`` or ``"constant"``.

    Returns:
        The conditioner and the bins' mu and sigma ``(K, A)`` (population moments).
    """
    order = torch.argsort(u[:, 0])
    groups = [g for g in torch.tensor_split(order, min(bins, len(order))) if len(g)]
    knots = torch.stack([u[g, 0].mean() for g in groups])
    mu = torch.stack([active[g].mean(0) for g in groups])
    sigma = torch.stack([active[g].std(0, correction=0) for g in groups]).clamp_min(SIGMA_FLOOR)
    edges = torch.stack([(u[a[-1], 0] + u[b[0], 0]) / 2 for a, b in itertools.pairwise(groups)])
    # Ties in u can repeat a centre; a spline needs strictly increasing knots.
    knots = knots + torch.arange(len(knots), dtype=knots.dtype) * 1e-7
    log_scale, shift = _damped(mu, sigma, damping)
    return BinnedConditioner(knots, edges, log_scale, shift, interpolation), mu, sigma


class NetworkConditioner(nn.Module):
    """log s(u), t(u) from a network predicting mu(u) and log sigma(u), damped by eta.

    Arguments:
        in_features: Width of u = (z_p, x).
        active: A, the width of the active half.
        hidden_features: Widths of the SiLU network (its last layer starts at zero).
        damping: eta in (0, 1].
    """

    def __init__(
        self, in_features: int, active: int, hidden_features: Sequence[int], damping: float
    ):
        super().__init__()
        widths = [in_features, *hidden_features]
        modules: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(widths):
            modules += [nn.Linear(width_in, width_out), nn.SiLU()]
        last = nn.Linear(widths[-1], 2 * active)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*modules, last)
        self.register_buffer("eta", torch.tensor(float(damping)))

    def moments(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """mu and sigma of the active half given u ``(N, P)``: two tensors ``(N, A)``."""
        mu, log_sigma = self.net(u).chunk(2, dim=-1)
        return mu, log_sigma.clamp(-7.0, 7.0).exp().clamp_min(SIGMA_FLOOR)

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        mu, sigma = self.moments(u)
        return _damped(mu, sigma, float(self.eta))


def fit_network_conditioner(
    u: Tensor,
    active: Tensor,
    *,
    hidden_features: Sequence[int] = (64, 64),
    damping: float = 0.5,
    num_steps: int = 300,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    generator: torch.Generator | None = None,
) -> NetworkConditioner:
    """Fit mu(u), sigma(u) by the Gaussian NLL of ``active`` ``(n, A)`` given u ``(n, P)``.

    Only this layer's small network is trained (no gradient reaches earlier layers).
    """
    conditioner = NetworkConditioner(u.shape[-1], active.shape[-1], hidden_features, damping)

    def loss(index: Tensor) -> Tensor:
        mu, sigma = conditioner.moments(u[index])
        return (0.5 * ((active[index] - mu) / sigma).pow(2) + sigma.log()).sum(-1).mean()

    return fit_by_minibatches(
        conditioner, loss, len(u), num_steps, batch_size, learning_rate, generator
    )


def fit_by_minibatches(
    conditioner: ConditionerT,
    loss: Callable[[Tensor], Tensor],
    num_rows: int,
    num_steps: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator | None,
) -> ConditionerT:
    """Adam with a cosine decay on ``loss(row indices)`` over random batches; then frozen.

    Only this conditioner's parameters are trained (no gradient reaches earlier layers).
    """
    optimizer = torch.optim.Adam(conditioner.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)
    with torch.enable_grad():
        for _ in range(num_steps):
            index = torch.randint(num_rows, (min(batch_size, num_rows),), generator=generator)
            value = loss(index)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            schedule.step()
    conditioner.requires_grad_(False)
    return conditioner


class RotatedCoupling(nn.Module):
    """The part every layer of the constructive flow shares: rotate by Q, split off z_p.

    Arguments:
        rotation: Orthogonal Q ``(D, D)``.
        passive: Number P of passive coordinates after the rotation (the first P).
        conditioner: The layer's map from u = (z_p, x) to its transform's parameters.
    """

    def __init__(self, rotation: Tensor, passive: int, conditioner: nn.Module):
        super().__init__()
        self.register_buffer("rotation", rotation)
        self.register_buffer("passive_count", torch.tensor(int(passive)))
        self.passive = int(passive)
        self.conditioner = conditioner

    def _split(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Passive ``(N, P)`` and active ``(N, D - P)`` parts of z and u = (z_p, c)."""
        passive, active = z[:, : self.passive], z[:, self.passive :]
        return passive, active, torch.cat([passive, c], dim=-1)


class CouplingLayer(RotatedCoupling):
    """z <- rotate by Q, then z_a <- exp(log s(u)) z_a + t(u), u = (z_p, x).

    Arguments:
        rotation: Orthogonal Q ``(D, D)``.
        passive: Number P of passive coordinates after the rotation (the first P).
        conditioner: ``conditioner(u) -> (log s, t)``, each ``(N, D - P)``.
    """

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        passive, active, u = self._split(z @ self.rotation.T, c)
        log_scale, shift = self.conditioner(u)
        out = torch.cat([passive, active * log_scale.exp() + shift], dim=-1)
        return out, log_scale.sum(-1)

    def inverse(self, z: Tensor, c: Tensor) -> Tensor:
        passive, active, u = self._split(z, c)
        log_scale, shift = self.conditioner(u)
        out = torch.cat([passive, (active - shift) * (-log_scale).exp()], dim=-1)
        return out @ self.rotation


class LinearGaussianLayer(nn.Module):
    """z <- L^-1 (z - A c - b): the least-squares conditional Gaussian, whitened.

    The first layer of a conditional flow: it removes the part of theta's dependence on x that
    a linear regression explains (exact for a linear-Gaussian posterior), leaving the couplings
    the nonlinear rest. Its Jacobian is constant.

    Arguments:
        weight: A ``(D, C)``; bias: b ``(D,)``; cholesky: lower-triangular L ``(D, D)``.
    """

    def __init__(self, weight: Tensor, bias: Tensor, cholesky: Tensor):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("cholesky", cholesky)

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        residual = z - c @ self.weight.T - self.bias
        out = torch.linalg.solve_triangular(self.cholesky, residual.T, upper=False).T
        log_det = -torch.diagonal(self.cholesky).log().sum()
        return out, log_det.expand(len(z))

    def inverse(self, z: Tensor, c: Tensor) -> Tensor:
        return z @ self.cholesky.T + c @ self.weight.T + self.bias


def fit_linear_gaussian(z: Tensor, c: Tensor, ridge: float = 1e-3) -> LinearGaussianLayer:
    """Ridge regression of z ``(n, D)`` on c ``(n, C)`` and the Cholesky factor of the residuals."""
    design = torch.cat([c, torch.ones(len(c), 1)], dim=-1).double()
    penalty = ridge * len(c) * torch.eye(design.shape[-1], dtype=torch.float64)
    penalty[-1, -1] = 0
    coefficients = torch.linalg.solve(design.T @ design + penalty, design.T @ z.double())
    residual = z.double() - design @ coefficients
    covariance = residual.T @ residual / len(z)
    covariance = covariance + SIGMA_FLOOR**2 * torch.eye(z.shape[-1], dtype=torch.float64)
    cholesky = torch.linalg.cholesky(covariance)
    weight, bias = coefficients[:-1].T, coefficients[-1]
    return LinearGaussianLayer(weight.float(), bias.float(), cholesky.float())
