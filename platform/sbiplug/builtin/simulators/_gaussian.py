"""Shared Gaussian helpers: normal masses of a box and normals truncated to a box.

Truncated normals are drawn by inverse CDF with :func:`scipy.stats.truncnorm.ppf`, which stays
accurate far in the tails; box masses are computed in log space for the same reason.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

__all__ = ["log_normal_box_mass", "truncated_normal_ppf"]


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
