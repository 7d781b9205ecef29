"""Quality metrics of a conditional flow against a target family (TRADE, arXiv 2410.19492, §8).

* normalised effective sample size of importance weights log w = log p~(x | c) - log q(x | c) on
  draws x ~ q(. | c): ESS_r = exp(2 LSE(log w) - LSE(2 log w) - log N), in (0, 1];
* for low-dimensional targets with a quadrature grid (``target.quadrature(c)``), the population
  value that ESS_r estimates, 1 / ∫ p(x | c)^2 / q(x | c) dx with p normalised on the grid. It has
  no Monte Carlo noise and does see lost modes: where q misses mass of p, p^2 / q is huge, while
  the draws of q never go there, so the estimate from q's own draws stays near 1;
* negative log-likelihood of ground-truth draws, -mean log q(x | c);
* mass per mode under q against ground truth, for targets that label modes (``mode_labels``);
  the truth is either ground-truth draws or exact masses (``target.exact_mode_masses(c)``, e.g.
  by quadrature), the same labelling for both. ESS alone cannot see a lost mode (draws from q
  never visit it), the mode masses can.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from sbiplug import Target
from sbiplug_trade.residual import log_effective_sample_size

__all__ = [
    "effective_sample_size",
    "mode_mass_error",
    "mode_masses",
    "negative_log_likelihood",
    "population_effective_sample_size",
]


class ConditionalDensity(Protocol):
    def sample_and_log_prob(
        self, num_samples: int, condition: float, *, seed: int | None = None
    ) -> tuple[Tensor, Tensor]: ...

    def log_prob(self, x: Tensor, condition: float) -> Tensor: ...


@torch.no_grad()
def effective_sample_size(
    flow: ConditionalDensity, target: Target, condition: float, n: int = 10_000, *, seed: int = 0
) -> float:
    """Normalised ESS of q(. | c) as importance proposal for p(. | c), in (0, 1].

    Arguments:
        flow: A fitted :class:`~sbiplug_trade.TRADE` (or anything with ``sample_and_log_prob``).
        target: The density family.
        condition: c.
        n: Number of draws.
        seed: Seed of the draws.
    """
    x, log_q = flow.sample_and_log_prob(n, condition, seed=seed)
    log_weights = target.log_density(x, torch.full((n, 1), float(condition))) - log_q
    log_weights = log_weights.nan_to_num(nan=-torch.inf)
    if not bool(torch.isfinite(log_weights).any()):
        return 0.0
    return float(log_effective_sample_size(log_weights).exp())


@torch.no_grad()
def population_effective_sample_size(
    flow: ConditionalDensity,
    target: Target,
    condition: float,
    *,
    cutoff: float = 60.0,
    chunk: int = 200_000,
) -> float:
    """1 / ∫ p(x | c)^2 / q(x | c) dx by quadrature: the limit of ESS_r as the draws grow.

    Arguments:
        flow: A fitted :class:`~sbiplug_trade.TRADE` (or anything with ``log_prob``).
        target: A density family with ``quadrature(c) -> (points (m, dim), log cell volume)``.
        condition: c.
        cutoff: Grid points where log p is more than this below its maximum are left out of the
            sum (they cannot matter unless q is smaller still there).
        chunk: Points per call of ``flow.log_prob``.
    """
    if not hasattr(target, "quadrature"):
        raise TypeError(
            f"target {target.name!r} has no quadrature grid; use effective_sample_size instead"
        )
    points, log_cell = target.quadrature(condition)
    log_p = target.log_density(points, torch.full((len(points), 1), float(condition))).double()
    log_p = log_p - (torch.logsumexp(log_p, 0) + log_cell)
    keep = log_p > log_p.max() - cutoff
    points, log_p = points[keep], log_p[keep]
    log_q = torch.cat(
        [
            flow.log_prob(points[i : i + chunk], condition).double()
            for i in range(0, len(points), chunk)
        ]
    )
    log_chi2_plus_one = torch.logsumexp(2 * log_p - log_q.nan_to_num(nan=-math.inf), 0) + log_cell
    return float(torch.exp(-log_chi2_plus_one).clamp(max=1.0))


@torch.no_grad()
def negative_log_likelihood(flow: ConditionalDensity, samples: Tensor, condition: float) -> float:
    """-mean log q(x | c) over ground-truth draws ``samples`` ``(n, dim)`` at c."""
    return float(-flow.log_prob(samples, condition).mean())


def mode_masses(target: Target, samples: Tensor) -> Tensor:
    """Fraction of ``samples`` ``(n, dim)`` in each mode of ``target``, shape ``(num_modes,)``."""
    if not hasattr(target, "mode_labels"):
        raise TypeError(f"target {target.name!r} does not label its modes (no mode_labels)")
    labels = target.mode_labels(samples)
    return torch.bincount(labels, minlength=target.num_modes).double() / len(samples)


def mode_mass_error(
    target: Target, samples: Tensor, reference: Tensor, min_mass: float = 0.01
) -> tuple[float, Tensor]:
    """Largest relative error of the mode masses among modes holding >= ``min_mass`` in truth.

    Arguments:
        target: A target with ``mode_labels``.
        samples: Draws from the model, shape ``(n, dim)``.
        reference: Ground-truth draws, shape ``(m, dim)``, or the exact masses per mode, shape
            ``(num_modes,)`` (no Monte Carlo noise on the truth side).
        min_mass: Modes lighter than this in the reference are not compared (their relative error
            is dominated by Monte Carlo noise).

    Returns:
        The largest |q_k - p_k| / p_k, and the per-mode relative errors (NaN for light modes).
    """
    model = mode_masses(target, samples)
    reference = torch.as_tensor(reference)
    if reference.ndim == 1:
        if len(reference) != len(model):
            raise ValueError(
                f"mode_mass_error on target {target.name!r}: exact masses must have shape "
                f"({len(model)},), got {tuple(reference.shape)}"
            )
        truth = reference.double()
    else:
        truth = mode_masses(target, reference)
    relative = (model - truth).abs() / truth
    relative = torch.where(truth >= min_mass, relative, torch.full_like(relative, float("nan")))
    return float(relative.nan_to_num(0.0).max()), relative
