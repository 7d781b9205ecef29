"""Gradient-trained affine coupling flows, volume-preserving (GIN-style) or not.

Draxler, Wahl, Schnörr, Köthe, *On the Universality of Volume-Preserving and Coupling-Based
Normalizing Flows*, ICML 2024 (arXiv 2402.06578). Each block is a fixed random rotation and an
affine coupling ``z_a <- z_a * exp(s(z_p, x)) + t(z_p, x)`` whose subnet ends in a zero-initialised
layer (the block starts as the identity). With ``volume_preserving=True`` the log-scales are
mean-subtracted over the active half (GIN, Sorrenson et al. 2020) and one learned global scale
follows the last block, so |det J| is the same constant everywhere: under such a flow log q(X)
is a shifted -1/2 chi^2_D variable and two modes of different widths cannot both get their
right peak height. ``volume_preserving=False`` leaves the log-scales free (RealNVP).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sbiplug.toolkit import check_positive_int, seeded, z_score_moments
from sbiplug_flowanalysis.layered import LayeredFlow, random_rotation

__all__ = [
    "AffineCoupling",
    "CouplingFlow",
    "GlobalScale",
    "Rotation",
    "build_coupling_flow",
    "fit_coupling_flow",
]


class Rotation(nn.Module):
    """z <- z Q^T for a fixed orthogonal ``matrix`` ``(D, D)``; log|det J| = 0."""

    def __init__(self, matrix: Tensor):
        super().__init__()
        self.register_buffer("matrix", matrix)

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        return z @ self.matrix.T, z.new_zeros(len(z))

    def inverse(self, z: Tensor, c: Tensor) -> Tensor:
        return z @ self.matrix


class GlobalScale(nn.Module):
    """z <- z * exp(a) with one learned scalar a; log|det J| = D a (a constant)."""

    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        return z * self.log_scale.exp(), (z.shape[-1] * self.log_scale).expand(len(z))

    def inverse(self, z: Tensor, c: Tensor) -> Tensor:
        return z * (-self.log_scale).exp()


class AffineCoupling(nn.Module):
    """Affine coupling of the last ``D - D // 2`` coordinates on the first ``D // 2`` and x.

    Arguments:
        dim: D.
        context_dim: Width C of the (embedded) condition, 0 when unconditional.
        hidden_features: Widths of the ReLU subnet.
        volume_preserving: Mean-subtract the log-scales over the active half (det J = 1).
        clamp: Log-scales are soft-clamped to ``(-clamp, clamp)`` for stability.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int = 0,
        hidden_features: Sequence[int] = (128, 128, 128),
        *,
        volume_preserving: bool = False,
        clamp: float = 2.0,
    ):
        super().__init__()
        self.passive = dim // 2
        self.active = dim - self.passive
        self.volume_preserving = bool(volume_preserving)
        self.clamp = float(clamp)
        widths = [self.passive + context_dim, *hidden_features]
        modules: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(widths):
            modules += [nn.Linear(width_in, width_out), nn.ReLU()]
        last = nn.Linear(widths[-1], 2 * self.active)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.subnet = nn.Sequential(*modules, last)

    def _scale_shift(self, passive: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        raw, shift = self.subnet(torch.cat([passive, c], dim=-1)).chunk(2, dim=-1)
        log_scale = self.clamp * torch.tanh(raw / self.clamp)
        if self.volume_preserving:
            log_scale = log_scale - log_scale.mean(dim=-1, keepdim=True)
        return log_scale, shift

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        passive, active = z[:, : self.passive], z[:, self.passive :]
        log_scale, shift = self._scale_shift(passive, c)
        out = torch.cat([passive, active * log_scale.exp() + shift], dim=-1)
        return out, log_scale.sum(-1)

    def inverse(self, z: Tensor, c: Tensor) -> Tensor:
        passive, active = z[:, : self.passive], z[:, self.passive :]
        log_scale, shift = self._scale_shift(passive, c)
        return torch.cat([passive, (active - shift) * (-log_scale).exp()], dim=-1)


class CouplingFlow(LayeredFlow):
    """A stack of (rotation, affine coupling) blocks; volume-preserving or free scales.

    Arguments:
        input_dim: D >= 2.
        condition_shape: Event shape of x (``(0,)``: unconditional).
        num_blocks: Number of coupling blocks (15 in the paper's GMM experiment).
        hidden_features: Subnet widths (3 x 128 in the paper).
        volume_preserving: GIN-style blocks plus one global scale (constant |det J|).
        seed: Seed of the fixed random rotations.
        **scaling: ``theta_shift``, ``theta_scale``, ``x_shift``, ``x_scale`` (z-scoring).
    """

    def __init__(
        self,
        input_dim: int,
        condition_shape: tuple[int, ...] = (0,),
        *,
        num_blocks: int = 15,
        hidden_features: Sequence[int] = (128, 128, 128),
        volume_preserving: bool = False,
        seed: int = 0,
        **scaling: Tensor | None,
    ):
        if input_dim < 2:
            raise ValueError(f"CouplingFlow needs theta of dimension >= 2, got {input_dim}")
        num_blocks = check_positive_int("num_blocks", num_blocks, owner="CouplingFlow")
        context_dim = int(torch.Size(condition_shape).numel())
        generator = torch.Generator().manual_seed(int(seed))
        layers: list[nn.Module] = []
        for _ in range(num_blocks):
            layers.append(Rotation(random_rotation(input_dim, generator)))
            layers.append(
                AffineCoupling(
                    input_dim,
                    context_dim,
                    hidden_features,
                    volume_preserving=volume_preserving,
                )
            )
        if volume_preserving:
            layers.append(GlobalScale())
        super().__init__(layers, input_dim, tuple(condition_shape), **scaling)
        self.volume_preserving = bool(volume_preserving)


def fit_coupling_flow(
    flow: LayeredFlow,
    theta: Tensor,
    x: Tensor | None = None,
    *,
    num_steps: int = 5000,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    decay_at: Sequence[float] = (0.2, 0.4, 0.6),
    seed: int = 0,
    show_progress_bars: bool = True,
) -> list[float]:
    """Maximum likelihood by Adam, the learning rate x0.1 at fractions ``decay_at`` of the run.

    Arguments:
        flow: The flow to train in place.
        theta: Training draws ``(n, D)``; x ``(n, *condition_shape)`` for a conditional flow.
        num_steps, batch_size, learning_rate: The schedule (the paper: 25k steps, batch 128).
        decay_at: Fractions of ``num_steps`` at which the rate drops tenfold.
        seed: Seed of the minibatch draws.
        show_progress_bars: A tqdm bar on stderr.

    Returns:
        The training loss (mean NLL of the batch) of every step.
    """
    num_steps = check_positive_int("num_steps", num_steps, owner="fit_coupling_flow")
    optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate)
    milestones = sorted({max(1, int(f * num_steps)) for f in decay_at})
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    losses: list[float] = []
    flow.train()
    with seeded(seed):
        for _ in tqdm(range(num_steps), disable=not show_progress_bars, desc="coupling flow"):
            index = torch.randint(len(theta), (batch_size,))
            loss = flow.loss(theta[index], None if x is None else x[index]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
    flow.eval()
    return losses


def build_coupling_flow(**options) -> Callable[[Tensor, Tensor], CouplingFlow]:
    """An sbi density-estimator builder: ``NPE(prior, density_estimator=build_coupling_flow())``.

    theta and x are z-scored with the first batch; ``options`` go to :class:`CouplingFlow`.
    """

    def builder(batch_theta: Tensor, batch_x: Tensor) -> CouplingFlow:
        theta_shift, theta_scale = z_score_moments(batch_theta)
        x_shift, x_scale = z_score_moments(batch_x)
        return CouplingFlow(
            batch_theta.shape[-1],
            tuple(batch_x.shape[1:]),
            theta_shift=theta_shift,
            theta_scale=theta_scale,
            x_shift=x_shift,
            x_scale=x_scale,
            **options,
        )

    return builder
