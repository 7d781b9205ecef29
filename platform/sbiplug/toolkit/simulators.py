"""Argument checks for a simulator's reference posterior: ``num_samples`` and one observation."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sbiplug.toolkit.validation import OptionError, check_int

__all__ = ["as_observation", "check_num_samples"]


def check_num_samples(num_samples: object, simulator: str) -> int:
    """``num_samples`` as an int >= 0, else an :class:`OptionError` naming the simulator."""
    return check_int("num_samples", num_samples, minimum=0, owner=f"simulator {simulator!r}")


def as_observation(x_o: Tensor, shape: tuple[int, ...], simulator: str) -> np.ndarray:
    """One observation as a finite float64 array of ``shape``.

    Arguments:
        x_o: A tensor of shape ``shape`` or ``(1, *shape)``.
        shape: The simulator's observation shape.
        simulator: The simulator's name, for error messages.

    Returns:
        The observation, shape ``shape``.

    Raises:
        TypeError: when ``x_o`` is not a tensor.
        OptionError: for another shape or non-finite values.
    """
    if not isinstance(x_o, Tensor):
        raise TypeError(
            f"simulator {simulator!r}: x_o must be a torch.Tensor of shape {shape}, "
            f"got {type(x_o).__name__}"
        )
    if tuple(x_o.shape) == (1, *shape):
        x_o = x_o[0]
    if tuple(x_o.shape) != shape:
        raise OptionError(
            f"simulator {simulator!r}: x_o must have shape {shape} (or (1, *{shape})) for a "
            f"reference posterior, got {tuple(x_o.shape)}"
        )
    array = x_o.detach().to(torch.float64).cpu().numpy()
    if not np.all(np.isfinite(array)):
        raise OptionError(f"simulator {simulator!r}: x_o must be finite, got {array.tolist()}")
    return array
