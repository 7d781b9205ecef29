"""Unconditional density estimation on a manifold with a free-form flow (M-FFF).

Sorrenson et al., *Learning Distributions on Manifolds with Free-form Flows* (arXiv 2312.09852):
fit a :class:`~sbiplug_fff.flow.ManifoldFreeFormFlow` (or a Euclidean
:class:`~sbiplug_fff.flow.FreeFormFlow`) to points, e.g. directions on the sphere, outside SBI.
The fitted flow's ``log_prob(points)`` and ``sample((n,))`` need no condition.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbiplug.toolkit import seeded, z_score_moments
from sbiplug_fff.flow import FreeFormFlow, ManifoldFreeFormFlow
from sbiplug_fff.manifolds import Manifold, get_manifold

__all__ = ["UnconditionalFlow", "fit_flow"]


class UnconditionalFlow(torch.nn.Module):
    """A free-form flow without a condition: ``log_prob(points)`` and ``sample(shape)``."""

    def __init__(self, flow: FreeFormFlow):
        super().__init__()
        self.flow = flow
        self.manifold = flow.manifold

    def _empty(self, batch: int) -> Tensor:
        return torch.zeros(batch, 0)

    def log_prob(self, points: Tensor) -> Tensor:
        """Exact log density of ``points`` ``(N, D)``, shape ``(N,)``."""
        return self.flow.log_prob(points, self._empty(points.shape[0]))[0]

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        """Draws of shape ``(*sample_shape, D)``: one decoder pass each."""
        return self.flow.sample(sample_shape, self._empty(1)).squeeze(-2)

    def reconstruction_error(self, points: Tensor) -> Tensor:
        return self.flow.reconstruction_error(points, self._empty(points.shape[0]))


def fit_flow(
    points: Tensor,
    manifold: str | Manifold | None = None,
    *,
    num_steps: int = 2000,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    clip_max_norm: float = 10.0,
    seed: int | None = 0,
    show_progress_bars: bool = False,
    **flow_options: Any,
) -> UnconditionalFlow:
    """Fit an unconditional (manifold) free-form flow to ``points``.

    Arguments:
        points: Data, shape ``(N, D)``; on ``manifold`` when one is given.
        manifold: ``"sphere"``, ``"torus"``, ``"so3"``, a manifold, or ``None`` for R^D.
        num_steps, batch_size, learning_rate, clip_max_norm: Adam with cosine decay.
        seed: Seed for initialisation and batches (the caller's global generators are left as
            they were); ``None`` draws from torch's global generator.
        **flow_options: Passed to the flow (``beta``, ``hidden_features``, ...).

    Returns:
        The fitted :class:`UnconditionalFlow` in evaluation mode.
    """
    if points.ndim != 2:
        raise ValueError(f"points must have shape (N, D), got {tuple(points.shape)}")
    points = points.float()
    with seeded(seed) if seed is not None else nullcontext():
        if manifold is None:
            shift, scale = z_score_moments(points)
            flow: FreeFormFlow = FreeFormFlow(
                points.shape[1], (0,), theta_shift=shift, theta_scale=scale, **flow_options
            )
        else:
            found = get_manifold(manifold, points.shape[1])
            found.check(points, "points")
            flow = ManifoldFreeFormFlow(found, (0,), **flow_options)
        _train(
            flow, points, num_steps, batch_size, learning_rate, clip_max_norm, show_progress_bars
        )
    return UnconditionalFlow(flow)


def _train(
    flow: FreeFormFlow,
    points: Tensor,
    num_steps: int,
    batch_size: int,
    learning_rate: float,
    clip_max_norm: float,
    show_progress_bars: bool,
) -> None:
    """Adam with cosine decay on minibatches drawn with replacement; leaves ``flow`` in eval."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)
    empty = torch.zeros(batch_size, 0)
    flow.train()
    for _ in tqdm(range(num_steps), disable=not show_progress_bars, desc="fitting flow"):
        batch = points[torch.randint(len(points), (batch_size,))]
        loss = flow.loss(batch, empty[: len(batch)]).mean()
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(flow.parameters(), clip_max_norm)
        if torch.isfinite(norm):  # skip steps with non-finite gradients
            optimizer.step()
        schedule.step()
    flow.eval()
