"""Neural ratio estimation (NRE-B, Durkan et al. 2020) through sbi's ``NRE_B``.

The posterior samples by MCMC and keeps its chains (:mod:`sbiplug.builtin.estimators.mcmc`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sbi.inference import NRE_B
from torch import nn
from torch.distributions import Distribution

from sbiplug.builtin.estimators._options import drop_none
from sbiplug.builtin.estimators.mcmc import McmcPosteriorMixin
from sbiplug.toolkit.training import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    trainer_options,
)

__all__ = ["CLASSIFIERS", "NRE", "make_nre"]

CLASSIFIERS = ("linear", "mlp", "resnet")


class NRE(McmcPosteriorMixin, NRE_B):
    """sbi's NRE-B with a multi-chain MCMC posterior by default."""


def make_nre(
    prior: Distribution,
    classifier: str | Callable[..., Any] = "resnet",
    *,
    hidden_features: int | None = None,
    embedding_net_x: nn.Module | None = None,
    z_score_theta: str | None = None,
    z_score_x: str | None = None,
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
) -> NRE:
    """An NRE trainer.

    Arguments:
        classifier: ``"linear"``, ``"mlp"``, ``"resnet"`` or a builder ``(theta, x) -> net``.
        hidden_features, embedding_net_x, z_score_theta, z_score_x: Passed to
            ``sbi.neural_nets.classifier_nn`` when given.
    """
    options = drop_none(
        hidden_features=hidden_features,
        embedding_net_x=embedding_net_x,
        z_score_theta=z_score_theta,
        z_score_x=z_score_x,
    )
    if callable(classifier):
        if options:
            raise ValueError(
                f"estimator 'nre': network options {sorted(options)} apply to a named "
                "classifier only, not to a builder callable"
            )
        builder = classifier
    elif classifier in CLASSIFIERS:
        from sbi.neural_nets import classifier_nn

        builder = classifier_nn(model=classifier, **options)
    else:
        raise ValueError(
            f"estimator 'nre': classifier {classifier!r} is not one of {', '.join(CLASSIFIERS)} "
            "or a builder callable"
        )
    return NRE(
        prior=prior,
        classifier=builder,
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )
