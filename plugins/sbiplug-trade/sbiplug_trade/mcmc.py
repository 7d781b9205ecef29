"""Hamiltonian Monte Carlo, vectorised over independent chains, with a Metropolis correction.

Used for ground truth where no exact sampler exists (the ``phi4`` lattice). Each chain draws a
fresh momentum, runs ``num_leapfrog`` leapfrog steps and accepts with probability
min(1, exp(-ΔH)); the leapfrog map is volume preserving and reversible under momentum flip, so
the kernel satisfies detailed balance for exp(log_density). The step size adapts during burn-in
only (dual-averaging-free Robbins-Monro on the log step size toward ``target_acceptance``),
then stays fixed so the kept draws come from a time-homogeneous chain.

Reference: R. M. Neal, MCMC using Hamiltonian dynamics, Handbook of MCMC (2011).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbiplug.toolkit import check_int, check_positive_int

__all__ = ["hmc_sample", "hmc_step"]

LogDensity = Callable[[Tensor], Tensor]


def _log_density_and_gradient(log_density: LogDensity, x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        value = log_density(x)
        (gradient,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), gradient.detach()


def hmc_step(
    log_density: LogDensity,
    x: Tensor,
    step_size: float | Tensor,
    num_leapfrog: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """One HMC transition for every chain.

    Arguments:
        log_density: Unnormalised log density, ``(n, d) -> (n,)``.
        x: Current states, shape ``(n, d)``.
        step_size: Leapfrog step size, a float or shape ``(n, 1)``.
        num_leapfrog: Leapfrog steps per transition.
        generator: Source of the momenta and the accept draws.

    Returns:
        New states, shape ``(n, d)``, and the acceptance probabilities, shape ``(n,)``.
    """
    momentum = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    value, gradient = _log_density_and_gradient(log_density, x)
    position = x.clone()
    current_momentum = momentum + 0.5 * step_size * gradient
    for leap in range(num_leapfrog):
        position = position + step_size * current_momentum
        new_value, gradient = _log_density_and_gradient(log_density, position)
        scale = 1.0 if leap < num_leapfrog - 1 else 0.5
        current_momentum = current_momentum + scale * step_size * gradient
    hamiltonian_old = -value + 0.5 * (momentum**2).sum(-1)
    hamiltonian_new = -new_value + 0.5 * (current_momentum**2).sum(-1)
    log_accept = (hamiltonian_old - hamiltonian_new).nan_to_num(nan=-math.inf)
    accept_probability = log_accept.clamp(max=0.0).exp()
    uniform = torch.rand(len(x), generator=generator, dtype=x.dtype)
    accepted = uniform < accept_probability
    return torch.where(accepted[:, None], position, x), accept_probability


def hmc_sample(
    log_density: LogDensity,
    initial: Tensor,
    num_draws: int,
    *,
    step_size: float = 0.2,
    num_leapfrog: int = 10,
    burn_in: int = 300,
    thin: int = 2,
    target_acceptance: float = 0.8,
    seed: int | None = 0,
    show_progress_bars: bool = False,
) -> tuple[Tensor, dict[str, float]]:
    """Run ``len(initial)`` chains and keep every ``thin``-th state after ``burn_in``.

    Arguments:
        log_density: Unnormalised log density, ``(n, d) -> (n,)``.
        initial: Starting states, shape ``(chains, d)``.
        num_draws: Draws kept per chain.
        step_size: Initial leapfrog step size (adapted per chain during burn-in).
        num_leapfrog: Leapfrog steps per transition.
        burn_in: Transitions discarded first.
        thin: Transitions between kept draws.
        target_acceptance: Mean acceptance probability aimed at during burn-in.
        seed: Seed of the chain's own generator.
        show_progress_bars: Whether to show a progress bar.

    Returns:
        Draws, shape ``(num_draws * chains, d)`` (draw-major), and statistics
        (``acceptance`` after burn-in, final mean ``step_size``).
    """
    for name, value in (("num_draws", num_draws), ("thin", thin), ("num_leapfrog", num_leapfrog)):
        check_positive_int(name, value, owner="hmc_sample")
    check_int("burn_in", burn_in, minimum=0, owner="hmc_sample")
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    x = initial.detach().clone()
    log_step = torch.full((len(x), 1), math.log(step_size), dtype=x.dtype)
    kept: list[Tensor] = []
    acceptance: list[Tensor] = []
    total = burn_in + num_draws * thin
    for iteration in tqdm(range(total), disable=not show_progress_bars, desc="HMC"):
        x, accept_probability = hmc_step(log_density, x, log_step.exp(), num_leapfrog, generator)
        if iteration < burn_in:
            rate = 1.0 / math.sqrt(iteration + 1.0)
            log_step = log_step + rate * (accept_probability[:, None] - target_acceptance)
            if iteration == burn_in - 1:
                # one common step size for all chains: the median of the adapted ones
                log_step = log_step.median().expand_as(log_step).clone()
        else:
            acceptance.append(accept_probability)
            if (iteration - burn_in + 1) % thin == 0:
                kept.append(x.clone())
    statistics = {
        "acceptance": float(torch.stack(acceptance).mean()),
        "step_size": float(log_step.exp().mean()),
    }
    return torch.cat(kept), statistics
