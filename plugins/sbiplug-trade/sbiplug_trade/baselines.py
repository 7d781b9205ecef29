"""Baselines for TRADE's benchmarks (Wahl et al., arXiv 2410.19492, §7).

* NLL at c0 only: :meth:`TRADE.fit` with ``trade_weight=0`` — the same conditional flow, trained
  on the boundary term alone, so other conditions are blind extrapolation.
* Reverse KL over the range (:func:`fit_reverse_kl`): the same flow trained by
  E_c E_{x ~ q(.|c)}[log q(x | c) - log p~(x | c)] with c log-uniform over the range; it needs no
  data but is mode-seeking.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from sbiplug.toolkit import OptionError, check_positive_int, seeded
from sbiplug_trade.trade import TRADE

__all__ = ["fit_reverse_kl"]


def fit_reverse_kl(
    model: TRADE,
    *,
    steps: int = 2000,
    batch_size: int = 512,
    conditions_per_step: int = 8,
    learning_rate: float = 1e-3,
    gradient_clip: float = 3.0,
    show_progress_bars: bool | None = None,
) -> TRADE:
    """Train ``model``'s flow by reverse KL with c log-uniform over its condition range.

    Arguments:
        model: A :class:`TRADE`, built (e.g. :meth:`TRADE.build`) or built here unstandardised.
        steps: Optimisation steps.
        batch_size: Flow draws per step, split evenly across ``conditions_per_step`` conditions.
        conditions_per_step: Conditions per step.
        learning_rate: Adam learning rate (cosine decay).
        gradient_clip: Max gradient norm.
        show_progress_bars: Overrides the model's setting.

    Returns:
        ``model``.
    """
    owner = "fit_reverse_kl"
    check_positive_int("steps", steps, owner=owner)
    if check_positive_int("batch_size", batch_size, owner=owner) < check_positive_int(
        "conditions_per_step", conditions_per_step, owner=owner
    ):
        raise OptionError(
            f"{owner}: batch_size must be >= conditions_per_step = {conditions_per_step}, "
            f"got {batch_size}"
        )
    show = model.show_progress_bars if show_progress_bars is None else show_progress_bars
    low, high = (math.log(v) for v in model.condition_range)
    per_condition = batch_size // conditions_per_step
    with seeded(model.seed + 1):
        flow = model.flow if model.flow is not None else model.build()
        optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        losses = []
        flow.train()
        for _ in tqdm(range(steps), disable=not show, desc=f"reverse KL {model.target.name}"):
            log_c = low + (high - low) * torch.rand(conditions_per_step)
            c = torch.exp(log_c).repeat_interleave(per_condition)[:, None]
            x, log_q = flow.rsample_and_log_prob(c)
            loss = (log_q - model.target.log_density(x, c)).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), gradient_clip)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        flow.eval()
    model.history.setdefault("reverse_kl", []).extend(losses)
    return model
