"""Fit a free-form injective flow (FIF) to data: standalone density estimation on a manifold.

Sorrenson et al., *Lifting Architectural Constraints of Injective Flows* (ICLR 2024,
arXiv 2306.01843). :func:`fit_injective_flow` z-scores the data, trains
:class:`~sbiplug_fff.injective.FreeFormInjectiveFlow` with Adam and a cosine schedule on
minibatches, clips gradients and skips steps whose gradient is not finite. Bad input (wrong
shape, non-finite rows, d >= D) is an error before any training.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbiplug.toolkit import check_positive, check_positive_int, seeded
from sbiplug_fff.injective import FreeFormInjectiveFlow

__all__ = ["check_training_data", "fit_injective_flow", "train_injective_flow"]


def check_training_data(
    x: Tensor, latent_features: int, *, owner: str = "fit_injective_flow"
) -> Tensor:
    """``x`` as float32 ``(N, D)`` after checking its shape, its rows and d < D.

    Raises:
        ValueError: x is not ``(N, D)`` with N >= 2, has non-finite rows, or d >= D.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: x must be a torch.Tensor of shape (N, D), got {type(x)}")
    if x.ndim != 2:
        raise ValueError(
            f"{owner}: x must have shape (N, D) (flatten structured data first), "
            f"got {tuple(x.shape)}"
        )
    if x.shape[0] < 2:
        raise ValueError(f"{owner}: x needs at least 2 rows, got {x.shape[0]}")
    bad = ~torch.isfinite(x).all(dim=1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"{owner}: x has {int(bad.sum())} rows with NaN or inf values (first: row {first}); "
            "drop them before training"
        )
    latent_features = check_positive_int("latent_features", latent_features, owner=owner)
    if latent_features >= x.shape[1]:
        raise ValueError(
            f"{owner}: latent_features (d = {latent_features}) must be smaller than the data "
            f"dimension (D = {x.shape[1]})"
        )
    return x.float()


def train_injective_flow(
    flow: FreeFormInjectiveFlow,
    x: Tensor,
    condition: Tensor | None = None,
    *,
    num_steps: int = 2000,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    clip_max_norm: float = 10.0,
    show_progress_bars: bool = False,
) -> list[float]:
    """Train ``flow`` in place on data ``(N, D)`` (and conditions ``(N, C)``); leaves it in eval.

    Returns:
        The mean loss of each block of 100 steps (for a convergence check).
    """
    num_steps = check_positive_int("num_steps", num_steps, owner="train_injective_flow")
    batch_size = min(check_positive_int("batch_size", batch_size), len(x))
    check_positive("learning_rate", learning_rate, owner="train_injective_flow")
    optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_steps)
    flow.train()
    history, running = [], []
    steps = tqdm(range(num_steps), disable=not show_progress_bars, desc="fitting FIF")
    for _ in steps:
        rows = torch.randint(len(x), (batch_size,))
        loss = flow.loss(x[rows], None if condition is None else condition[rows]).mean()
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(flow.parameters(), clip_max_norm)
        if torch.isfinite(norm) and torch.isfinite(loss):  # skip non-finite steps
            optimizer.step()
            running.append(float(loss.detach()))
        schedule.step()
        if len(running) == 100:
            history.append(sum(running) / len(running))
            running = []
    flow.eval()
    return history


def fit_injective_flow(
    x: Tensor,
    latent_features: int,
    condition: Tensor | None = None,
    *,
    num_steps: int = 2000,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    clip_max_norm: float = 10.0,
    seed: int | None = 0,
    show_progress_bars: bool = False,
    **flow_options: Any,
) -> FreeFormInjectiveFlow:
    """Fit a (conditional) free-form injective flow with a d-dimensional manifold to ``x``.

    Arguments:
        x: Data, shape ``(N, D)``, finite.
        latent_features: Manifold dimension d < D.
        condition: Optional conditions, shape ``(N, C)``.
        num_steps, batch_size, learning_rate, clip_max_norm: Adam with cosine decay.
        seed: Seed for initialisation, noise and batches (global generators are restored);
            ``None`` draws from torch's global generator.
        **flow_options: Passed to :class:`FreeFormInjectiveFlow` (``beta``, ``noise``,
            ``hidden_features``, ``num_blocks``, ...).

    Returns:
        The fitted flow in evaluation mode: ``log_prob(x)``, ``encode``, ``decode``,
        ``sample((n,))``, ``reconstruction_error(x)``.
    """
    x = check_training_data(x, latent_features)
    condition_features = 0
    if condition is not None:
        if condition.ndim != 2 or condition.shape[0] != x.shape[0]:
            raise ValueError(
                f"fit_injective_flow: condition must have shape ({x.shape[0]}, C), "
                f"got {tuple(condition.shape)}"
            )
        condition, condition_features = condition.float(), condition.shape[1]
    with seeded(seed) if seed is not None else nullcontext():
        flow = FreeFormInjectiveFlow(
            x.shape[1], latent_features, condition_features, **flow_options
        )
        flow.set_scaling(x)
        train_injective_flow(
            flow,
            x,
            condition,
            num_steps=num_steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            clip_max_norm=clip_max_norm,
            show_progress_bars=show_progress_bars,
        )
    return flow
