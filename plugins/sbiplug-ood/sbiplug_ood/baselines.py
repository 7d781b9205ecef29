"""Baseline OOD scores of a density model, and the AUROC that compares scores.

- **Likelihood**: the negative log-likelihood of a group, averaged over its B inputs. Deep
  generative models famously give simple out-of-distribution inputs a *higher* likelihood
  (Nalisnick et al., 2019a), so this score can do worse than chance.
- **Typicality** (Nalisnick et al., 2019b): the distance ``|NLL(X_B) - H|`` of a group's average
  NLL to ``H``, its mean over in-distribution groups of the same size. Inputs that are *too*
  likely are atypical too.

References:
    Do Deep Generative Models Know What They Don't Know? (Nalisnick et al., 2019)
    https://arxiv.org/abs/1810.09136

    Detecting Out-of-Distribution Inputs to Deep Generative Models Using Typicality
    (Nalisnick, Matsukawa, Teh, Lakshminarayanan; 2019) https://arxiv.org/abs/1906.02994
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

from sbiplug.toolkit import check_positive_int
from sbiplug_ood.inputs import (
    call_log_prob,
    check_density_model,
    group_context,
    group_inputs,
    model_dtype,
)

__all__ = ["LikelihoodScorer", "TypicalityScorer", "auroc", "group_log_prob"]


def group_log_prob(
    model: nn.Module,
    x: Tensor,
    context: Tensor | None = None,
    *,
    batch_size: int = 1,
    event_shape: tuple[int, ...] | None = None,
    chunk_size: int = 4096,
) -> Tensor:
    """The average log-likelihood of each group of ``batch_size`` inputs.

    Arguments:
        model: A torch module with ``log_prob(x)`` or ``log_prob(x, context)``.
        x: Inputs, shape ``(n, *event_shape)``.
        context: Conditions, shape ``(n, *context_shape)``, or ``None``.
        batch_size: The group size B.

    Returns:
        Mean log p over each group, shape ``(n // batch_size,)``.
    """
    check_density_model(model)
    batch_size = check_positive_int("batch_size", batch_size)
    dtype = model_dtype(model)
    groups = group_inputs(x, batch_size, event_shape=event_shape, dtype=dtype)
    context_groups = group_context(context, x, batch_size, dtype=dtype)
    flat = groups.flatten(0, 1)
    flat_context = None if context_groups is None else context_groups.flatten(0, 1)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            log_probs = torch.cat(
                [
                    call_log_prob(
                        model,
                        flat[i : i + chunk_size],
                        None if flat_context is None else flat_context[i : i + chunk_size],
                    ).reshape(-1)
                    for i in range(0, len(flat), chunk_size)
                ]
            )
    finally:
        model.train(was_training)
    return log_probs.reshape(len(groups), batch_size).double().mean(dim=1)


class LikelihoodScorer:
    """The negative log-likelihood as an OOD score (higher = more out-of-distribution).

    Arguments:
        model: A torch module with ``log_prob(x)`` or ``log_prob(x, context)``.
        batch_size: The group size B; a group scores its average NLL.
    """

    def __init__(self, model: nn.Module, batch_size: int = 1) -> None:
        self.model = check_density_model(model)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.event_shape: tuple[int, ...] | None = None

    def fit(self, x: Tensor, context: Tensor | None = None) -> LikelihoodScorer:
        """Record the input shape (the likelihood needs no fit); returns the scorer."""
        group_log_prob(self.model, x, context, batch_size=self.batch_size)
        self.event_shape = tuple(x.shape[1:])
        return self

    def score(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Average NLL of each group, shape ``(n // batch_size,)``."""
        return -group_log_prob(
            self.model, x, context, batch_size=self.batch_size, event_shape=self.event_shape
        )


class TypicalityScorer:
    """The typicality test statistic ``|NLL(X_B) - H|`` (higher = more out-of-distribution).

    Arguments:
        model: A torch module with ``log_prob(x)`` or ``log_prob(x, context)``.
        batch_size: The group size B, the same at fit and at score time.
    """

    def __init__(self, model: nn.Module, batch_size: int = 1) -> None:
        self.model = check_density_model(model)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.event_shape: tuple[int, ...] | None = None
        self.entropy: float | None = None

    def fit(self, x: Tensor, context: Tensor | None = None) -> TypicalityScorer:
        """Estimate ``H``, the mean group NLL on in-distribution ``x`` (at least 2 groups)."""
        nll = -group_log_prob(self.model, x, context, batch_size=self.batch_size)
        if len(nll) < 2:
            raise ValueError(
                f"typicality needs at least 2 in-distribution groups of "
                f"batch_size={self.batch_size}, got {len(nll)}"
            )
        if not bool(torch.isfinite(nll).all()):
            raise ValueError("log_prob is not finite on some in-distribution inputs")
        self.entropy = float(nll.mean())
        self.event_shape = tuple(x.shape[1:])
        return self

    def score(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``|NLL(X_B) - H|`` of each group, shape ``(n // batch_size,)``."""
        if self.entropy is None:
            raise RuntimeError("the scorer is not fitted: call fit(x_in_distribution) first")
        nll = -group_log_prob(
            self.model, x, context, batch_size=self.batch_size, event_shape=self.event_shape
        )
        return (nll - self.entropy).abs()


def auroc(in_scores: Tensor | np.ndarray, out_scores: Tensor | np.ndarray) -> float:
    """The probability that an out-of-distribution input scores higher than an in-distribution one.

    This is the area under the ROC curve of scores where higher means more out-of-distribution
    (the Mann-Whitney U statistic over ``n_in * n_out``), ties counted one half; 0.5 is chance.

    Arguments:
        in_scores: Scores of in-distribution inputs, shape ``(n_in,)``.
        out_scores: Scores of out-of-distribution inputs, shape ``(n_out,)``.

    Returns:
        The AUROC in [0, 1].
    """
    arrays = []
    for label, scores in (("in_scores", in_scores), ("out_scores", out_scores)):
        array = np.asarray(scores.detach().cpu() if isinstance(scores, Tensor) else scores)
        array = array.astype(np.float64).reshape(-1)
        if array.size == 0:
            raise ValueError(f"auroc: {label} is empty")
        if np.isnan(array).any():
            raise ValueError(f"auroc: {label} contains NaN")
        arrays.append(array)
    in_array, out_array = arrays
    # Mid-ranks of the pooled scores count each tie as one half.
    ranks = rankdata(np.concatenate([in_array, out_array]), method="average")
    n_in, n_out = len(in_array), len(out_array)
    u_out = ranks[n_in:].sum() - n_out * (n_out + 1) / 2
    return float(u_out / (n_in * n_out))
