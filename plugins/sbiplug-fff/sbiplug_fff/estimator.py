"""sbi builders and trainers for free-form flows: ``build_fff``, ``build_mfff``, ``make_mfff``.

The builders follow sbi's ``ConditionalEstimatorBuilder`` protocol, so a free-form flow drops
into plain sbi code::

    from sbi.inference import NPE
    trainer = NPE(prior, density_estimator=sbiplug_fff.build_mfff(manifold="sphere"))

``make_fff`` / ``make_mfff`` are the factories behind the registered estimators ``fff`` and
``mfff``; they return sbi NPE trainers with sbiplug's trainer defaults
(:func:`sbiplug.toolkit.trainer_options`: no ``./sbi-logs``). The manifold trainer checks at
``append_simulations`` that the parameters lie on the declared manifold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from sbi.inference import NPE
from torch import Tensor, nn
from torch.distributions import Distribution
from torch.utils.data import DataLoader

from sbiplug.sbi_internals import LossArgs, TrainConfig, TrainingHooks
from sbiplug.toolkit import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    trainer_options,
    z_score_moments,
)
from sbiplug_fff.flow import FreeFormFlow, ManifoldFreeFormFlow
from sbiplug_fff.manifolds import Manifold, get_manifold

__all__ = [
    "FreeFormNPE",
    "ManifoldNPE",
    "build_fff",
    "build_mfff",
    "default_num_steps",
    "make_fff",
    "make_mfff",
]

Builder = Callable[[Tensor, Tensor], FreeFormFlow]


def _standardisation(values: Tensor, enabled: bool) -> dict[str, Tensor | None]:
    """The z-scoring of a batch (``None``: the identity) as ``shift`` and ``scale``."""
    shift, scale = z_score_moments(values) if enabled else (None, None)
    return {"shift": shift, "scale": scale}


def build_fff(
    *,
    hidden_features: int = 128,
    num_blocks: int = 2,
    beta: float = 25.0,
    latent_reconstruction_weight: float = 10.0,
    adaptive_beta: bool = True,
    hutchinson_samples: int = 1,
    embedding_net: nn.Module | None = None,
    z_score_theta: bool = True,
    z_score_x: bool = True,
    chunk_size: int | None = 1024,
) -> Builder:
    """A builder of a Euclidean :class:`FreeFormFlow` from sbi's first batch (theta, x).

    Arguments:
        hidden_features, num_blocks: Width and depth of the residual encoder and decoder.
        beta: Reconstruction weight (sum of squares in standardised theta; 25 in the authors'
            SBI configuration). With ``adaptive_beta`` it is relative to the posterior's
            width instead of the prior's, see :attr:`FreeFormFlow.training_beta`.
        latent_reconstruction_weight: Weight of |w - f(g(w))|^2 for latent draws w: the
            sampler's invertibility measured in latent units, i.e. relative to the
            posterior's width in every direction.
        adaptive_beta: Divide ``beta`` by the squared posterior scale per dimension that the
            last validation pass measured (the decoder's Jacobian): a posterior much narrower
            than its prior (two_moons: ~50x) then gets a large weight by itself, where a
            fixed 25 left the decoder no inverse of the encoder at the posterior's scale.
        hutchinson_samples: Hutchinson vectors per training step.
        embedding_net: Optional network for x.
        z_score_theta, z_score_x: Standardise theta and x with the batch statistics.
        chunk_size: Rows per vectorised Jacobian chunk in ``log_prob``.

    Returns:
        ``builder(batch_theta, batch_x) -> FreeFormFlow``.
    """

    def builder(batch_theta: Tensor, batch_x: Tensor) -> FreeFormFlow:
        theta_scaling = _standardisation(batch_theta, z_score_theta)
        x_scaling = _standardisation(batch_x, z_score_x)
        return FreeFormFlow(
            batch_theta.shape[-1],
            tuple(batch_x.shape[1:]),
            hidden_features=hidden_features,
            num_blocks=num_blocks,
            embedding_net=embedding_net,
            beta=beta,
            latent_reconstruction_weight=latent_reconstruction_weight,
            adaptive_beta=adaptive_beta,
            hutchinson_samples=hutchinson_samples,
            theta_shift=theta_scaling["shift"],
            theta_scale=theta_scaling["scale"],
            x_shift=x_scaling["shift"],
            x_scale=x_scaling["scale"],
            chunk_size=chunk_size,
        )

    return builder


def build_mfff(
    *,
    manifold: str | Manifold = "sphere",
    hidden_features: int = 128,
    num_blocks: int = 2,
    beta: float = 100.0,
    projection_weight: float = 0.0,
    uniform_reconstruction_weight: float = 0.0,
    latent_reconstruction_weight: float = 10.0,
    noise: float = 0.0,
    latent: str = "auto",
    latent_components: int = 4,
    latent_hidden_features: int = 64,
    hutchinson_samples: int = 1,
    embedding_net: nn.Module | None = None,
    z_score_x: bool = True,
    chunk_size: int | None = 1024,
) -> Builder:
    """A builder of a :class:`ManifoldFreeFormFlow` from sbi's first batch (theta, x).

    Arguments:
        manifold: ``"sphere"``, ``"torus"``, ``"so3"`` or a manifold object; its size comes
            from theta's dimension (sphere: S^(D-1), torus: T^(D/2)).
        beta: Loss weight, like ``projection_weight``, ``uniform_reconstruction_weight``,
            ``latent_reconstruction_weight`` and ``noise``; see :class:`ManifoldFreeFormFlow`.
        latent, latent_components, latent_hidden_features: ``"auto"`` (default: the mixture
            on the sphere and the torus, uniform on SO(3)), ``"mixture"`` (a von Mises(-Fisher)
            mixture whose parameters are a network of x) or ``"uniform"``, see
            :class:`ManifoldFreeFormFlow`.
        Other arguments: as in :func:`build_fff`.

    Returns:
        ``builder(batch_theta, batch_x) -> ManifoldFreeFormFlow``.
    """
    if not isinstance(manifold, Manifold):
        get_manifold(manifold)  # fail now on an unknown name

    def builder(batch_theta: Tensor, batch_x: Tensor) -> ManifoldFreeFormFlow:
        found = get_manifold(manifold, batch_theta.shape[-1])
        found.check(batch_theta, "parameters theta")
        x_scaling = _standardisation(batch_x, z_score_x)
        return ManifoldFreeFormFlow(
            found,
            tuple(batch_x.shape[1:]),
            hidden_features=hidden_features,
            num_blocks=num_blocks,
            embedding_net=embedding_net,
            beta=beta,
            projection_weight=projection_weight,
            uniform_reconstruction_weight=uniform_reconstruction_weight,
            latent_reconstruction_weight=latent_reconstruction_weight,
            noise=noise,
            latent=latent,
            latent_components=latent_components,
            latent_hidden_features=latent_hidden_features,
            hutchinson_samples=hutchinson_samples,
            x_shift=x_scaling["shift"],
            x_scale=x_scaling["scale"],
            chunk_size=chunk_size,
        )

    return builder


# Epoch budgets above this are sbi's "train until convergence" default: no schedule then.
_MAX_SCHEDULED_EPOCHS = 100_000


def default_num_steps(num_training: int) -> int:
    """The optimiser steps of a default ``train()``: 140 sqrt(N), within [1500, 50000].

    Grows sublinearly with the number N of training simulations (13,300 steps at 9,000).
    """
    return int(min(max(140 * math.sqrt(num_training), 1500), 50_000))


class FreeFormNPE(TrainingHooks, NPE):
    """sbi's NPE with a cosine learning-rate decay over a bounded epoch budget.

    The authors train free-form flows with a decaying rate (OneCycle); sbi's NPE keeps Adam's
    rate constant, which leaves narrow posteriors blurred. :meth:`train` without
    ``max_num_epochs`` sets the budget from :func:`default_num_steps`; over a finite budget
    E the rate of epoch e is
    ``lr * (final + (1 - final) * (1 + cos(pi e / (E + 1))) / 2)``; sbi's early stopping and
    choice of the best validation state are unchanged.

    Arguments:
        final_learning_rate_fraction: The rate at the last epoch relative to ``learning_rate``.
        **kwargs: Passed to :class:`sbi.inference.NPE`.
    """

    def __init__(self, *, final_learning_rate_fraction: float = 0.01, **kwargs: Any):
        if not 0 < final_learning_rate_fraction <= 1:
            raise ValueError(
                "final_learning_rate_fraction must be in (0, 1], got "
                f"{final_learning_rate_fraction}"
            )
        self.final_learning_rate_fraction = float(final_learning_rate_fraction)
        self._schedule: tuple[float, int] | None = None
        super().__init__(**kwargs)

    def train(
        self,
        training_batch_size: int = 128,
        learning_rate: float = 2e-3,
        max_num_epochs: int | None = None,
        stop_after_epochs: int | None = None,
        validation_fraction: float = 0.1,
        **kwargs: Any,
    ):
        """sbi's ``train`` with free-form defaults: batch 128, rate 2e-3, a bounded budget.

        Arguments:
            max_num_epochs: ``None`` (default): the epochs that make
                :func:`default_num_steps` optimiser steps for the number of training
                simulations, over which the rate decays.
            stop_after_epochs: sbi's early-stopping patience; ``None``: with the default
                budget a fifth of it, at least 20, so that small data sets (few steps per
                epoch) are not stopped before the rate has decayed; else sbi's 20.
            **kwargs: Passed to :meth:`sbi.inference.NPE.train`.
        """
        if max_num_epochs is None:
            theta = self.get_simulations()[0]
            num_training = len(theta) - int(validation_fraction * len(theta))
            steps_per_epoch = max(1, math.ceil(num_training / training_batch_size))
            max_num_epochs = math.ceil(default_num_steps(num_training) / steps_per_epoch)
            if stop_after_epochs is None:
                stop_after_epochs = max(20, math.ceil(max_num_epochs / 5))
        if stop_after_epochs is None:
            stop_after_epochs = 20  # sbi's default
        return super().train(
            training_batch_size=training_batch_size,
            learning_rate=learning_rate,
            max_num_epochs=max_num_epochs,
            stop_after_epochs=stop_after_epochs,
            validation_fraction=validation_fraction,
            **kwargs,
        )

    def learning_rate_at(self, epoch: int) -> float | None:
        """The scheduled learning rate of ``epoch`` (``None`` without a finite budget)."""
        if self._schedule is None:
            return None
        learning_rate, epochs = self._schedule
        cosine = (1 + math.cos(math.pi * min(epoch, epochs + 1) / (epochs + 1))) / 2
        final = self.final_learning_rate_fraction
        return learning_rate * (final + (1 - final) * cosine)

    def on_train_start(self, train_config: TrainConfig, train_loader: DataLoader) -> None:
        """Fix the schedule from ``learning_rate`` and a finite ``max_num_epochs``."""
        epochs = train_config.max_num_epochs
        self._schedule = (
            (train_config.learning_rate, epochs) if epochs < _MAX_SCHEDULED_EPOCHS else None
        )

    def train_epoch(
        self, train_loader: DataLoader, clip_max_norm: float | None, loss_args: LossArgs | None
    ) -> float:
        """sbi's epoch at the scheduled learning rate of ``self.epoch``."""
        learning_rate = self.learning_rate_at(self.epoch)
        if learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
        return super().train_epoch(train_loader, clip_max_norm, loss_args)


class ManifoldNPE(FreeFormNPE):
    """:class:`FreeFormNPE` with a manifold check on the parameters of ``append_simulations``.

    Arguments:
        manifold: The manifold the parameters live on (a name is sized from theta).
        **kwargs: Passed to :class:`FreeFormNPE`.
    """

    def __init__(self, manifold: str | Manifold, **kwargs: Any):
        self.manifold = manifold
        super().__init__(**kwargs)

    def append_simulations(self, theta: Tensor, x: Tensor, *args: Any, **kwargs: Any):
        theta = torch.as_tensor(theta)
        if theta.ndim != 2:
            raise ValueError(
                f"parameters theta must have shape (num_simulations, D), got {tuple(theta.shape)}"
            )
        manifold = get_manifold(self.manifold, theta.shape[-1])
        manifold.check(theta, "parameters theta passed to append_simulations")
        return super().append_simulations(theta, x, *args, **kwargs)


def make_fff(
    prior: Distribution | None,
    *,
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
    **network_options: Any,
) -> FreeFormNPE:
    """The registered estimator ``fff``: sbi NPE with a Euclidean free-form flow.

    Arguments:
        prior: The prior over parameters.
        device, show_progress_bars, tracker, log_dir: See
            :func:`sbiplug.toolkit.trainer_options`.
        **network_options: Passed to :func:`build_fff`.

    Returns:
        A :class:`FreeFormNPE` (its ``train()`` defaults: batch 128, rate 2e-3 decayed by a
        cosine over :func:`default_num_steps` steps).
    """
    return FreeFormNPE(
        prior=prior,
        density_estimator=build_fff(**network_options),
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )


def make_mfff(
    prior: Distribution | None,
    *,
    manifold: str | Manifold = "sphere",
    device: str = DEFAULT_DEVICE,
    show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
    tracker: Any = None,
    log_dir: str | None = None,
    **network_options: Any,
) -> ManifoldNPE:
    """The registered estimator ``mfff``: sbi NPE with a manifold free-form flow.

    Arguments:
        prior: The prior; its draws must lie on ``manifold`` (e.g.
            :class:`~sbiplug_fff.distributions.UniformManifold`).
        manifold: ``"sphere"``, ``"torus"`` or ``"so3"`` (a Study passes the simulator's
            ``parameter_manifold``).
        device, show_progress_bars, tracker, log_dir: See
            :func:`sbiplug.toolkit.trainer_options`.
        **network_options: Passed to :func:`build_mfff`.
    """
    found: str | Manifold = manifold
    if prior is not None:
        draws = prior.sample((16,))
        found = get_manifold(manifold, draws.shape[-1])
        found.check(draws, "prior draws")
    builder = build_mfff(manifold=found, **network_options)
    return ManifoldNPE(
        found,
        prior=prior,
        density_estimator=builder,
        **trainer_options(
            device=device, show_progress_bars=show_progress_bars, tracker=tracker, log_dir=log_dir
        ),
    )
