"""Training schedules of TRADE: condition curriculum, causality weights, loss ramp and clipping.

From TRADE (Wahl et al., arXiv 2410.19492; reference code ``trade/util.py``):

* skewed log-uniform curriculum on r = c / c0 in [r_lo, r_hi]: the upper side with probability
  log r_hi / (log r_hi - log r_lo), then r = exp(log(r_side) (1 - u^e)) with u ~ U(0, 1) and the
  exponent e rising log-linearly from 0.01 (stay at c0) to 1.5 (skewed to the edges);
* causality weights (Wang et al., 2022, "respecting causality" for PINNs): with an EMA L_k of the
  residual loss on bins of log c, a condition in bin i gets weight exp(-eps sum_{k between c0 and
  i} L_k), so far conditions count only once the way there from c0 is learnt;
* cosine ramp of the residual weight after ``pct_start`` of the steps;
* loss clipping: log-compression above ``log_clip``, a hard cap ``clip``, NaN -> ``clip``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["CausalityWeights", "ConditionCurriculum", "clip_loss", "cosine_ramp"]


class ConditionCurriculum:
    """Draws conditions c = c0 * r from the skewed log-uniform schedule.

    Arguments:
        condition_range: (c_min, c_max) with c_min <= c0 <= c_max.
        base_condition: c0.
        exponent_range: The exponent e at the first and the last step.
    """

    def __init__(
        self,
        condition_range: tuple[float, float],
        base_condition: float,
        exponent_range: tuple[float, float] = (0.01, 1.5),
    ) -> None:
        self.base_condition = float(base_condition)
        self.log_low = math.log(condition_range[0] / base_condition)
        self.log_high = math.log(condition_range[1] / base_condition)
        self.exponent_range = exponent_range

    def exponent(self, progress: float) -> float:
        """e at training progress in [0, 1] (log-linear)."""
        start, end = self.exponent_range
        return math.exp(math.log(start) + min(max(progress, 0.0), 1.0) * math.log(end / start))

    def sample(self, num: int, progress: float, generator: torch.Generator) -> Tensor:
        """``num`` conditions, shape ``(num,)``."""
        span = self.log_high - self.log_low
        p_high = self.log_high / span if span > 0 else 0.5
        upper = torch.rand(num, generator=generator) < p_high
        side = torch.where(upper, torch.tensor(self.log_high), torch.tensor(self.log_low))
        u = torch.rand(num, generator=generator)
        log_ratio = side * (1 - u ** self.exponent(progress))
        return self.base_condition * torch.exp(log_ratio)


class CausalityWeights:
    """Per-condition loss weights that open the range outward from c0 as the residual falls.

    Arguments:
        condition_range: (c_min, c_max).
        base_condition: c0.
        bins: Bins on log c.
        epsilon: Strength eps of the weighting at the first step.
        decay: eps at the last step relative to the first (eps_t = eps0 * decay^progress).
        momentum: EMA factor of the per-bin losses.
    """

    def __init__(
        self,
        condition_range: tuple[float, float],
        base_condition: float,
        bins: int = 32,
        epsilon: float = 1.0,
        decay: float = 0.5,
        momentum: float = 0.9,
    ) -> None:
        self.edges = torch.linspace(
            math.log(condition_range[0]), math.log(condition_range[1]), bins + 1
        )
        self.centers = 0.5 * (self.edges[1:] + self.edges[:-1])
        self.base_bin = self.bin_of(torch.tensor([float(base_condition)]))[0]
        self.losses = torch.zeros(bins)
        self.seen = torch.zeros(bins, dtype=torch.bool)
        self.epsilon = epsilon
        self.decay = decay
        self.momentum = momentum
        self.weights = torch.ones(bins)

    def bin_of(self, c: Tensor) -> Tensor:
        """Bin index of each condition, shape like ``c``."""
        index = torch.bucketize(torch.log(c), self.edges[1:-1])
        return index.clamp(0, len(self.centers) - 1)

    def update(self, c: Tensor, losses: Tensor) -> None:
        """Fold per-condition residual losses (shape ``(k,)``) into the per-bin EMA."""
        for index, loss in zip(self.bin_of(c).tolist(), losses.detach().tolist(), strict=True):
            if not math.isfinite(loss):
                continue
            if self.seen[index]:
                self.losses[index] = self.momentum * self.losses[index] + (1 - self.momentum) * loss
            else:
                self.losses[index], self.seen[index] = loss, True

    def recompute(self, progress: float) -> None:
        """Refresh the weights from the current per-bin losses (unseen bins count as the max)."""
        filled = torch.where(self.seen, self.losses, self.losses.max() if self.seen.any() else 0.0)
        epsilon = self.epsilon * self.decay ** min(max(progress, 0.0), 1.0)
        cumulative = torch.zeros_like(filled)
        base = int(self.base_bin)
        for index in range(base + 1, len(filled)):
            cumulative[index] = cumulative[index - 1] + filled[index - 1]
        for index in range(base - 1, -1, -1):
            cumulative[index] = cumulative[index + 1] + filled[index + 1]
        self.weights = torch.exp(-epsilon * cumulative)

    def __call__(self, c: Tensor) -> Tensor:
        """Weights of the conditions ``c``, shape like ``c``."""
        return self.weights[self.bin_of(c)]


def cosine_ramp(step: int, steps: int, pct_start: float, start: float, end: float) -> float:
    """``start`` until ``pct_start * steps``, then a cosine ramp to ``end`` at the last step."""
    begin = pct_start * steps
    if step <= begin:
        return start
    progress = min((step - begin) / max(steps - begin, 1.0), 1.0)
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


def clip_loss(loss: Tensor, clip: float = 1e3, log_clip: float = 10.0) -> Tensor:
    """Compress a loss logarithmically above ``log_clip``, cap it at ``clip``; NaN -> clip."""
    if not bool(torch.isfinite(loss)):
        return loss.new_tensor(clip)
    if float(loss.detach()) > log_clip:
        loss = torch.log1p(loss - log_clip) + log_clip
    return torch.clamp(loss, max=clip)
