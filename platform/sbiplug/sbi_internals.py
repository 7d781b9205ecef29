"""The one seam between sbiplug and sbi's private internals.

sbi's trainers keep their network, builder, device and prior in private attributes, and their
training loop is a chain of private methods (``_run_training_loop`` -> ``_train_epoch`` /
``_validate_epoch`` -> ``_get_losses``). Nothing in sbiplug or its plugins touches those names
directly: they go through this module, so an sbi upgrade that renames one breaks here, in one
place, and ``tests/platform/test_sbi_internals.py`` says which name went missing.

What it offers: network access (:func:`trained_network`, :func:`build_network`,
:func:`install_network`, ...), trainer state (:func:`trainer_device`, :func:`trainer_prior`, ...),
custom training loops (the mixin :class:`TrainingHooks`, put before the sbi trainer in the bases,
turns sbi's private loop methods into public hooks; :class:`SingleRoundPosteriorTrainer` is the
base of posterior trainers without a proposal-corrected loss), flow internals
(:func:`nflows_flow_parts`), the console (:func:`training_console`: sbi's epoch counter as a tqdm
bar on stderr) and shape helpers (:func:`check_condition_shape`, :func:`broadcast_and_align`,
:func:`allow_missing_trials`, ...).

:data:`SBI_PRIVATE_API` and :data:`SBI_PRIVATE_SIGNATURES` list every private sbi name used
here; the seam test checks them against the installed sbi.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import torch
from sbi.inference.trainers._contracts import LossArgs, TrainConfig
from sbi.inference.trainers.npe.npe_base import PosteriorEstimatorTrainer
from torch import Tensor, nn
from torch.distributions import Distribution
from torch.utils.data import DataLoader

__all__ = [
    "SBI_PRIVATE_API",
    "SBI_PRIVATE_SIGNATURES",
    "LossArgs",
    "SingleRoundPosteriorTrainer",
    "TrainConfig",
    "TrainingHooks",
    "allow_missing_trials",
    "broadcast_and_align",
    "build_network",
    "check_condition_shape",
    "check_input_shape",
    "install_network",
    "is_trainer",
    "nflows_flow_parts",
    "resolve_estimator",
    "resolve_prior",
    "set_latest_posterior",
    "set_network_builder",
    "set_posterior_purpose",
    "shows_progress_bars",
    "trained_network",
    "trainer_device",
    "trainer_prior",
    "training_console",
]

NetworkBuilder = Callable[[Tensor, Tensor], nn.Module]

#: The private sbi names this module relies on, by the sbi class (or module) that has them.
SBI_PRIVATE_API: dict[str, tuple[str, ...]] = {
    "sbi.inference.trainers.base.NeuralInference": (
        "_neural_net",
        "_x_shape",
        "_device",
        "_prior",
        "_posterior",
        "_show_progress_bars",
        "_resolve_prior",
        "_resolve_estimator",
        "_initialize_neural_network",
        "_run_training_loop",
        "_train_epoch",
        "_validate_epoch",
        "_get_losses",
        "_maybe_show_progress",
        "_report_convergence_at_end",
    ),
    "sbi.inference.trainers.npe.npe_base.PosteriorEstimatorTrainer": (
        "_build_neural_net",
        "_log_prob_proposal_posterior",
    ),
    "sbi.neural_nets.estimators.base.ConditionalEstimator": (
        "_check_condition_shape",
        "_check_input_shape",
        "_broadcast_and_align",
    ),
    "sbi.inference.posteriors.base_posterior.NeuralPosterior": (
        "_purpose",
        "_x_else_default_x",
        "_posterior_sampler",
        "_x",
        "_map",
        "_device",
    ),
    "sbi.inference.trainers._contracts": ("LossArgs", "TrainConfig"),
}

#: Parameters of the private sbi methods that :class:`TrainingHooks` overrides or calls.
SBI_PRIVATE_SIGNATURES: dict[str, tuple[str, ...]] = {
    "sbi.inference.posteriors.base_posterior.NeuralPosterior._x_else_default_x": ("self", "x"),
    "sbi.inference.trainers.base.NeuralInference._run_training_loop": (
        "self",
        "train_loader",
        "val_loader",
        "train_config",
        "loss_args",
        "summarization_kwargs",
    ),
    "sbi.inference.trainers.base.NeuralInference._train_epoch": (
        "self",
        "train_loader",
        "clip_max_norm",
        "loss_args",
    ),
    "sbi.inference.trainers.base.NeuralInference._validate_epoch": (
        "self",
        "val_loader",
        "loss_args",
    ),
    "sbi.inference.trainers.npe.npe_base.PosteriorEstimatorTrainer._get_losses": (
        "self",
        "batch",
        "loss_args",
    ),
    "sbi.inference.trainers.npe.npe_base.PosteriorEstimatorTrainer._initialize_neural_network": (
        "self",
        "retrain_from_scratch",
        "start_idx",
    ),
    "sbi.inference.trainers.base.NeuralInference._maybe_show_progress": ("show", "epoch"),
    "sbi.inference.trainers.base.NeuralInference._report_convergence_at_end": (
        "self",
        "epoch",
        "max_num_epochs",
    ),
    "sbi.inference.trainers.npe.npe_base.PosteriorEstimatorTrainer._log_prob_proposal_posterior": (
        "self",
        "theta",
        "x",
        "masks",
        "proposal",
    ),
}


# ------------------------------------------------------------------------- network access


def is_trainer(obj: Any) -> bool:
    """Whether ``obj`` is an sbi-style trainer (it has a network slot) rather than a network."""
    return hasattr(obj, "_neural_net") and not isinstance(obj, nn.Module)


def trained_network(trainer: Any) -> nn.Module | None:
    """The network ``trainer`` trains: what its ``train()`` returned, ``None`` before that.

    Arguments:
        trainer: An sbi trainer (``NeuralInference`` or one with the same network slot).

    Returns:
        The trainer's estimator (e.g. a ``ConditionalDensityEstimator`` mapping theta
        ``(B, *theta_shape)`` and x ``(B, *x_shape)``), the very object sbi trains, not a copy.
    """
    return getattr(trainer, "_neural_net", None)


def build_network(trainer: Any, theta: Tensor, x: Tensor) -> nn.Module:
    """A fresh network from ``trainer``'s own builder, sized on example rows.

    Arguments:
        trainer: An sbi trainer built with a ``density_estimator`` name or builder.
        theta: Example parameters, shape ``(n, *theta_shape)`` (also set z-scoring buffers).
        x: Example data, shape ``(n, *x_shape)``.

    Returns:
        The untrained network (not installed in the trainer).
    """
    return trainer._build_neural_net(theta, x)


def set_network_builder(trainer: Any, builder: NetworkBuilder) -> None:
    """Make ``builder(theta, x) -> nn.Module`` the network builder of ``trainer``.

    sbi stores the builder when the trainer is created; a subclass that needs its own state to
    build (e.g. a summary network sized on x) replaces it after ``super().__init__``.
    """
    trainer._build_neural_net = builder


def install_network(trainer: Any, network: nn.Module, x_shape: Sequence[int]) -> None:
    """Install a trained ``network`` in ``trainer``: ``build_posterior()`` then uses it.

    Arguments:
        trainer: The sbi trainer.
        network: The network, e.g. rebuilt by :func:`build_network` with loaded weights.
        x_shape: Event shape of one observation x (without the batch dimension).
    """
    trainer._neural_net = network
    trainer._x_shape = tuple(x_shape)


# --------------------------------------------------------------------------- trainer state


def trainer_device(trainer: Any) -> str | torch.device:
    """The device ``trainer`` trains and samples on (sbi's processed ``device`` option)."""
    return trainer._device


def trainer_prior(trainer: Any) -> Distribution | None:
    """The prior ``trainer`` was created with (``None`` if none was given)."""
    return trainer._prior


def shows_progress_bars(trainer: Any) -> bool:
    """Whether ``trainer`` was asked to show progress bars."""
    return bool(trainer._show_progress_bars)


def resolve_prior(trainer: Any, prior: Distribution | None, sample_with: str = "direct") -> Any:
    """sbi's choice of prior for ``build_posterior``: ``prior`` checked, else the trainer's.

    Raises:
        ValueError: when there is neither (sbi's message).
    """
    return trainer._resolve_prior(prior, sample_with)


def resolve_estimator(trainer: Any, estimator: nn.Module | None) -> tuple[nn.Module, Any]:
    """sbi's choice of estimator for ``build_posterior`` and the device it lives on.

    Arguments:
        trainer: The sbi trainer.
        estimator: An explicit estimator (checked, its device inferred), or ``None`` for the
            trained network on the trainer's device.

    Returns:
        ``(estimator, device)``.
    """
    return trainer._resolve_estimator(estimator)


def set_latest_posterior(trainer: Any, posterior: Any) -> None:
    """Record ``posterior`` as the trainer's latest, as sbi's own ``build_posterior`` does."""
    trainer._posterior = posterior


# ------------------------------------------------------------------ estimators, posteriors


def check_condition_shape(estimator: nn.Module, condition: Tensor) -> None:
    """sbi's check that ``condition`` ends in the estimator's ``condition_shape``.

    Raises:
        ValueError: naming the expected shape.
    """
    estimator._check_condition_shape(condition)


def check_input_shape(estimator: nn.Module, input: Tensor) -> None:
    """sbi's check that ``input`` ends in the estimator's ``input_shape``.

    Raises:
        ValueError: naming the expected shape.
    """
    estimator._check_input_shape(input)


def broadcast_and_align(
    estimator: nn.Module, input: Tensor, condition: Tensor
) -> tuple[Tensor, Tensor, int]:
    """sbi's broadcasting of ``log_prob`` arguments.

    Arguments:
        estimator: An sbi ``ConditionalEstimator``.
        input: ``(S, B, *input_shape)`` or ``(B, *input_shape)``.
        condition: ``(B, *condition_shape)`` or ``(S, B, *condition_shape)``.

    Returns:
        ``(input, condition, B)`` with input ``(S, B, *input_shape)`` and condition
        ``(S, B, *condition_shape)``.
    """
    return estimator._broadcast_and_align(input, condition)


def nflows_flow_parts(estimator: nn.Module) -> tuple[Any, Any, nn.Module]:
    """The pieces of the nflows ``Flow`` inside an sbi ``NFlowsFlow`` estimator.

    sbi's ``inverse_transform`` maps theta to the latent but skips the embedding net, and
    nflows keeps the transform and the base distribution private (``Flow._transform``,
    ``Flow._distribution``); the decoder z -> theta | x needs all three.

    Arguments:
        estimator: An sbi ``NFlowsFlow`` (e.g. the network of an NPE with ``"maf"``/``"nsf"``).

    Returns:
        ``(transform, base, embedding_net)``: ``transform(theta, context=e)`` gives
        ``(z, log|det|)`` and ``transform.inverse(z, context=e)`` gives ``(theta, log|det|)``
        for ``e = embedding_net(x)``; ``base`` is the latent distribution (nflows).
    """
    flow = estimator.net
    return flow._transform, flow._distribution, estimator.embedding_net


def _padded_x(x: Any) -> Tensor:
    """sbi's ``process_x`` without its all-finite check: NaN may mark missing trials."""
    from sbi.utils.torchutils import atleast_2d

    x = atleast_2d(torch.as_tensor(x, dtype=torch.float32))
    if torch.isinf(x).any():
        raise ValueError("observed data x_o holds inf; only missing trials may be NaN")
    return x


_MISSING_TRIAL_CLASSES: dict[type, type] = {}


def allow_missing_trials(posterior: Any) -> Any:
    """Let ``posterior`` take observations whose missing trials are NaN; returns it.

    sbi's posteriors refuse any NaN in x_o (``process_x``), though its
    ``PermutationInvariantEmbedding`` (and sbiplug_context's set encoders) mask NaN trials.
    The posterior's class is swapped for a subclass that checks x_o for inf only; the
    embedding net then checks the padding. Idempotent.
    """
    cls = type(posterior)
    if cls in _MISSING_TRIAL_CLASSES.values():
        return posterior
    if cls not in _MISSING_TRIAL_CLASSES:

        def _x_else_default_x(self: Any, x: Any) -> Tensor:
            if x is None:
                return cls._x_else_default_x(self, None)
            self._posterior_sampler = None  # as sbi: a new x resets the sampler
            return _padded_x(x)

        def set_default_x(self: Any, x: Any) -> Any:
            self._x = _padded_x(x).to(self._device)
            self._map = None
            return self

        _MISSING_TRIAL_CLASSES[cls] = type(
            cls.__name__,
            (cls,),
            {
                "_x_else_default_x": _x_else_default_x,
                "set_default_x": set_default_x,
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
            },
        )
    posterior.__class__ = _MISSING_TRIAL_CLASSES[cls]
    return posterior


def set_posterior_purpose(posterior: Any, text: str) -> None:
    """Set the sentence an sbi posterior prints after its type (``print(posterior)``)."""
    posterior._purpose = text


# --------------------------------------------------------------------------------- console

_logger = logging.getLogger("sbiplug")


class _EpochBar:
    """Stands in for sbi's ``_maybe_show_progress(show, epoch)``: one tqdm bar per ``train()``."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.bar: Any = None

    def __call__(self, show: bool, epoch: int) -> None:
        if not show:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(desc="Training", unit="epoch", initial=epoch - 1, leave=True)
        self.bar.update(epoch - self.bar.n)
        losses = getattr(self.trainer, "summary", {}).get("validation_loss") or ()
        if losses:
            self.bar.set_postfix(validation_loss=f"{losses[-1]:.4g}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _stacklevel_outside() -> int:
    """The ``stacklevel`` of the first caller outside sbi, sbiplug and its plugins."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("sbi"):
        frame, level = frame.f_back, level + 1
    return level


@contextlib.contextmanager
def training_console(trainer: Any) -> Iterator[None]:
    """Inside, ``trainer.train()`` shows its epochs as a tqdm bar on stderr, not on stdout.

    sbi prints ``Training neural network. Epochs trained: N`` and the convergence note to
    stdout, where they mix with a program's output; here the counter drives a tqdm bar (shown
    when the trainer's ``show_progress_bars`` is on, like sbi's own bars) and the note goes to
    the ``sbiplug`` logger at INFO level. Trainers without sbi's loop are left alone.

    Arguments:
        trainer: An sbi trainer (``NeuralInference``), before ``train()``.
    """
    cls = type(trainer)
    if not (hasattr(cls, "_maybe_show_progress") and hasattr(cls, "_report_convergence_at_end")):
        yield
        return
    bar = _EpochBar(trainer)

    def report_convergence(epoch: int, max_num_epochs: int) -> None:
        bar.close()
        printed = io.StringIO()
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
            warnings.simplefilter("always")
            cls._report_convergence_at_end(trainer, epoch, max_num_epochs)
        if printed.getvalue().strip():
            _logger.info(printed.getvalue().strip())
        for warning in caught:  # sbi's "not converged": point at the caller, not at this seam
            warnings.warn(warning.message, warning.category, stacklevel=_stacklevel_outside())

    # instance attributes shadow the class's methods for this trainer only
    trainer._maybe_show_progress = bar
    trainer._report_convergence_at_end = report_convergence
    try:
        yield
    finally:
        bar.close()
        for name in ("_maybe_show_progress", "_report_convergence_at_end"):
            trainer.__dict__.pop(name, None)


# -------------------------------------------------------------------- custom training loops


class TrainingHooks:
    """Public hooks for sbi's training loop; mix in *before* the sbi trainer class.

    ``class MyNPE(TrainingHooks, NPE)`` keeps sbi's loop (early stopping on the validation
    loss, best-state restore, summaries, ``resume_training``) and calls, per ``train()``:

    1. :meth:`on_network_built` whenever a new network was built (first call, retraining);
    2. :meth:`on_train_start` once, after the optimiser's data loaders exist and before the
       first epoch (``train_config`` carries the ``train()`` options);
    3. per epoch :meth:`train_epoch` (the network in training mode), then
       :meth:`validate_epoch` (evaluation mode, no gradients);
    4. inside those, :meth:`training_losses` for training batches and
       :meth:`validation_losses` for validation batches.

    Every default is sbi's own behaviour; override a hook and call ``super()`` to extend it.
    The trainer's public state is there as sbi keeps it: ``self.optimizer`` (Adam, created at
    the first epoch unless resuming) and ``self.epoch``; the network is
    ``trained_network(self)``.
    """

    _sbiplug_validating: bool = False

    # -- hooks -------------------------------------------------------------------------------

    def on_network_built(self, network: nn.Module) -> None:
        """Called with a newly built network (before it is trained). Default: nothing."""

    def on_train_start(self, train_config: TrainConfig, train_loader: DataLoader) -> None:
        """Called once per ``train()`` before the first epoch. Default: nothing.

        Arguments:
            train_config: sbi's configuration of this ``train()`` call (``max_num_epochs``,
                ``learning_rate``, ``resume_training``, ...).
            train_loader: The training batches; ``len(train_loader)`` batches per epoch.
        """

    def train_epoch(
        self, train_loader: DataLoader, clip_max_norm: float | None, loss_args: LossArgs | None
    ) -> float:
        """One training epoch; returns the mean training loss per row.

        Default: sbi's epoch (Adam step on the mean of :meth:`training_losses` per batch,
        gradients clipped to ``clip_max_norm`` unless ``None``).
        """
        return super()._train_epoch(train_loader, clip_max_norm, loss_args)  # type: ignore[misc]

    def validate_epoch(self, val_loader: DataLoader, loss_args: LossArgs | None) -> float:
        """One validation pass; returns the mean validation loss per row (early stopping).

        Default: sbi's (the mean of :meth:`validation_losses` over the validation rows).
        """
        return super()._validate_epoch(val_loader, loss_args)  # type: ignore[misc]

    def training_losses(self, batch: Sequence[Tensor], loss_args: LossArgs | None) -> Tensor:
        """Loss per row of a training batch, shape ``(B,)``.

        Arguments:
            batch: The data loader's batch: ``(theta (B, *theta_shape), x (B, *x_shape),
                prior_masks (B, 1))`` for sbi's trainers, still on the data device.
            loss_args: sbi's loss options of this ``train()`` call (e.g. ``LossArgsNPE``), or
                ``None`` for trainers without any.

        Default: sbi's loss of the trainer (e.g. the NPE negative log-likelihood).
        """
        parent = super()
        if loss_args is None:
            return parent._get_losses(batch=batch)  # type: ignore[misc]
        return parent._get_losses(batch=batch, loss_args=loss_args)  # type: ignore[misc]

    def validation_losses(self, batch: Sequence[Tensor], loss_args: LossArgs | None) -> Tensor:
        """Loss per row of a validation batch, shape ``(B,)``. Default: :meth:`training_losses`."""
        return self.training_losses(batch, loss_args)

    # -- sbi's private loop, routed to the hooks ----------------------------------------------

    def _initialize_neural_network(self, *args: Any, **kwargs: Any) -> None:
        before = trained_network(self)
        super()._initialize_neural_network(*args, **kwargs)  # type: ignore[misc]
        network = trained_network(self)
        if network is not None and network is not before:
            self.on_network_built(network)

    def _run_training_loop(
        self,
        train_loader: DataLoader,
        val_loader: DataLoader,
        train_config: TrainConfig,
        *args: Any,
        **kwargs: Any,
    ) -> nn.Module:
        self.on_train_start(train_config, train_loader)
        return super()._run_training_loop(  # type: ignore[misc]
            train_loader, val_loader, train_config, *args, **kwargs
        )

    def _train_epoch(
        self, train_loader: DataLoader, clip_max_norm: float | None, loss_args: LossArgs | None
    ) -> float:
        return self.train_epoch(train_loader, clip_max_norm, loss_args)

    def _validate_epoch(self, val_loader: DataLoader, loss_args: LossArgs | None) -> float:
        self._sbiplug_validating = True
        try:
            return self.validate_epoch(val_loader, loss_args)
        finally:
            self._sbiplug_validating = False

    def _get_losses(self, batch: Sequence[Tensor], loss_args: LossArgs | None = None) -> Tensor:
        if self._sbiplug_validating:
            return self.validation_losses(batch, loss_args)
        return self.training_losses(batch, loss_args)


class SingleRoundPosteriorTrainer(TrainingHooks, PosteriorEstimatorTrainer):
    """Base of single-round posterior trainers with their own loss (e.g. CMPE).

    An sbi ``PosteriorEstimatorTrainer`` with :class:`TrainingHooks`, for methods that train
    only on prior simulations and so have no proposal-corrected (multi-round) loss. Override
    :meth:`~TrainingHooks.training_losses` (and :meth:`~TrainingHooks.validation_losses`) with
    the method's loss.

    Attributes:
        probe_new_network: Whether sbi checks a newly built network by evaluating its
            ``log_prob``; set ``False`` for sample-only estimators, which have none.
    """

    probe_new_network: ClassVar[bool] = True

    def _initialize_neural_network(self, retrain_from_scratch: bool, start_idx: int) -> None:
        if self.probe_new_network:
            super()._initialize_neural_network(retrain_from_scratch, start_idx)
            return
        if trained_network(self) is None or retrain_from_scratch:
            theta, x, _ = self.get_simulations(starting_round=start_idx)
            # As sbi: only the training rows size the network (and its z-scoring).
            network = build_network(
                self, theta[self.train_indices].to("cpu"), x[self.train_indices].to("cpu")
            )
            install_network(self, network, x.shape[1:])
            self.on_network_built(network)

    def _log_prob_proposal_posterior(
        self, theta: Tensor, x: Tensor, masks: Tensor, proposal: Any
    ) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} is single-round and has no proposal-corrected loss"
        )
