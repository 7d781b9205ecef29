"""Neural posterior estimation (NPE, Greenberg et al. 2019, "APT") through sbi's ``NPE_C``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.distributions import Distribution

from sbiplug.builtin.estimators._options import drop_none
from sbiplug.toolkit.pretraining import pretrain_embedding_net
from sbiplug.toolkit.training import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    trainer_options,
)

__all__ = ["DENSITY_ESTIMATORS", "build_density_estimator", "make_npe", "sbi_density_models"]

DENSITY_ESTIMATORS = ("maf", "nsf", "mdn", "made", "maf_rqs")


def make_npe(
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
) -> Any:
    """An sbi ``NPE`` trainer.

    Arguments:
        prior: Prior over parameters.
        density_estimator: ``"maf"``, ``"nsf"``, ``"mdn"``, ``"made"``, any ``"zuko_*"`` flow
            sbi knows (e.g. ``"zuko_nsf"``), or a builder ``(theta, x) -> estimator``.
        hidden_features, num_transforms, num_bins, num_components, embedding_net, z_score_theta,
            z_score_x: Passed to ``sbi.neural_nets.posterior_nn`` when given.
        device, show_progress_bars: As in sbi.
        tracker, log_dir: Training metrics go nowhere unless one of these is given.

    Returns:
        ``sbi.inference.NPE``: ``append_simulations(theta, x).train()``, ``build_posterior()``.
    """
    from sbi.inference import NPE

    builder = _density_builder(
        density_estimator,
        "npe",
        hidden_features=hidden_features,
        num_transforms=num_transforms,
        num_bins=num_bins,
        num_components=num_components,
        embedding_net=embedding_net,
        z_score_theta=z_score_theta,
        z_score_x=z_score_x,
    )
    return NPE(
        prior=prior,
        density_estimator=builder,
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )


def build_density_estimator(
    model: str = "maf",
    *,
    hidden_features: int | None = None,
    num_transforms: int | None = None,
    num_bins: int | None = None,
    num_components: int | None = None,
    embedding_net: nn.Module | None = None,
    z_score_theta: str | None = None,
    z_score_x: str | None = None,
) -> Callable[..., Any]:
    """The builder sbi's ``NPE(density_estimator=...)`` accepts: ``posterior_nn(model, ...)``.

    Arguments:
        model: One of :func:`sbi_density_models` (``"maf"``, ``"nsf"``, ``"zuko_nsf"``, ...).
        hidden_features, num_transforms, num_bins, num_components, embedding_net, z_score_theta,
            z_score_x: Passed to ``sbi.neural_nets.posterior_nn`` when given.

    Returns:
        ``builder(batch_theta, batch_x) -> ConditionalDensityEstimator``.
    """
    return _density_builder(
        model,
        "npe",
        hidden_features=hidden_features,
        num_transforms=num_transforms,
        num_bins=num_bins,
        num_components=num_components,
        embedding_net=embedding_net,
        z_score_theta=z_score_theta,
        z_score_x=z_score_x,
    )


def sbi_density_models() -> tuple[str, ...]:
    """Model names ``make_npe`` takes: ``DENSITY_ESTIMATORS`` and the zuko flows sbi knows."""
    from sbi.neural_nets.factory import model_builders

    zuko = sorted(name for name in model_builders if name.startswith("zuko_"))
    return (*DENSITY_ESTIMATORS, *zuko)


def _density_builder(
    density_estimator: str | Callable[..., Any], estimator: str, **net_options: Any
) -> str | Callable[..., Any]:
    """Turn a model name and options into an sbi builder (posterior_nn / likelihood_nn)."""
    options = drop_none(**net_options)
    if callable(density_estimator):
        if options:
            raise ValueError(
                f"estimator {estimator!r}: network options {sorted(options)} apply to a named "
                "density_estimator only, not to a builder callable"
            )
        return density_estimator
    if not isinstance(density_estimator, str) or not (
        density_estimator in DENSITY_ESTIMATORS or density_estimator.startswith("zuko_")
    ):
        raise ValueError(
            f"estimator {estimator!r}: density_estimator {density_estimator!r} is not one of "
            f"{', '.join(DENSITY_ESTIMATORS)}, a 'zuko_*' flow or a builder callable"
        )
    from sbi.neural_nets import likelihood_nn, posterior_nn

    factory = posterior_nn if estimator == "npe" else likelihood_nn
    builder = factory(model=density_estimator, **options)
    if estimator != "npe" or options.get("embedding_net") is None:
        return builder

    def build_and_pretrain(batch_theta: Any, batch_x: Any) -> Any:
        # An embedding net with ``pretrain(x)`` learns from the training x first
        # (sbiplug.toolkit.pretraining), behind sbi's z-scoring as it will see them.
        network = builder(batch_theta, batch_x)
        pretrain_embedding_net(getattr(network, "embedding_net", None), batch_x)
        return network

    return build_and_pretrain
