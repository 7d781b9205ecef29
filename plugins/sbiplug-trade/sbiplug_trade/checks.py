"""Input checks shared by the TRADE targets, flow and trainer.

TRADE (Wahl et al., arXiv 2410.19492) needs ``log p~(x | c)`` to be differentiable in the
condition ``c``: the residual compares ``d log q / dc`` with ``d log p~ / dc`` minus its mean.
:func:`check_differentiable` verifies that with autograd before any training starts.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbiplug import Target

__all__ = [
    "TargetNotDifferentiableError",
    "check_condition",
    "check_differentiable",
    "condition_gradient",
]


class TargetNotDifferentiableError(TypeError):
    """A target's ``log_density`` has no usable gradient with respect to the condition."""


def condition_gradient(target: Target, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """``log p~(x | c)`` and ``d log p~(x | c) / dc`` by autograd, one condition per row.

    Arguments:
        target: The density family.
        x: Points, shape ``(n, dim)``.
        c: Conditions, shape ``(n, 1)``.

    Returns:
        Log densities, shape ``(n,)``, and their derivatives in ``c``, shape ``(n,)``, detached.
    """
    with torch.enable_grad():
        leaf = c.detach().clone().requires_grad_(True)
        log_density = target.log_density(x.detach(), leaf)
        if not isinstance(log_density, Tensor) or not log_density.requires_grad:
            raise TargetNotDifferentiableError(
                f"target {target.name!r}: log_density(x, c) does not depend differentiably on "
                "the condition c (its output carries no gradient); TRADE needs d log p~/dc"
            )
        (gradient,) = torch.autograd.grad(log_density.sum(), leaf, allow_unused=True)
    if gradient is None:
        raise TargetNotDifferentiableError(
            f"target {target.name!r}: log_density(x, c) is not differentiable in the condition c "
            "(autograd found no path from c to the output); TRADE needs d log p~/dc"
        )
    return log_density.detach(), gradient.detach().reshape(-1)


def check_differentiable(target: Target, x: Tensor | None = None) -> None:
    """Raise :class:`TargetNotDifferentiableError` unless ``log_density`` is differentiable in c.

    Arguments:
        target: The density family to check.
        x: A few points, shape ``(n, dim)``; standard normal draws when omitted.
    """
    if not isinstance(target, Target):
        raise TypeError(f"expected a sbiplug.target.Target, got {type(target).__name__}")
    low, high = target.condition_range
    if not (0 < low <= target.base_condition <= high and math.isfinite(high)):
        raise ValueError(
            f"target {target.name!r}: need 0 < condition_range[0] <= base_condition <= "
            f"condition_range[1] < inf (TRADE conditions on log c), got range {(low, high)} "
            f"and base {target.base_condition}"
        )
    if x is None:
        x = torch.randn(4, target.dim, generator=torch.Generator().manual_seed(0))
    conditions = torch.full((len(x), 1), float(target.base_condition))
    log_density, gradient = condition_gradient(target, x, conditions)
    if log_density.shape != (len(x),):
        raise ValueError(
            f"target {target.name!r}: log_density returned shape {tuple(log_density.shape)}, "
            f"expected ({len(x)},)"
        )
    if not bool(torch.isfinite(gradient).all()):
        raise TargetNotDifferentiableError(
            f"target {target.name!r}: d log p~/dc is not finite at the base condition"
        )


def check_condition(target: Target, condition: float | Tensor, what: str = "condition") -> Tensor:
    """A positive condition as a float tensor; raises for non-positive or non-finite values."""
    value = torch.as_tensor(condition, dtype=torch.float32)
    if value.numel() == 0 or not bool(torch.isfinite(value).all()) or bool((value <= 0).any()):
        raise ValueError(
            f"target {target.name!r}: {what} must be positive and finite "
            f"(TRADE conditions on log c), got {condition!r}"
        )
    return value
