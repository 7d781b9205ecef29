"""NPE with the manifold total-correlation regulariser: disentangled flow latents.

The principal-manifold-flow objective (Cunningham et al., 2022) used by Galperin & Köthe
(AISTATS 2025, arXiv 2410.19426) is (1 - alpha) NLL + alpha sum_i [z_i^2 / 2 + log ||J_i||]
per sample, J the decoder Jacobian; up to a constant it is NLL + alpha * TC(z) with the
per-sample manifold total correlation TC = sum_i log ||J_i|| - log |det J| >= 0, which is 0 when
the decoder's columns are orthogonal. For a bijective flow J_dec(z) = J_enc(theta)^-1, so the
penalty needs one Jacobian of the (parallel) encoder direction per batch, not of the sampler.
:class:`TotalCorrelationNPE` is sbi's NPE (nflows or zuko flows) trained on NLL + alpha * TC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from sbi.inference import NPE
from torch import Tensor, nn
from torch.distributions import Distribution

from sbiplug.sbi_internals import LossArgs, TrainingHooks, trained_network
from sbiplug.toolkit import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    check_float,
    trainer_options,
)
from sbiplug_flowanalysis.jacobians import replicated_jacobian

__all__ = ["TotalCorrelationNPE", "make_total_correlation_npe", "total_correlation_penalty"]


def total_correlation_penalty(encoder: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    """Per-sample manifold total correlation of the decoder, from the encoder's Jacobian.

    Arguments:
        encoder: theta ``(m, D)`` -> z ``(m, D)`` of a bijective flow, rows independent (rows
            ``k * n + j`` of a replicated batch belong to row ``j``).
        theta: Points, shape ``(n, D)``.

    Returns:
        TC at z = encoder(theta), shape ``(n,)``, differentiable in the flow's parameters.
    """
    jacobian = replicated_jacobian(encoder, theta, theta.shape[1], create_graph=True)  # (n, D, D)
    decoder_jacobian = torch.linalg.inv(jacobian.double())
    log_norms = 0.5 * torch.log(decoder_jacobian.pow(2).sum(-2).clamp_min(1e-300)).sum(-1)
    return (log_norms + torch.linalg.slogdet(jacobian.double())[1]).to(theta.dtype)


def _batch_encoder(network: nn.Module, x: Tensor) -> Callable[[Tensor], Tensor]:
    """theta rows -> z for an sbi NFlowsFlow or ZukoFlow, the condition of row j being x[j]."""
    from sbi.neural_nets.estimators import NFlowsFlow, ZukoFlow

    embedded = network.embedding_net(x)
    if isinstance(network, ZukoFlow):

        def encoder(theta: Tensor) -> Tensor:
            context = embedded.repeat(theta.shape[0] // embedded.shape[0], 1)
            return network.net(context).transform(theta)

        return encoder
    if isinstance(network, NFlowsFlow):
        from sbiplug.sbi_internals import nflows_flow_parts

        transform = nflows_flow_parts(network)[0]

        def nflows_encoder(theta: Tensor) -> Tensor:
            context = embedded.repeat(theta.shape[0] // embedded.shape[0], 1)
            return transform(theta, context=context)[0]

        return nflows_encoder
    raise TypeError(
        f"the total-correlation regulariser needs an sbi flow (NFlowsFlow or ZukoFlow), got "
        f"{type(network).__name__}"
    )


class TotalCorrelationNPE(TrainingHooks, NPE):
    """sbi's NPE trained on NLL + alpha * (per-sample manifold total correlation).

    Arguments:
        alpha: Weight of the total correlation (0 is plain NPE; the authors use up to 1).
        **kwargs: Passed to :class:`sbi.inference.NPE` (``density_estimator`` an nflows or
            zuko flow name, ``"maf"`` by default as in sbi).

    The penalty costs one encoder pass over the batch replicated D times (D parameters) and a
    batched D x D inverse per step.
    """

    def __init__(self, *, alpha: float = 0.5, **kwargs: Any) -> None:
        self.alpha = check_float("alpha", alpha, minimum=0.0, owner="npe_total_correlation")
        super().__init__(**kwargs)

    def training_losses(self, batch: Any, loss_args: LossArgs | None) -> Tensor:
        """NLL + alpha * TC per row, shape ``(B,)``."""
        losses = super().training_losses(batch, loss_args)
        if self.alpha == 0.0:
            return losses
        theta, x = batch[0], batch[1]
        network = trained_network(self)
        device = next(network.parameters()).device
        theta, x = theta.to(device), x.to(device)
        with torch.enable_grad():
            penalty = total_correlation_penalty(_batch_encoder(network, x), theta)
        return losses + self.alpha * penalty.to(losses.device)


def make_total_correlation_npe(
    prior: Distribution | None,
    *,
    alpha: float = 0.5,
    density_estimator: str = "maf",
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
) -> TotalCorrelationNPE:
    """The registered estimator ``npe_total_correlation``.

    Arguments:
        prior: The prior over parameters.
        alpha: Weight of the per-sample manifold total correlation in the loss.
        density_estimator: An sbi flow name (nflows ``"maf"``, ``"nsf"``; zuko ``"zuko_nsf"``,
            ...).
        device, show_progress_bars, tracker, log_dir: See
            :func:`sbiplug.toolkit.trainer_options`.

    Returns:
        A :class:`TotalCorrelationNPE`.
    """
    return TotalCorrelationNPE(
        alpha=alpha,
        prior=prior,
        density_estimator=density_estimator,
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )
