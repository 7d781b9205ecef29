"""Density models to score with, and their training with early ("immature") checkpoints.

Montazeran & Köthe (2025) find that gradient-norm OOD scores from an early training checkpoint
are mostly as good as, or better than, those of the converged model. :func:`train_density` trains
a normalizing flow on the in-distribution data and keeps a copy at each requested epoch
(epoch 0 is the untrained initialisation). The flows here are zuko flows on standardised data;
the standardisation is a fixed input layer, so ``log_prob`` is the density of the raw data.

For SBI, :class:`EstimatorDensity` exposes an sbi conditional density estimator (the network of
a trained NLE, whose density is p(x | theta), or NPE, p(theta | x)) with the ``log_prob(x,
context)`` the scorers expect, and :func:`train_density` also trains such an estimator, given
as ``flow=``, with checkpoints.

References:
    OOD Detection with immature Models (Montazeran, Köthe; 2025)
    https://arxiv.org/abs/2502.00820
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sbiplug.toolkit import Standardize, check_int, seeded, z_score_moments

__all__ = ["EstimatorDensity", "StandardizedFlow", "density_from_estimator", "train_density"]

#: Flows by name: zuko's spline (NSF), masked autoregressive (MAF) and affine coupling (RealNVP,
#: the coupling layers of Glow without its convolutions) flows.
FLOWS = ("nsf", "maf", "realnvp")


class StandardizedFlow(nn.Module):
    r"""A zuko flow on ``z = (x - shift) / scale``, with the density of the raw ``x``.

    ``log p(x) = log q(z) - sum log scale``: the standardisation is a fixed input layer (buffers,
    not parameters), so it adds no gradient feature and changes no gradient.

    Arguments:
        flow: A zuko flow: ``flow()`` (or ``flow(context)``) returns a distribution over ``z``.
        shift: Per-dimension shift of the flattened input, shape ``(features,)``.
        scale: Per-dimension scale, shape ``(features,)``.
        context_shift: Shift of the flattened context, shape ``(context_features,)``.
        context_scale: Scale of the flattened context.
        event_shape: The shape of one input (it is flattened for the flow).
    """

    def __init__(
        self,
        flow: nn.Module,
        shift: Tensor,
        scale: Tensor,
        context_shift: Tensor | None = None,
        context_scale: Tensor | None = None,
        event_shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.flow = flow
        self.standardize = Standardize(shift, scale)
        self.conditional = context_shift is not None
        self.context_standardize = (
            Standardize(context_shift, context_scale) if self.conditional else None
        )
        self.event_shape = tuple(event_shape) if event_shape else (len(shift),)

    @property
    def shift(self) -> Tensor:
        """The shift of the flattened input, shape ``(features,)``."""
        return self.standardize.shift

    @property
    def scale(self) -> Tensor:
        """The scale of the flattened input, shape ``(features,)``."""
        return self.standardize.scale

    def _distribution(self, context: Tensor | None) -> Any:
        if self.conditional != (context is not None):
            expected = "a context" if self.conditional else "no context"
            raise ValueError(
                f"this flow is {'' if self.conditional else 'un'}conditional: "
                f"log_prob/sample take {expected}"
            )
        if context is None:
            return self.flow()
        return self.flow(self.context_standardize(context.flatten(1)))

    def log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """log p(x) (or log p(x | context)), shape ``(n,)`` for x of shape ``(n, *event_shape)``."""
        z = self.standardize(x.flatten(1))
        return self._distribution(context).log_prob(z) - self.standardize.log_abs_det()

    def sample(self, num_samples: int, context: Tensor | None = None) -> Tensor:
        """Draws of raw x, shape ``(num_samples, *event_shape)`` (one per context row if given)."""
        distribution = self._distribution(context)
        shape = () if context is not None else (num_samples,)
        z = distribution.sample(shape)
        return self.standardize.inverse(z).reshape(-1, *self.event_shape)


class EstimatorDensity(nn.Module):
    """An sbi conditional density estimator as a ``log_prob(x, context)`` model.

    Arguments:
        estimator: An sbi ``ConditionalDensityEstimator`` (e.g. ``trainer.train()``'s result
            for an NLE, where ``x`` is the data and ``context`` the parameters).
    """

    def __init__(self, estimator: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(estimator, "log_prob", None)):
            raise TypeError(
                f"expected an sbi density estimator with log_prob(input, condition), got "
                f"{type(estimator).__name__}"
            )
        self.estimator = estimator

    def log_prob(self, x: Tensor, context: Tensor) -> Tensor:
        """log p(x | context), shape ``(n,)`` for ``x`` ``(n, *input_shape)``."""
        return self.estimator.log_prob(x.unsqueeze(0), context).squeeze(0)


def density_from_estimator(estimator: Any) -> EstimatorDensity:
    """The density network of a trained sbi trainer (NLE, NPE), ready for the scorers.

    Arguments:
        estimator: An sbi trainer after ``train()`` or its ``ConditionalDensityEstimator``.

    Returns:
        The network wrapped as :class:`EstimatorDensity` (not copied).
    """
    from sbiplug.sbi_internals import is_trainer, trained_network  # imports sbi: only here

    network = trained_network(estimator) if is_trainer(estimator) else estimator
    if network is None:
        raise ValueError(f"{type(estimator).__name__} has no trained network: call train() first")
    if not isinstance(network, nn.Module) or not callable(getattr(network, "loss", None)):
        raise TypeError(
            f"expected a trained sbi trainer or an sbi ConditionalDensityEstimator, got "
            f"{type(estimator).__name__}"
        )
    return EstimatorDensity(network)


def _zuko_flow_class(flow: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    import zuko

    if isinstance(flow, str):
        if flow.lower() not in FLOWS:
            raise ValueError(f"flow {flow!r} is unknown: expected one of {FLOWS} or a zuko class")
        classes = {"nsf": zuko.flows.NSF, "maf": zuko.flows.MAF, "realnvp": zuko.flows.RealNVP}
        return classes[flow.lower()]
    if isinstance(flow, type) and issubclass(flow, nn.Module):
        return flow
    raise TypeError(
        f"flow must be 'nsf', 'maf', 'realnvp', a zuko flow class or a built density estimator "
        f"module, got {type(flow).__name__}"
    )


def _check_checkpoints(checkpoints: Iterable[int] | None, epochs: int) -> list[int]:
    check_int("epochs", epochs, minimum=0)
    if checkpoints is None:
        return sorted({e for e in (1, 2, 5, epochs) if e <= epochs})
    checkpoints = list(checkpoints)
    bad = [c for c in checkpoints if isinstance(c, bool) or not isinstance(c, int)]
    bad += [c for c in checkpoints if isinstance(c, int) and not 0 <= c <= epochs]
    if bad or not checkpoints:
        raise ValueError(
            f"checkpoints must be a non-empty list of epochs in [0, {epochs}], got {checkpoints}"
        )
    return sorted(set(checkpoints))


def train_density(
    x: Tensor,
    epochs: int,
    checkpoints: Iterable[int] | None = None,
    *,
    context: Tensor | None = None,
    flow: str | Callable[..., nn.Module] | nn.Module = "nsf",
    hidden_features: tuple[int, ...] = (64, 64),
    transforms: int = 3,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    show_progress_bars: bool = False,
    **flow_options: Any,
) -> dict[int, nn.Module]:
    """Train a density model of ``x`` (given ``context``) and keep copies at chosen epochs.

    Arguments:
        x: Training inputs, shape ``(n, *event_shape)``.
        epochs: Passes over ``x``.
        checkpoints: Epochs whose model to keep (0 = the untrained initialisation); default
            ``[1, 2, 5, epochs]`` (those ``<= epochs``).
        context: Conditions, shape ``(n, *context_shape)``, for a conditional density
            ``p(x | context)``; required when ``flow`` is an sbi density estimator.
        flow: ``"nsf"``, ``"maf"``, ``"realnvp"``, a zuko flow class (built as
            ``flow(features, context_features, hidden_features=..., transforms=...,
            **flow_options)`` on standardised data), or a built module: a zuko flow (used on
            standardised data) or an sbi ``ConditionalDensityEstimator`` (trained with its own
            ``loss``; its z-scoring is its own).
        hidden_features: Hidden widths of the flow's networks.
        transforms: Number of flow transforms.
        batch_size: Minibatch size.
        learning_rate: Adam's learning rate.
        weight_decay: Adam's weight decay.
        seed: Seed of the initialisation and the minibatch order (global RNG left untouched).
        show_progress_bars: Whether training shows a progress bar.

    Returns:
        ``{epoch: model}`` for each checkpoint, each a deep copy in eval mode with
        ``log_prob(x)`` (or ``log_prob(x, context)``) of the raw data.
    """
    if not isinstance(x, Tensor) or x.ndim < 2 or len(x) < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of shape (n, *event_shape) with n >= 2, got {shape}")
    if context is not None and (
        not isinstance(context, Tensor) or context.ndim < 2 or len(context) != len(x)
    ):
        raise ValueError(f"context must be a tensor of shape ({len(x)}, *context_shape)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or infinite values")
    wanted = _check_checkpoints(checkpoints, epochs)
    x = x.float()
    context = None if context is None else context.float()

    with seeded(seed):
        model = _build_model(x, context, flow, hidden_features, transforms, flow_options)
        loss_of = _loss_function(model, context)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=learning_rate, weight_decay=weight_decay
        )
        kept: dict[int, nn.Module] = {}
        if 0 in wanted:
            kept[0] = copy.deepcopy(model).eval()
        order = torch.Generator().manual_seed(seed)
        steps = math.ceil(len(x) / batch_size)
        for epoch in tqdm(range(1, epochs + 1), disable=not show_progress_bars, desc="training"):
            model.train()
            permutation = torch.randperm(len(x), generator=order)
            for step in range(steps):
                rows = permutation[step * batch_size : (step + 1) * batch_size]
                loss = loss_of(x[rows], None if context is None else context[rows])
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
            if epoch in wanted:
                kept[epoch] = copy.deepcopy(model).eval()
    return kept


def _build_model(
    x: Tensor,
    context: Tensor | None,
    flow: Any,
    hidden_features: tuple[int, ...],
    transforms: int,
    flow_options: dict[str, Any],
) -> nn.Module:
    shift, scale = z_score_moments(x.flatten(1))
    context_shift = context_scale = None
    if context is not None:
        context_shift, context_scale = z_score_moments(context.flatten(1))
    if isinstance(flow, nn.Module):
        if callable(getattr(flow, "loss", None)) and callable(getattr(flow, "log_prob", None)):
            if context is None:
                raise ValueError(
                    "an sbi density estimator models p(input | condition): pass context="
                )
            return EstimatorDensity(copy.deepcopy(flow))
        network = copy.deepcopy(flow)
    else:
        network = _zuko_flow_class(flow)(
            x.flatten(1).shape[1],
            0 if context is None else context.flatten(1).shape[1],
            hidden_features=tuple(hidden_features),
            transforms=transforms,
            **flow_options,
        )
    return StandardizedFlow(
        network, shift, scale, context_shift, context_scale, event_shape=tuple(x.shape[1:])
    )


def _loss_function(model: nn.Module, context: Tensor | None) -> Callable[..., Tensor]:
    if isinstance(model, EstimatorDensity):
        return lambda x, c: model.estimator.loss(x, c).mean()
    return lambda x, c: -model.log_prob(x, c).mean()
