"""Neural likelihood estimation (NLE, Papamakarios et al. 2019) through sbi's ``NLE_A``.

The posterior samples by MCMC and keeps its chains (:mod:`sbiplug.builtin.estimators.mcmc`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sbi.inference import NLE_A
from torch import nn
from torch.distributions import Distribution

from sbiplug.builtin.estimators.mcmc import McmcPosteriorMixin
from sbiplug.builtin.estimators.npe import _density_builder
from sbiplug.toolkit.training import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    trainer_options,
)

__all__ = ["NLE", "make_nle"]


class NLE(McmcPosteriorMixin, NLE_A):
    """sbi's NLE with a multi-chain MCMC posterior by default."""


def make_nle(
    prior: Distribution,
    density_estimator: str | Callable[..., Any] = "maf",
    *,
    hidden_features: int | None = None,
    num_transforms: int | None = None,
    num_bins: int | None = None,
    num_components: int | None = None,
    embedding_net: nn.Module | None = None,
    z_score_theta: str | None = None,
    z_score_x: str | None = None,
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
) -> NLE:
    """An NLE trainer; options as in :func:`sbiplug.builtin.estimators.npe.make_npe`
    (passed to ``sbi.neural_nets.likelihood_nn``)."""
    builder = _density_builder(
        density_estimator,
        "nle",
        hidden_features=hidden_features,
        num_transforms=num_transforms,
        num_bins=num_bins,
        num_components=num_components,
        embedding_net=embedding_net,
        z_score_theta=z_score_theta,
        z_score_x=z_score_x,
    )
    return NLE(
        prior=prior,
        density_estimator=builder,
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )
