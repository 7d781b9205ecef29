"""Vector-field posterior estimators: flow matching (FMPE, Wildberger et al. 2023) and
score-based diffusion (NPSE, Geffner et al. 2023), through sbi's ``FMPE`` and ``NPSE``.

Their posteriors sample by integrating an ODE or SDE (sbi's ``VectorFieldPosterior``).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.distributions import Distribution

from sbiplug.builtin.estimators._options import drop_none
from sbiplug.toolkit.training import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    trainer_options,
)

__all__ = ["VECTOR_FIELD_NETS", "make_fmpe", "make_npse"]

VECTOR_FIELD_NETS = ("mlp", "ada_mlp", "transformer", "transformer_cross_attn")


def _check_net(estimator: str, vf_estimator: Any) -> None:
    if not callable(vf_estimator) and vf_estimator not in VECTOR_FIELD_NETS:
        raise ValueError(
            f"estimator {estimator!r}: vf_estimator {vf_estimator!r} is not one of "
            f"{', '.join(VECTOR_FIELD_NETS)} or a builder callable"
        )


def make_fmpe(
    prior: Distribution,
    vf_estimator: Any = "mlp",
    *,
    hidden_features: int | None = None,
    num_layers: int | None = None,
    embedding_net: nn.Module | None = None,
    z_score_theta: str | None = None,
    z_score_x: str | None = None,
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
) -> Any:
    """An sbi ``FMPE`` trainer; network options go to ``sbi.neural_nets.posterior_flow_nn``."""
    from sbi.inference import FMPE

    _check_net("fmpe", vf_estimator)
    options = drop_none(
        hidden_features=hidden_features,
        num_layers=num_layers,
        embedding_net=embedding_net,
        z_score_theta=z_score_theta,
        z_score_x=z_score_x,
    )
    if options and not callable(vf_estimator):
        from sbi.neural_nets.factory import posterior_flow_nn

        vf_estimator = posterior_flow_nn(model=vf_estimator, **options)
    return FMPE(
        prior=prior,
        vf_estimator=vf_estimator,
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )


def make_npse(
    prior: Distribution,
    vf_estimator: Any = "mlp",
    *,
    sde_type: str = "ve",
    hidden_features: int | None = None,
    num_layers: int | None = None,
    embedding_net: nn.Module | None = None,
    z_score_theta: str | None = None,
    z_score_x: str | None = None,
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
) -> Any:
    """An sbi ``NPSE`` trainer; network options go to ``sbi.neural_nets.posterior_score_nn``.

    Arguments:
        sde_type: ``"ve"``, ``"vp"`` or ``"subvp"``.
    """
    from sbi.inference import NPSE

    _check_net("npse", vf_estimator)
    if sde_type not in ("ve", "vp", "subvp"):
        raise ValueError(f"estimator 'npse': sde_type {sde_type!r} is not one of ve, vp, subvp")
    options = drop_none(
        hidden_features=hidden_features,
        num_layers=num_layers,
        embedding_net=embedding_net,
        z_score_theta=z_score_theta,
        z_score_x=z_score_x,
    )
    if options and not callable(vf_estimator):
        from sbi.neural_nets.factory import posterior_score_nn

        vf_estimator = posterior_score_nn(model=vf_estimator, sde_type=sde_type, **options)
    return NPSE(
        prior=prior,
        vf_estimator=vf_estimator,
        sde_type=sde_type,
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )
