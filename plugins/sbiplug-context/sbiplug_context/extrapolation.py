"""Unwarranted-extrapolation detection on set embeddings: a calibrated Mahalanobis score.

Müller et al. (arXiv 2312.10107) detect environments unlike the training ones from the set
representation φ(S). Here (a reconstruction, see ``docs/design/context.md``): fit the mean and a
shrunk covariance of φ(S) over training sets; score a set by its squared Mahalanobis distance;
set the threshold on held-out in-distribution sets as the conformal quantile
``s_(k)``, ``k = ⌈(m + 1)(1 − α)⌉`` of their m scores. A new in-distribution set then exceeds it
with probability in ``[α − 1/(m + 1), α]`` (exchangeability), the stated false-alarm rate; each
flagged set also gets a conformal p-value ``(1 + #{s_j ≥ s}) / (m + 1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sbiplug.toolkit import check_float, check_positive_int

__all__ = ["EnvironmentScore", "embed_sets", "false_alarm_bounds"]


def embed_sets(encoder: torch.nn.Module, x: Tensor, batch_size: int = 512) -> Tensor:
    """φ(x) ``(n, output_dim)`` of padded sets ``(n, max_trials, d)``, in eval mode, no grad."""
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            parts = [encoder(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(parts).double()


def false_alarm_bounds(false_alarm: float, num_calibration: int) -> tuple[float, float]:
    """``(low, high)`` of the probability that a new in-distribution set is flagged."""
    return max(0.0, false_alarm - 1 / (num_calibration + 1)), false_alarm


@dataclass
class EnvironmentScore:
    """Squared Mahalanobis distance of set embeddings to the training ones, with a threshold.

    Arguments:
        false_alarm: α, the target rate of flagging an in-distribution set.
        shrinkage: Weight λ of the scaled identity in the covariance (1 − λ) C + λ tr(C)/p I.
    """

    false_alarm: float = 0.05
    shrinkage: float = 0.01

    def __post_init__(self) -> None:
        owner = "EnvironmentScore"
        check_float("false_alarm", self.false_alarm, minimum=0.0, maximum=1.0, owner=owner)
        check_float("shrinkage", self.shrinkage, minimum=0.0, maximum=1.0, owner=owner)
        if not 0 < self.false_alarm < 1:
            raise ValueError(f"{owner}: false_alarm must lie in (0, 1), got {self.false_alarm}")
        self.mean: Tensor | None = None
        self.precision: Tensor | None = None
        self.calibration_scores: Tensor | None = None
        self.threshold = math.inf

    def fit(self, embeddings: Tensor) -> EnvironmentScore:
        """Fit mean and covariance on training embeddings ``(n, p)``, n ≥ 2."""
        embeddings = torch.as_tensor(embeddings, dtype=torch.float64)
        if embeddings.ndim != 2 or len(embeddings) < 2:
            raise ValueError(
                "EnvironmentScore.fit: expected embeddings (n >= 2, p), got "
                f"{tuple(embeddings.shape)}"
            )
        p = embeddings.shape[1]
        self.mean = embeddings.mean(0)
        cov = torch.cov(embeddings.T).reshape(p, p)
        ridge = (cov.trace() / p).clamp_min(1e-12)
        cov = (1 - self.shrinkage) * cov + self.shrinkage * ridge * torch.eye(p, dtype=cov.dtype)
        self.precision = torch.linalg.inv(cov)
        return self

    def score(self, embeddings: Tensor) -> Tensor:
        """Squared Mahalanobis distances ``(n,)`` of embeddings ``(n, p)``."""
        if self.mean is None or self.precision is None:
            raise RuntimeError("EnvironmentScore.score: call fit() first")
        centred = torch.as_tensor(embeddings, dtype=torch.float64) - self.mean
        return ((centred @ self.precision) * centred).sum(-1)

    def calibrate(self, embeddings: Tensor) -> EnvironmentScore:
        """Set the threshold from held-out in-distribution embeddings ``(m, p)``."""
        scores = self.score(embeddings).sort().values
        m = check_positive_int("num_calibration", len(scores), owner="EnvironmentScore")
        k = math.ceil((m + 1) * (1 - self.false_alarm))
        self.calibration_scores = scores
        self.threshold = float(scores[k - 1]) if k <= m else math.inf
        return self

    def flag(self, embeddings: Tensor) -> Tensor:
        """Whether each embedding lies beyond the threshold: ``(n,)`` bools."""
        return self.score(embeddings) > self.threshold

    def p_values(self, embeddings: Tensor) -> Tensor:
        """Conformal p-values ``(n,)`` of "this set is like the training sets"."""
        if self.calibration_scores is None:
            raise RuntimeError("EnvironmentScore.p_values: call calibrate() first")
        scores = self.score(embeddings)
        exceed = (self.calibration_scores[None, :] >= scores[:, None]).sum(-1)
        return (1 + exceed.double()) / (len(self.calibration_scores) + 1)
