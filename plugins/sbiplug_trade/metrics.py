"""Quality metrics of a conditional flow against a target family (TRADE, arXiv 2410.19492, §8).

* normalised effective sample size of importance weights log w = log p~(x | c) - log q(x | c) on
  draws x ~ q(. | c): ESS_r = exp(2 LSE(log w) - LSE(2 log w) - log N), in (0, 1];
* negative log-likelihood of ground-truth draws, -mean log q(x | c);
* mass per mode under q against ground truth, for targets that label modes (``mode_labels``);
  the truth is either ground-truth draws or exact masses (``target.exact_mode_masses(c)``, e.g.
  by quadrature), the same labelling for both. ESS alone cannot see a lost mode (draws from q
  never visit it), the mode masses can.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from sbiplug.target import Target
from sbiplug_trade.residual import log_effective_sample_size

__all__ = ["effective_sample_size", "mode_mass_error", "mode_masses", "negative_log_likelihood"]


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
