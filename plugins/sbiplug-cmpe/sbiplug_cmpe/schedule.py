"""Noise schedule of improved consistency training (iCT).

Song & Dhariwal, *Improved Techniques for Training Consistency Models*, arXiv 2310.14189, as used
by consistency model posterior estimation (CMPE; Schmitt et al., arXiv 2312.05440): the Karras
time grid, the exponential discretisation curriculum N(k), the discretised lognormal choice of
adjacent time pairs and the elementwise pseudo-Huber metric.

Grid convention (the CMPE paper code's): the curriculum level N(k) counts *intervals*, the grid
has N(k) + 1 points, and ``steps`` sampling steps use a grid of ``steps + 1`` points, so the
default 10 sampling steps re-noise exactly at the levels of the first training grid (s0 = 10).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "curriculum_intervals",
    "karras_grid",
    "pair_weights",
    "pseudo_huber",
    "sample_pair_indices",
]

RHO = 7.0
P_MEAN = -1.1
P_STD = 2.0


def karras_grid(
    num_points: int,
    eps: float,
    max_time: float,
    rho: float = RHO,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Karras time grid :math:`t_i = (\epsilon^{1/\rho} + \frac{i-1}{N-1}
    (T^{1/\rho} - \epsilon^{1/\rho}))^\rho`.

    Arguments:
        num_points: Number of grid points N >= 2.
        eps: Smallest time :math:`\epsilon` (first point).
        max_time: Largest time T (last point).
        rho: Curvature of the grid; 7 in iCT.
        device: Where to build the grid.

    Returns:
        The increasing grid, shape ``(num_points,)``, with ``t[0] = eps`` and ``t[-1] = T``.
    """
    if num_points < 2:
        raise ValueError(f"a Karras grid needs at least 2 points, got {num_points}")
    u = torch.linspace(0.0, 1.0, num_points, dtype=torch.float64, device=device)
    low, high = eps ** (1.0 / rho), max_time ** (1.0 / rho)
    grid = (low + u * (high - low)) ** rho
    grid[0], grid[-1] = eps, max_time  # exact end points despite rounding
    return grid.float()


def curriculum_intervals(step: int, total_steps: int, s0: int, s1: int) -> int:
    r"""Number of grid intervals N(k) of the exponential curriculum (iCT §3.4).

    .. math:: K' = \lfloor K / (\log_2(s_1/s_0) + 1) \rfloor, \quad
              N(k) = \min(s_0 2^{\lfloor k/K' \rfloor}, s_1)

    Arguments:
        step: Current optimiser step k (0-based).
        total_steps: Training length K, fixed before training.
        s0: Initial number of intervals.
        s1: Final number of intervals.

    Returns:
        N(k); the training grid at step k has N(k) + 1 points.
    """
    level_length = max(int(total_steps // (math.log2(s1 / s0) + 1)), 1)
    return int(min(s0 * 2 ** (step // level_length), s1))


def pair_weights(grid: Tensor, p_mean: float = P_MEAN, p_std: float = P_STD) -> Tensor:
    r"""Unnormalised probabilities of the intervals i, the discretised lognormal of iCT §3.5.

    .. math:: p(i) \propto \mathrm{erf}\left(\frac{\log t_{i+1} - P_{mean}}{\sqrt2 P_{std}}\right)
              - \mathrm{erf}\left(\frac{\log t_i - P_{mean}}{\sqrt2 P_{std}}\right)

    Arguments:
        grid: Increasing time grid, shape ``(N + 1,)``.

    Returns:
        Weights, shape ``(N,)``, on the grid's device: interval i is ``(grid[i], grid[i + 1])``.
    """
    cdf = torch.erf((grid.double().log() - p_mean) / (math.sqrt(2.0) * p_std))
    return (cdf[1:] - cdf[:-1]).clamp_min(1e-30).float()


def sample_pair_indices(
    grid: Tensor,
    num: int,
    generator: torch.Generator | None = None,
    p_mean: float = P_MEAN,
    p_std: float = P_STD,
) -> Tensor:
    """Draw ``num`` interval indices i in ``[0, N - 1]`` with :func:`pair_weights`.

    Returns:
        Indices, shape ``(num,)``: the pair is ``(grid[i], grid[i + 1])``.
    """
    weights = pair_weights(grid, p_mean, p_std)
    return torch.multinomial(weights, num, replacement=True, generator=generator)


def pseudo_huber(difference: Tensor, dim: int) -> Tensor:
    r"""Elementwise pseudo-Huber metric :math:`\sqrt{d^2 + c^2} - c`, :math:`c = 0.00054\sqrt{D}`.

    Arguments:
        difference: Student minus teacher, shape ``(batch, D)``.
        dim: Parameter dimension D.

    Returns:
        The metric per element, shape ``(batch, D)``.
    """
    c = 0.00054 * math.sqrt(dim)
    return torch.sqrt(difference.square() + c**2) - c
