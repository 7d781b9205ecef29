"""Posterior draws as ArviZ chains, and the densities ArviZ needs beside them.

Draws are kept as ``(chain, draw)``: an MCMC posterior's chains stay apart, and independent
draws (direct or rejection sampling of an amortised posterior) are split into
:data:`INDEPENDENT_CHAINS` chains, so R-hat and ESS (Vehtari, Gelman, Simpson, Carpenter &
Bürkner 2021) are defined and ArviZ sees the shape it expects. Beside the draws: the prior's log
density at every draw (ArviZ's ``log_prior`` group) and the log likelihood (``log_likelihood``),
pointwise where the simulator offers it, for power-scaling sensitivity (Kallioinen, Paananen,
Bürkner & Vehtari 2023) and PSIS-LOO (Vehtari, Gelman & Gabry 2017).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

    from sbiplug.simulator import Simulator

__all__ = [
    "INDEPENDENT_CHAINS",
    "LEAKAGE_REJECTION_SAMPLES",
    "draw_posterior_samples",
    "is_mcmc",
    "log_likelihood_at",
    "log_prior_at",
    "posterior_log_prob",
]

#: Chains independent draws are split into: four, as for MCMC (Vehtari et al. 2021).
INDEPENDENT_CHAINS = 4


def _torch() -> Any:
    # imported on use: the CLI's report imports the ArviZ adapter, and listing plugins stays light
    import torch

    return torch


def is_mcmc(posterior: Any) -> bool:
    """Whether ``posterior`` is an sbi ``MCMCPosterior`` (correlated draws, chains)."""
    from sbi.inference.posteriors import MCMCPosterior

    return isinstance(posterior, MCMCPosterior)


def draw_posterior_samples(
    posterior: Any, observations: Tensor, num_samples: int, show_progress_bars: bool = False
) -> Tensor:
    """Posterior draws for each observation, as chains.

    An sbi ``MCMCPosterior`` returns its chains concatenated chain after chain; they are split
    back, and it shows sbi's own MCMC bars. Other posteriors give independent draws, sampled with
    ``sample_batched`` where they support it and split into :data:`INDEPENDENT_CHAINS` chains
    (one chain below ``2 * INDEPENDENT_CHAINS`` draws), with one bar over all draws.

    Arguments:
        posterior: An sbi posterior.
        observations: Shape ``(num_observations, *observation_shape)``.
        num_samples: Draws per observation (rounded up to a multiple of the chains).
        show_progress_bars: Whether to show a progress bar.

    Returns:
        Shape ``(num_observations, num_chains, num_draws, num_parameters)``.
    """
    mcmc = is_mcmc(posterior)
    if mcmc:
        num_chains = int(getattr(posterior, "num_chains", 1) or 1)
    else:
        num_chains = INDEPENDENT_CHAINS if num_samples >= 2 * INDEPENDENT_CHAINS else 1
    num_draws = math.ceil(num_samples / num_chains)
    total = num_chains * num_draws
    if mcmc and num_chains > 1:
        per_observation = [
            posterior.sample((total,), x=x_o, show_progress_bars=show_progress_bars)
            for x_o in observations
        ]
        samples = _torch().stack(per_observation)
        return samples.reshape(len(observations), num_chains, num_draws, -1).detach().float()
    from tqdm.auto import tqdm

    with tqdm(
        total=total * len(observations),
        desc="Sampling posterior",
        unit="draw",
        disable=not show_progress_bars,
    ) as bar:
        if len(observations) == 1:
            samples = _sample(posterior, total, observations[0]).unsqueeze(0)
        else:
            try:
                batched = posterior.sample_batched(
                    (total,), x=observations, show_progress_bars=False
                )
                samples = batched.transpose(0, 1)
            except (NotImplementedError, AttributeError):
                draws = []
                for x_o in observations:
                    draws.append(_sample(posterior, total, x_o))
                    bar.update(total)
                samples = _torch().stack(draws)
        bar.update(bar.total - bar.n)
    return samples.reshape(len(observations), num_chains, num_draws, -1).detach().float()


def _sample(posterior: Any, num_samples: int, x_o: Tensor) -> Tensor:
    try:
        return posterior.sample((num_samples,), x=x_o, show_progress_bars=False)
    except TypeError:  # a posterior without the progress-bar switch
        return posterior.sample((num_samples,), x=x_o)


LEAKAGE_REJECTION_SAMPLES = 1000


def posterior_log_prob(posterior: Any, samples: Tensor, observations: Tensor) -> Tensor | None:
    """Normalised ``log q(theta | x)`` of each draw, shape ``samples.shape[:-1]``; ``None`` for
    MCMC posteriors (their potential is unnormalised) and posteriors without a density.

    sbi renormalises a posterior truncated to the prior's support by the fraction of its mass
    inside, estimated by rejection sampling; ``LEAKAGE_REJECTION_SAMPLES`` draws (instead of
    sbi's 10 000) keep that estimate's cost below the sampling's while its standard error stays
    under 0.016 in probability.
    """
    if is_mcmc(posterior) or not hasattr(posterior, "log_prob"):
        return None
    values = []
    try:
        for draws, x_o in zip(samples, observations, strict=True):
            flat = draws.reshape(-1, draws.shape[-1])
            try:
                log_prob = posterior.log_prob(
                    flat,
                    x=x_o,
                    leakage_correction_params={
                        "num_rejection_samples": LEAKAGE_REJECTION_SAMPLES,
                        "show_progress_bars": False,
                    },
                )
            except TypeError:  # a posterior without sbi's leakage correction
                log_prob = posterior.log_prob(flat, x=x_o)
            values.append(log_prob.reshape(draws.shape[:-1]))
    except (NotImplementedError, AttributeError, TypeError):
        return None
    return _torch().stack(values).detach().float()


def log_prior_at(prior: Any, samples: Tensor) -> Tensor | None:
    """``log p(theta)`` of every draw, shape ``samples.shape[:-1]``; ``None`` without a density.

    Arguments:
        prior: A torch distribution with event shape ``(num_parameters,)``.
        samples: Shape ``(..., num_parameters)``.
    """
    torch = _torch()
    flat = samples.reshape(-1, samples.shape[-1])
    try:
        with torch.no_grad():
            values = prior.log_prob(flat)
    except (NotImplementedError, ValueError, AttributeError):
        return None
    return values.reshape(samples.shape[:-1]).detach().float()


def log_likelihood_at(
    simulator: Simulator, posterior: Any, samples: Tensor, observations: Tensor
) -> tuple[Tensor, str] | None:
    """The log likelihood of each observation at each of its draws, and where it came from.

    A likelihood estimator (sbi's NLE and its kin: a posterior whose potential holds a
    ``likelihood_estimator``) gives ``log q(x_o | theta)``, the likelihood its posterior uses;
    otherwise a simulator with ``pointwise_log_likelihood(theta, x) -> (n, *point_shape)`` gives
    one value per data point (an i.i.d. trial or an independent coordinate of ``x``), and one
    with ``log_likelihood(theta, x) -> (n,)`` one value per observation.

    Arguments:
        simulator: The study's simulator.
        posterior: The sbi posterior the draws came from.
        samples: Shape ``(num_observations, num_chains, num_draws, num_parameters)``.
        observations: Shape ``(num_observations, *observation_shape)``.

    Returns:
        ``(values, source)``: values of shape ``samples.shape[:-1] + point_shape`` (``point_shape``
        empty for one value per observation), ``source`` ``"estimator"`` or ``"simulator"``;
        ``None`` when neither offers a likelihood.
    """
    torch = _torch()
    draws_shape = samples.shape[1:-1]
    potential = getattr(posterior, "potential_fn", None)
    if getattr(potential, "likelihood_estimator", None) is not None:
        values = []
        default_x = getattr(posterior, "default_x", None)
        with torch.no_grad():
            for draws, x_o in zip(samples, observations, strict=True):
                flat = draws.reshape(-1, draws.shape[-1])
                posterior.set_default_x(x_o)
                log_joint = potential(flat, track_gradients=False)
                values.append((log_joint - simulator.prior.log_prob(flat)).reshape(draws_shape))
        if default_x is not None:
            posterior.set_default_x(default_x)
        return torch.stack(values).detach().float(), "estimator"
    pointwise = getattr(simulator, "pointwise_log_likelihood", None)
    if pointwise is None and not simulator.has_log_likelihood:
        return None
    function = pointwise or simulator.log_likelihood
    values = []
    with torch.no_grad():
        for draws, x_o in zip(samples, observations, strict=True):
            flat = draws.reshape(-1, draws.shape[-1])
            value = function(flat, x_o.expand(len(flat), *x_o.shape))
            values.append(value.reshape(*draws_shape, *value.shape[1:]))
    return torch.stack(values).detach().float(), "simulator"
