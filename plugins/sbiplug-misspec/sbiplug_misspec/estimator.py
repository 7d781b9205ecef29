"""NPE with an MMD-regularised summary network (estimator ``npe_mmd``).

Schmitt, Bürkner, Köthe & Radev, *Detecting Model Misspecification in Amortized Bayesian
Inference with Neural Networks* (GCPR 2023, arXiv 2112.08866): the embedding network h and the
posterior density estimator q are trained jointly on

    L = E[-log q(θ | h(x))] + mmd_weight · MMD²[h(x) ‖ N(0, I_S)],

so that summaries of data from the model follow a standard normal and data the model does not
produce stand out (see :func:`sbiplug_misspec.misspecification_test`). A summary network may
declare other standard deviations for the target in an attribute ``target_scale``; the
``"centred"`` DeepSet's shape block has 0.5. The trainer is sbi's :class:`~sbi.inference.NPE_C`
with the penalty added to its loss; everything else (density estimators, posteriors,
``run_sbc``, multi-round use) is sbi's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sbi.inference import NPE_C
from sbi.neural_nets import posterior_nn
from torch import Tensor, nn
from torch.distributions import Distribution

from sbiplug.sbi_internals import (
    LossArgs,
    TrainingHooks,
    set_network_builder,
    trained_network,
    trainer_device,
)
from sbiplug.toolkit import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    check_positive_int,
    pretrain_embedding_net,
    trainer_options,
)
from sbiplug_misspec.networks import default_embedding_net
from sbiplug_misspec.regularizer import KernelName, SummaryMMD

__all__ = ["NPEMMD"]


class NPEMMD(TrainingHooks, NPE_C):
    """sbi NPE whose summary network is pulled towards N(0, I) by an MMD penalty.

    Arguments:
        prior: The prior over parameters.
        density_estimator: Any sbi posterior density estimator name: ``"zuko_maf"`` (default),
            ``"maf"``, ``"nsf"``, ``"mdn"``, ``"zuko_nsf"``, ... The default is zuko's MAF because
            sbi's nflows ``"maf"`` learned far more slowly behind a trained summary net in our
            runs (gaussian_means, 2000 simulations, 11 epochs: validation loss 0.6 against -1.7).
        embedding_net: The summary network; default a DeepSet for set-valued data
            ``(n, d)`` or an MLP for vectors, both with a linear output of ``summary_dim``.
        summary_dim: S, the default network's output size; default twice the number of
            parameters (slightly overcomplete, as in the paper).
        mmd_weight: γ, the penalty's weight (1 in the paper); 0 gives plain NPE.
        kernel: ``"imq"`` (default) or ``"gaussian"`` 19-scale kernel mixture.
        embedding_hidden_features: Width of the default summary network.
        embedding_num_layers: Hidden layers of each part of the default summary network.
        embedding_pooling: The default DeepSet's pooling: ``"mean"`` (default; plain DeepSet),
            ``"centred"`` (the set mean, affine and whitened, and a shape block of summaries
            of the centred set: detects a wrong noise level or contamination as well as a
            wrong prior; for location-type set data, see :mod:`sbiplug_misspec.networks`) or
            ``"mean_std"``.
        embedding_shape_scale: Standard deviation of the ``"centred"`` shape block, and of
            the penalty's normal target there (the location block's is 1).
        embedding_shape_dim: Size of the ``"centred"`` shape block, next to the d summaries
            of the set mean (d = data dimension). Default: ``summary_dim`` − d if
            ``summary_dim`` is given, else d.
        density_estimator_options: Further options for sbi's ``posterior_nn`` (e.g.
            ``hidden_features``, ``num_transforms``, ``z_score_x``).
        device: Training device.
        tracker, log_dir: Training metrics go nowhere unless one of these is given (see
            :func:`sbiplug.toolkit.trainer_options`).
        show_progress_bars: Whether training shows a progress bar.
    """

    def __init__(
        self,
        prior: Distribution | None = None,
        density_estimator: str = "zuko_maf",
        *,
        embedding_net: nn.Module | None = None,
        summary_dim: int | None = None,
        mmd_weight: float = 1.0,
        kernel: KernelName = "imq",
        embedding_hidden_features: int = 64,
        embedding_num_layers: int = 2,
        embedding_pooling: str = "mean",
        embedding_shape_scale: float = 0.5,
        embedding_shape_dim: int | None = None,
        density_estimator_options: dict[str, Any] | None = None,
        device: str = DEFAULT_DEVICE,
        tracker: Any = None,
        log_dir: str | None = None,
        show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    ) -> None:
        if not isinstance(density_estimator, str):
            raise TypeError(
                "npe_mmd: density_estimator must be an sbi model name such as 'maf', 'nsf' or "
                f"'zuko_nsf' (the summary network is added here), got {density_estimator!r}"
            )
        if embedding_net is not None and not isinstance(embedding_net, nn.Module):
            raise TypeError(
                f"npe_mmd: embedding_net must be a torch.nn.Module, got {type(embedding_net)}"
            )
        for name, value in (
            ("summary_dim", summary_dim),
            ("embedding_shape_dim", embedding_shape_dim),
        ):
            if value is not None:
                check_positive_int(name, value, owner="npe_mmd")
        super().__init__(
            prior=prior,
            density_estimator=density_estimator,
            **trainer_options(
                device=device,
                show_progress_bars=show_progress_bars,
                tracker=tracker,
                log_dir=log_dir,
            ),
        )
        self.density_estimator_name = density_estimator
        self.density_estimator_options = dict(density_estimator_options or {})
        self.summary_dim = summary_dim
        self.embedding_hidden_features = embedding_hidden_features
        self.embedding_num_layers = embedding_num_layers
        self.embedding_pooling = embedding_pooling
        self.embedding_shape_scale = embedding_shape_scale
        self.embedding_shape_dim = embedding_shape_dim
        self._user_embedding_net = embedding_net
        self.summary_regularizer = SummaryMMD(weight=mmd_weight, kernel=kernel)
        set_network_builder(self, self._build_density_estimator)

    @property
    def mmd_weight(self) -> float:
        return self.summary_regularizer.weight

    @property
    def embedding_net(self) -> nn.Module:
        """The trained summary network h (with sbi's input z-scoring in front)."""
        network = trained_network(self)
        if network is None:
            raise RuntimeError("npe_mmd: train the estimator before asking for its embedding net")
        return network.embedding_net

    def _build_density_estimator(self, theta: Tensor, x: Tensor) -> nn.Module:
        """Build the summary network for ``x``'s shape, then sbi's density estimator on it."""
        if self._user_embedding_net is not None:
            summary_net = self._user_embedding_net
        else:
            summary_dim = self.summary_dim or 2 * theta[0].numel()
            if self.embedding_pooling == "centred" and x.ndim == 3:
                # The set mean (d summaries) and the shape block: embedding_shape_dim, or what
                # summary_dim leaves, or one per data coordinate.
                data_dim = x.shape[-1]
                if self.embedding_shape_dim is not None:
                    if self.summary_dim not in (None, data_dim + self.embedding_shape_dim):
                        raise ValueError(
                            f"npe_mmd: summary_dim={self.summary_dim} does not match "
                            f"embedding_shape_dim={self.embedding_shape_dim} plus the {data_dim} "
                            "summaries of the set mean; give one of the two"
                        )
                    summary_dim = data_dim + self.embedding_shape_dim
                elif self.summary_dim is None:
                    summary_dim = 2 * data_dim
            summary_net = default_embedding_net(
                x.shape[1:],
                summary_dim,
                hidden_features=self.embedding_hidden_features,
                num_layers=self.embedding_num_layers,
                pooling=self.embedding_pooling,
                shape_scale=self.embedding_shape_scale,
            )
        # The target's per-summary scale is the network's to declare (centred: shape block).
        self.summary_regularizer = SummaryMMD(
            weight=self.summary_regularizer.weight,
            kernel=self.summary_regularizer.kernel,
            target_scale=getattr(summary_net, "target_scale", 1.0),
        )
        build = posterior_nn(
            model=self.density_estimator_name,
            embedding_net=summary_net,
            **self.density_estimator_options,
        )
        network = build(theta, x)
        pretrain_embedding_net(network.embedding_net, x)  # a net with pretrain(x) learns x first
        return network

    def training_losses(self, batch: Sequence[Tensor], loss_args: LossArgs | None) -> Tensor:
        """sbi's per-sample NPE loss ``(B,)`` plus the batch's summary penalty (same per row).

        Training only: validation (early stopping and the choice of the weights kept) watches
        the posterior loss alone (:meth:`validation_losses`).
        """
        embedding = trained_network(self).embedding_net
        x = batch[1].to(trainer_device(self))
        captured: list[Tensor] = []
        # Catch the summaries the density estimator computes anyway, instead of a second pass.
        handle = embedding.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            loss = super().training_losses(batch, loss_args)
        finally:
            handle.remove()
        if self.summary_regularizer.weight == 0.0:
            return loss
        if len(captured) == 1 and captured[0].shape[0] == x.shape[0]:
            summaries = captured[0]
        else:  # e.g. the atomic loss of later rounds embeds repeated rows
            summaries = embedding(x)
        penalty = self.summary_regularizer(summaries.reshape(summaries.shape[0], -1))
        return loss + penalty

    def validation_losses(self, batch: Sequence[Tensor], loss_args: LossArgs | None) -> Tensor:
        """sbi's per-sample NPE loss ``(B,)``, without the penalty.

        The penalty's minibatch estimate is noisy (fresh normal draws, a random batch): on the
        validation loss it would make sbi keep the weights of a lucky draw rather than those of
        the best posterior, which cost accuracy at short training budgets.
        """
        return TrainingHooks.training_losses(self, batch, loss_args)
