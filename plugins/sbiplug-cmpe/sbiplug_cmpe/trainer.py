"""CMPE: consistency model posterior estimation as an sbi trainer.

Schmitt, Pratz, Köthe, Bürkner, Radev, *Consistency Models for Scalable and Fast Simulation-Based
Inference*, arXiv 2312.05440, trained by improved consistency training (Song & Dhariwal, arXiv
2310.14189). ``CMPE`` subclasses sbi's ``PosteriorEstimatorTrainer``: ``append_simulations(theta,
x).train(...)`` then ``build_posterior()``, usable from a plain sbi script::

    trainer = CMPE(prior)
    trainer.append_simulations(theta, x).train()
    posterior = trainer.build_posterior()          # sample / sample_batched; no log_prob
    samples = posterior.sample((1000,), x=x_o)

Differences from sbi's NPE training loop: the training length K (optimiser steps) is fixed when
training starts, because the discretisation curriculum N(k) and the cosine learning rate depend
on it (default :func:`~sbiplug_cmpe.training.default_num_steps` of the number of simulations);
there is no early stopping: sbi's loop runs one pass of all K steps, and the validation
consistency loss (final level, fixed noise) is reported but selects nothing; sbi's ``log_prob``
probe of a new network is skipped.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution
from torch.nn.utils.clip_grad import clip_grad_norm_
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sbiplug.sbi_internals import (
    LossArgs,
    SingleRoundPosteriorTrainer,
    TrainConfig,
    resolve_estimator,
    resolve_prior,
    set_latest_posterior,
    shows_progress_bars,
    trained_network,
    trainer_device,
    trainer_prior,
)
from sbiplug.toolkit import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    OptionError,
    Standardize,
    check_float,
    check_int,
    check_positive,
    check_positive_int,
    pretrain_embedding_net,
    trainer_options,
)
from sbiplug_cmpe.estimator import ConsistencyEstimator
from sbiplug_cmpe.network import ConsistencyNetwork
from sbiplug_cmpe.posterior import CMPEPosterior
from sbiplug_cmpe.training import (
    cosine_learning_rate,
    default_batch_size,
    default_learning_rate,
    default_num_steps,
    endless_batches,
)

__all__ = ["CMPE"]


class CMPE(SingleRoundPosteriorTrainer):
    """Consistency model posterior estimation (single round, amortised, sample-only).

    The defaults are the benchmarked configuration (``benchmarks/cmpe.py``): the paper's
    T = 10, eps = 1e-3, s0/s1 = 10/50 and 10 sampling steps, gradient clip norm 1, no dropout,
    and a residual MLP of width 64 with 2 blocks (cheap to sample); the batch size, the
    learning rate (cosine decay) and the fixed training length follow the number of
    simulations (:mod:`sbiplug_cmpe.training`). Theta is z-scored by default, so
    sigma_data = 1 per dimension is the per-dimension prior scale of the training draws.

    Arguments:
        prior: Prior over theta (rejection keeps posterior draws inside its support).
        steps: Default number of sampling steps (network evaluations per draw), >= 1.
        max_time: Largest noise level T; should exceed the posterior's spread (standardised).
        eps: Smallest noise level, 0 < eps < max_time.
        s0: Initial number of discretisation intervals of the curriculum.
        s1: Final number of discretisation intervals, >= s0.
        sigma_data: sigma_d, a float or one value per dimension. ``None``: 1 when theta is
            z-scored, else the per-dimension standard deviation of the training theta.
        z_score_theta: Standardise theta with the training draws' mean and std.
        z_score_x: Standardise x (per dimension) before the embedding net.
        hidden_features: Width of the residual MLP.
        num_blocks: Number of residual blocks (depth).
        dropout: Dropout probability in the residual blocks.
        time_features: Size of the Fourier embedding of t/T.
        embedding_net: Summary network h(x) trained jointly (any module mapping a batch of x
            to ``(batch, E)``); identity by default.
        summary_loss: Optional penalty on the embedding-net outputs ``(batch, E) -> scalar``,
            added to the training loss (e.g. an MMD to N(0, I) for misspecification detection).
        summary_loss_weight: Weight of ``summary_loss``.
        device: Training and sampling device, e.g. ``"cpu"`` or ``"cuda"``.
        tracker, log_dir: Training metrics go nowhere unless one of these is given (see
            :func:`sbiplug.toolkit.trainer_options`).
        show_progress_bars: Whether sbi prints training and sampling progress.
    """

    def __init__(
        self,
        prior: Distribution | None = None,
        *,
        steps: int = 10,
        max_time: float = 10.0,
        eps: float = 1e-3,
        s0: int = 10,
        s1: int = 50,
        sigma_data: float | Sequence[float] | Tensor | None = None,
        z_score_theta: bool = True,
        z_score_x: bool = True,
        hidden_features: int = 64,
        num_blocks: int = 2,
        dropout: float = 0.0,
        time_features: int = 32,
        embedding_net: nn.Module | None = None,
        summary_loss: Callable[[Tensor], Tensor] | None = None,
        summary_loss_weight: float = 1.0,
        device: str = DEFAULT_DEVICE,
        tracker: Any = None,
        log_dir: str | None = None,
        show_progress_bars: bool = DEFAULT_SHOW_PROGRESS_BARS,
        logging_level: int | str = "WARNING",
    ) -> None:
        _check_options(steps, max_time, eps, s0, s1, hidden_features, num_blocks, dropout)
        if summary_loss is not None and not callable(summary_loss):
            raise TypeError(f"CMPE summary_loss must be callable or None, got {summary_loss!r}")
        self.steps, self.max_time, self.eps, self.s0, self.s1 = steps, max_time, eps, s0, s1
        self.sigma_data = sigma_data
        self.z_score_theta, self.z_score_x = z_score_theta, z_score_x
        self.hidden_features, self.num_blocks = hidden_features, num_blocks
        self.dropout, self.time_features = dropout, time_features
        self.embedding_net = embedding_net
        self.summary_loss, self.summary_loss_weight = summary_loss, float(summary_loss_weight)
        super().__init__(
            prior=prior,
            density_estimator=self._build_consistency_estimator,
            logging_level=logging_level,
            **trainer_options(
                device=device,
                show_progress_bars=show_progress_bars,
                tracker=tracker,
                log_dir=log_dir,
            ),
        )
        self._validation_generator: torch.Generator | None = None
        self._requested_length: tuple[int | None, int | None] = (None, None)
        self._learning_rate = 1e-3
        self._batch_size = 128
        self._validated: tuple[int, float] = (-1, math.inf)

    # ----------------------------------------------------------------------------- building

    def _build_consistency_estimator(self, theta: Tensor, x: Tensor) -> ConsistencyEstimator:
        """Build the network for simulations ``theta`` ``(n, D)`` and ``x`` ``(n, ...)``.

        Data only set shapes and the z-scoring buffers, so a rebuilt network takes a saved
        ``state_dict`` (the persistence contract).
        """
        if theta.dim() != 2:
            raise ValueError(f"CMPE expects theta of shape (n, D), got {tuple(theta.shape)}")
        dim = theta.shape[1]
        theta_standardize = Standardize.from_data(theta, enabled=self.z_score_theta)
        embedding = self.embedding_net if self.embedding_net is not None else nn.Identity()
        embedding = nn.Sequential(Standardize.from_data(x, enabled=self.z_score_x), embedding)
        pretrain_embedding_net(embedding, x)  # a net with pretrain(x) learns from x first
        with torch.no_grad():
            probe = embedding(x[:2].to("cpu")) if len(x) else None
        if probe is None or probe.dim() < 1:
            raise ValueError("CMPE could not infer the size of the condition embedding from x")
        condition_features = probe.reshape(len(probe), -1).shape[1]
        net = ConsistencyNetwork(
            dim,
            condition_features,
            hidden_features=self.hidden_features,
            num_blocks=self.num_blocks,
            dropout=self.dropout,
            time_features=self.time_features,
            log_time_range=math.log(self.max_time / self.eps),
        )
        return ConsistencyEstimator(
            net,
            input_shape=theta.shape[1:],
            condition_shape=x.shape[1:],
            embedding_net=embedding,
            theta_standardize=theta_standardize,
            sigma_data=self._resolve_sigma_data(theta, theta_standardize),
            max_time=self.max_time,
            eps=self.eps,
            s0=self.s0,
            s1=self.s1,
            steps=self.steps,
        )

    def _resolve_sigma_data(self, theta: Tensor, standardize: Standardize) -> Tensor:
        """sigma_d per dimension, expressed in the (possibly standardised) space of the model."""
        dim = theta.shape[1]
        if self.sigma_data is None:
            if self.z_score_theta:
                return torch.ones(dim)
            return Standardize.from_data(theta).scale
        sigma = torch.as_tensor(self.sigma_data, dtype=torch.float32).flatten()
        if sigma.numel() == 1:
            sigma = sigma.expand(dim).clone()
        if sigma.numel() != dim or not bool((sigma > 0).all()):
            raise ValueError(
                f"CMPE sigma_data must be a positive float or {dim} positive values (one per "
                f"parameter), got {self.sigma_data!r}"
            )
        return sigma

    # Unlike NPE, skip sbi's ``log_prob`` probe of a new network: CMPE has no density.
    probe_new_network = False

    # ------------------------------------------------------------------------------- data

    def append_simulations(
        self,
        theta: Tensor,
        x: Tensor,
        proposal: Any = None,
        exclude_invalid_x: bool | None = None,
        data_device: str | None = None,
    ) -> CMPE:
        """Store simulations ``theta`` ``(n, D)`` and ``x`` ``(n, ...)`` drawn from the prior.

        Returns:
            The trainer, for chaining.
        """
        theta, x = torch.as_tensor(theta), torch.as_tensor(x)
        if theta.dim() == 0 or x.dim() == 0 or theta.shape[0] != x.shape[0]:
            raise ValueError(
                "CMPE append_simulations: theta and x must have the same number of rows, got "
                f"theta {tuple(theta.shape)} and x {tuple(x.shape)}"
            )
        if proposal is not None and proposal is not trainer_prior(self):
            raise ValueError(
                "CMPE is single-round: simulations must come from the prior (proposal=None); "
                "sequential rounds would need a proposal correction that CMPE does not have"
            )
        return super().append_simulations(
            theta, x, proposal=None, exclude_invalid_x=exclude_invalid_x, data_device=data_device
        )

    # ---------------------------------------------------------------------------- training

    def train(
        self,
        num_steps: int | None = None,
        training_batch_size: int | None = None,
        learning_rate: float | None = None,
        validation_fraction: float = 0.02,
        clip_max_norm: float | None = 1.0,
        max_num_epochs: int | None = None,
        resume_training: bool = False,
        retrain_from_scratch: bool = False,
        show_train_summary: bool = False,
        dataloader_kwargs: dict | None = None,
        stop_after_epochs: int | None = None,
        **unused: Any,
    ) -> ConsistencyEstimator:
        """Consistency-train the network for a fixed number of optimiser steps.

        The training length K is fixed here and stored with the step k in the network's
        buffers. Training always runs to K (no early stopping): the returned network is the
        one after the last step of the curriculum.

        Arguments:
            num_steps: Training length K in optimiser steps. Default
                :func:`~sbiplug_cmpe.training.default_num_steps` of the number of training
                simulations and the batch size (19,600 steps of 128 at 1k simulations,
                15,650 of 512 at 10k).
            training_batch_size: Batch size. Default
                :func:`~sbiplug_cmpe.training.default_batch_size` of the number of training
                simulations (128 below about 3.6k, 512 from about 7.2k).
            learning_rate: Initial Adam learning rate, decayed by a cosine over K. Default
                :func:`~sbiplug_cmpe.training.default_learning_rate` of the batch size.
            validation_fraction: Fraction of simulations held out to report a validation
                consistency loss (``summary["best_validation_loss"]``); it selects nothing.
            clip_max_norm: Gradient clip norm (paper: 1); ``None`` for none.
            max_num_epochs: Alternative to ``num_steps``: K = this many passes over the
                training simulations.
            resume_training: Continue an interrupted ``train`` call to its K: optimiser,
                curriculum step k and learning-rate schedule carry on.
            retrain_from_scratch: Build a fresh network.
            show_train_summary: Print the steps and the validation loss at the end.
            dataloader_kwargs: Extra arguments of the torch data loaders.
            stop_after_epochs: Not supported (CMPE does not stop early); must be ``None``.

        Returns:
            The trained :class:`ConsistencyEstimator`.
        """
        for name in ("calibration_kernel", "force_first_round_loss", "discard_prior_samples"):
            if unused.pop(name, None) not in (None, False):
                raise OptionError(f"CMPE does not support the sbi NPE option {name!r}")
        if unused:
            raise TypeError(f"CMPE.train got unexpected options {sorted(unused)}")
        if stop_after_epochs is not None:
            raise OptionError(
                "CMPE.train: stop_after_epochs is not supported; consistency training runs its "
                "curriculum to the end (set its length with num_steps= or max_num_epochs=)"
            )
        if num_steps is not None and max_num_epochs is not None:
            raise OptionError("CMPE.train: pass num_steps= or max_num_epochs=, not both")
        if num_steps is not None:
            check_positive_int("num_steps", num_steps, owner="CMPE.train")
        if max_num_epochs is not None:
            check_positive_int("max_num_epochs", max_num_epochs, owner="CMPE.train")
        if training_batch_size is not None:
            check_positive_int("training_batch_size", training_batch_size, owner="CMPE.train")
        if learning_rate is not None:
            check_positive("learning_rate", learning_rate, owner="CMPE.train")
        check_float(
            "validation_fraction",
            validation_fraction,
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
            exclusive_maximum=True,
            owner="CMPE.train",
        )
        net = trained_network(self)
        if resume_training:
            if net is None or retrain_from_scratch:
                raise OptionError("CMPE.train: resume_training=True needs a network trained before")
            if int(net.step) >= int(net.total_steps):
                raise OptionError(
                    "CMPE.train: nothing to resume, training already ran its "
                    f"{int(net.total_steps)} steps; call train() again (optionally "
                    "num_steps=...) for a new schedule"
                )
        if training_batch_size is None:
            num_simulations = len(self.get_simulations()[0])
            num_training = num_simulations - int(validation_fraction * num_simulations)
            training_batch_size = default_batch_size(num_training)
        if learning_rate is None:
            learning_rate = default_learning_rate(training_batch_size)
        self._requested_length = (num_steps, max_num_epochs)
        self._batch_size = training_batch_size
        self._learning_rate = float(learning_rate)
        # sbi's loop runs epochs 0..max_num_epochs (at least two): the first sbi epoch holds
        # all K steps, the second finds none left and changes nothing.
        epoch = int(getattr(self, "epoch", 0)) if resume_training else 0
        self._validated = (-1, math.inf)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*max_num_epochs.*", category=UserWarning)
            return super().train(
                training_batch_size=training_batch_size,
                learning_rate=learning_rate,
                validation_fraction=validation_fraction,
                stop_after_epochs=2**31 - 1,
                max_num_epochs=epoch + 1,
                clip_max_norm=clip_max_norm,
                resume_training=resume_training,
                force_first_round_loss=True,
                retrain_from_scratch=retrain_from_scratch,
                show_train_summary=show_train_summary,
                dataloader_kwargs=dataloader_kwargs,
            )

    def on_train_start(self, train_config: TrainConfig, train_loader: DataLoader) -> None:
        """Fix the training length K, unless resuming an interrupted schedule."""
        net: ConsistencyEstimator = trained_network(self)  # type: ignore[assignment]
        if train_config.resume_training:
            return
        num_steps, max_num_epochs = self._requested_length
        if num_steps is None:
            if max_num_epochs is not None:
                num_steps = max_num_epochs * len(train_loader)
            else:
                # The requested batch, not sbi's (clipped to the training rows): a tiny data
                # set takes the steps of its default batch, not more passes.
                num_steps = default_num_steps(
                    len(train_loader.sampler), batch_size=self._batch_size
                )
        net.total_steps.fill_(num_steps)
        net.step.zero_()

    def _batch_losses(self, batch: Sequence[Tensor], generator=None, num_intervals=None) -> Tensor:
        """Consistency loss per row of a batch, plus the weighted summary penalty if any."""
        net: ConsistencyEstimator = trained_network(self)  # type: ignore[assignment]
        device = trainer_device(self)
        theta, x = batch[0].to(device), batch[1].to(device)
        context = net.embed_condition(x)
        losses = net.consistency_loss(
            theta, context, num_intervals=num_intervals, generator=generator
        )
        if self.summary_loss is not None:
            losses = losses + self.summary_loss_weight * self.summary_loss(context)
        return losses

    def training_losses(self, batch: Sequence[Tensor], loss_args: LossArgs | None) -> Tensor:
        """Consistency loss per row ``(B,)`` at the curriculum's current N(k), fresh noise."""
        return self._batch_losses(batch)

    def validation_losses(self, batch: Sequence[Tensor], loss_args: LossArgs | None) -> Tensor:
        """Consistency loss per row ``(B,)`` at the final level s1 with the fixed noise."""
        net: ConsistencyEstimator = trained_network(self)  # type: ignore[assignment]
        return self._batch_losses(batch, generator=self._validation_generator, num_intervals=net.s1)

    def train_epoch(
        self, train_loader: DataLoader, clip_max_norm: float | None, loss_args: LossArgs | None
    ) -> float:
        """All remaining steps k < K: loss, clipped Adam step, cosine learning rate, k += 1."""
        net: ConsistencyEstimator = trained_network(self)  # type: ignore[assignment]
        parameters = [p for p in net.parameters() if p.requires_grad]
        if not self.optimizer.defaults.get("fused"):
            # sbi's fresh Adam (never one with state: a resumed run keeps this fused one),
            # fused into one kernel: a small network takes many cheap steps, and the
            # per-tensor update costs a tenth of each.
            self.optimizer = torch.optim.Adam(parameters, lr=self._learning_rate, fused=True)
        remaining = int(net.total_steps) - int(net.step)
        batches = endless_batches(train_loader, trainer_device(self))
        progress = tqdm(total=remaining, disable=not shows_progress_bars(self), desc="CMPE steps")
        # Summed on the training device: no host synchronisation per step on a GPU.
        loss_sum, count = torch.zeros((), device=trainer_device(self)), 0
        step, total = int(net.step), int(net.total_steps)
        for _ in range(remaining):
            for group in self.optimizer.param_groups:
                group["lr"] = cosine_learning_rate(self._learning_rate, step, total)
            self.optimizer.zero_grad(set_to_none=True)
            losses = self.training_losses(next(batches), loss_args)
            losses.mean().backward()
            if clip_max_norm is not None:
                clip_grad_norm_(parameters, max_norm=clip_max_norm, foreach=True)
            self.optimizer.step()
            step += 1
            net.step.fill_(step)
            loss_sum += losses.detach().sum()
            count += len(losses)
            progress.update()
        progress.close()
        return float(loss_sum) / max(count, 1)

    def validate_epoch(self, val_loader: DataLoader, loss_args: LossArgs | None) -> float:
        """Validation consistency loss, for the summary only; it selects nothing.

        sbi's loop keeps its best-validation network. The first sbi epoch runs all K steps and
        its loss is returned finite, so it beats the start; the second epoch runs no step and
        returns the same value, so sbi keeps (or reloads) the network at the end of the
        curriculum.
        """
        net: ConsistencyEstimator = trained_network(self)  # type: ignore[assignment]
        step = int(net.step)
        if self._validated[0] != step:
            # The same noise and time pairs every call make validation losses comparable.
            self._validation_generator = torch.Generator().manual_seed(0)
            loss = super().validate_epoch(val_loader, loss_args)
            self._validated = (step, loss if math.isfinite(loss) else sys.float_info.max)
        return self._validated[1]

    # --------------------------------------------------------------------------- posterior

    def build_posterior(
        self,
        density_estimator: ConsistencyEstimator | None = None,
        prior: Distribution | None = None,
        sample_with: str = "direct",
        steps: int | None = None,
        max_sampling_batch_size: int = 10_000,
        warn_acceptance: float = 0.1,
        **unused: Any,
    ) -> CMPEPosterior:
        """Wrap the trained consistency model in a :class:`CMPEPosterior` (a DirectPosterior).

        Arguments:
            density_estimator: Estimator to use; default the trained one (copied).
            prior: Prior for rejection; default the trainer's prior.
            sample_with: Only ``"direct"``: MCMC, VI, rejection and importance sampling need
                a density, which CMPE does not have.
            steps: Sampling steps of this posterior (default: the trainer's ``steps``).
            max_sampling_batch_size: Draws per rejection-sampling batch.
            warn_acceptance: Warn when fewer draws than this fraction land in the prior support.

        Returns:
            The posterior, with ``sample``, ``sample_batched`` and ``set_default_x``.
        """
        if sample_with != "direct":
            raise ValueError(
                f"CMPE supports only sample_with='direct', got {sample_with!r}: "
                "MCMC, VI, rejection and importance sampling need log_prob, which CMPE lacks"
            )
        if any(value is not None for value in unused.values()):
            raise TypeError(f"CMPE.build_posterior got unsupported options {sorted(unused)}")
        if steps is not None:
            steps = check_positive_int("steps", steps, owner="CMPE")
        prior = resolve_prior(self, prior, "direct")
        if density_estimator is None:
            if trained_network(self) is None:
                raise RuntimeError("CMPE has no trained network: call .train() first")
            estimator, device = trained_network(self), trainer_device(self)
        else:
            estimator, device = resolve_estimator(self, density_estimator)
        estimator = deepcopy(estimator)
        estimator.eval()
        if steps is not None:
            estimator.steps = steps
        posterior = CMPEPosterior(
            posterior_estimator=estimator,
            prior=prior,
            warn_acceptance=warn_acceptance,
            show_progress_bars=shows_progress_bars(self),
            max_sampling_batch_size=max_sampling_batch_size,
            device=device,
        )
        set_latest_posterior(self, posterior)
        return posterior


def _check_options(
    steps: int,
    max_time: float,
    eps: float,
    s0: int,
    s1: int,
    hidden_features: int,
    num_blocks: int,
    dropout: float,
) -> None:
    """Raise an :class:`~sbiplug.toolkit.OptionError` naming the bad CMPE option."""
    check_positive_int("steps", steps, owner="CMPE")
    check_positive("eps", eps, owner="CMPE")
    if not eps < check_float("max_time", max_time, owner="CMPE"):
        raise OptionError(f"CMPE: eps must be smaller than max_time T = {max_time!r}, got {eps!r}")
    check_positive_int("s0", s0, owner="CMPE")
    if check_positive_int("s1", s1, owner="CMPE") < s0:
        raise OptionError(
            f"CMPE: s1 must be >= s0 = {s0} (the curriculum grows from s0 to s1), got {s1!r}"
        )
    check_positive_int("hidden_features", hidden_features, owner="CMPE")
    check_int("num_blocks", num_blocks, minimum=0, owner="CMPE")
    check_float("dropout", dropout, minimum=0.0, maximum=1.0, exclusive_maximum=True, owner="CMPE")
