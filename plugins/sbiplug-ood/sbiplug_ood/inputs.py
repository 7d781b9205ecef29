"""Checks shared by the OOD scorers: density models with a ``log_prob`` and grouped inputs.

Every scorer works on disjoint groups of ``batch_size`` inputs (B = 1 or 5 in Dauncey et al.,
TMLR 2024): a batch ``x`` of shape ``(n, *event_shape)`` becomes ``(n // B, B, *event_shape)``;
the trailing ``n % B`` inputs are left out, so fit and score always see groups of equal size.
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn

__all__ = [
    "accepts_context",
    "call_log_prob",
    "check_density_model",
    "group_context",
    "group_inputs",
    "model_dtype",
]


def check_density_model(model: object) -> nn.Module:
    """Check that ``model`` is a torch module with a callable ``log_prob``.

    Arguments:
        model: The density model, ``log_prob(x)`` or ``log_prob(x, context)``.

    Returns:
        The model itself.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"the density model must be a torch.nn.Module with a log_prob(x) method, "
            f"got {type(model).__name__}"
        )
    if not callable(getattr(model, "log_prob", None)):
        raise TypeError(
            f"the density model {type(model).__name__} has no log_prob method; expected "
            "log_prob(x) -> Tensor of shape (n,) or log_prob(x, context)"
        )
    if not any(True for _ in model.parameters()):
        raise ValueError(
            f"the density model {type(model).__name__} has no parameters: gradient-norm "
            "features need at least one parameter tensor"
        )
    return model


def accepts_context(model: nn.Module) -> bool:
    """Whether ``model.log_prob`` takes a second (context) argument."""
    try:
        signature = inspect.signature(model.log_prob)
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def call_log_prob(model: nn.Module, x: Tensor, context: Tensor | None) -> Tensor:
    """``model.log_prob(x)`` or ``model.log_prob(x, context)``, shape ``(n,)``."""
    if context is None:
        return model.log_prob(x)
    return model.log_prob(x, context)


def group_inputs(
    x: object,
    batch_size: int,
    *,
    event_shape: tuple[int, ...] | None = None,
    name: str = "x",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Split a batch into disjoint groups of ``batch_size`` inputs.

    Arguments:
        x: Inputs, shape ``(n, *event_shape)``.
        batch_size: The group size B.
        event_shape: The expected shape of one input, if already known (e.g. from ``fit``).
        name: What ``x`` is called in error messages.
        dtype: The floating type of the model's parameters.

    Returns:
        Groups, shape ``(n // B, B, *event_shape)``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, ...), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have shape (n, *event_shape) with a leading batch dimension, "
            f"got shape {tuple(x.shape)}; use x.unsqueeze(0) for a single input"
        )
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(
            f"{name} has inputs of shape {tuple(x.shape[1:])}, expected {tuple(event_shape)} "
            "(the shape the scorer was fitted on)"
        )
    if len(x) < batch_size:
        raise ValueError(
            f"{name} has {len(x)} inputs, fewer than one group of batch_size={batch_size}"
        )
    num_groups = len(x) // batch_size
    x = x[: num_groups * batch_size].to(dtype)
    return x.reshape(num_groups, batch_size, *x.shape[1:])


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating type of the model's first parameter."""
    return next(model.parameters()).dtype


def group_context(
    context: object, x: Tensor, batch_size: int, dtype: torch.dtype = torch.float32
) -> Tensor | None:
    """Group a context batch like its inputs ``x``; ``None`` stays ``None``.

    Arguments:
        context: Conditions, shape ``(n, *context_shape)`` matching ``x``'s ``n``, or ``None``.
        x: The inputs, shape ``(n, *event_shape)``.
        batch_size: The group size B.

    Returns:
        Groups, shape ``(n // B, B, *context_shape)``, or ``None``.
    """
    if context is None:
        return None
    if not isinstance(context, Tensor) or context.ndim < 2 or len(context) != len(x):
        shape = tuple(context.shape) if isinstance(context, Tensor) else type(context).__name__
        raise ValueError(
            f"context must be a tensor of shape (n, *context_shape) with n = {len(x)} rows, "
            f"one per input, got {shape}"
        )
    return group_inputs(context, batch_size, name="context", dtype=dtype)
