"""Shared Gaussian helpers: observations as arrays and normals truncated to a box.

Truncated normals are drawn by inverse CDF with :func:`scipy.stats.truncnorm.ppf`, which stays
accurate far in the tails; box masses are computed in log space for the same reason.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import special, stats
from torch import Tensor

__all__ = ["as_observation", "check_num_samples", "log_normal_box_mass", "truncated_normal_ppf"]


def check_num_samples(num_samples: int, name: str) -> int:
    """``num_samples`` as an int >= 0; otherwise a TypeError or ValueError naming the simulator."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise TypeError(
            f"simulator {name!r}: num_samples must be an int, got {type(num_samples).__name__}"
        )
    if num_samples < 0:
        raise ValueError(f"simulator {name!r}: num_samples must be >= 0, got {num_samples}")
    return int(num_samples)


def as_observation(x_o: Tensor, shape: tuple[int, ...], name: str) -> np.ndarray:
    """One observation as a float64 array of ``shape``.

    Arguments:
        x_o: A tensor of shape ``shape`` or ``(1, *shape)``.
        shape: The simulator's observation shape.
        name: The simulator's name, for error messages.

    Returns:
        The observation, shape ``shape``.
    """
    if not isinstance(x_o, Tensor):
        raise TypeError(
            f"simulator {name!r}: x_o must be a torch.Tensor of shape {shape}, "
            f"got {type(x_o).__name__}"
        )
    if tuple(x_o.shape) == (1, *shape):
        x_o = x_o[0]
    if tuple(x_o.shape) != shape:
        raise ValueError(
            f"simulator {name!r}: x_o must have shape {shape} (or (1, *{shape})) for a "
            f"reference posterior, got {tuple(x_o.shape)}"
        )
    array = x_o.detach().to(torch.float64).cpu().numpy()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"simulator {name!r}: x_o must be finite, got {array.tolist()}")
    return array


def log_normal_box_mass(loc: np.ndarray, scale: float, low: float, high: float) -> np.ndarray:
    """log P(low <= Y <= high) for Y ~ N(loc, scale^2), elementwise and stable in the tails.

    Arguments:
        loc: Means, any shape.
        scale: Standard deviation.
        low, high: Interval bounds, ``low < high``.

    Returns:
        Log-masses, the shape of ``loc``.
    """
    a = (low - np.asarray(loc, dtype=np.float64)) / scale
    b = (high - np.asarray(loc, dtype=np.float64)) / scale
    # Work in the lower tail, where log_ndtr is accurate: mirror intervals right of zero.
    mirror = a > 0
    a, b = np.where(mirror, -b, a), np.where(mirror, -a, b)
    log_b, log_a = special.log_ndtr(b), special.log_ndtr(a)
    return log_b + np.log1p(-np.exp(log_a - log_b))


def truncated_normal_ppf(
    u: np.ndarray, loc: np.ndarray, scale: float, low: float, high: float
) -> np.ndarray:
    """Quantiles of N(loc, scale^2) truncated to [low, high].

    Arguments:
        u: Uniform draws in [0, 1), any shape broadcasting with ``loc``.
        loc: Means of the untruncated normals.
        scale: Their standard deviation.
        low, high: Truncation bounds.

    Returns:
        Draws inside [low, high], the broadcast shape of ``u`` and ``loc``.
    """
    a = (low - loc) / scale
    b = (high - loc) / scale
    draws = stats.truncnorm.ppf(u, a, b, loc=loc, scale=scale)
    return np.clip(draws, low, high)
