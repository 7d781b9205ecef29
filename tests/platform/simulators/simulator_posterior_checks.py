"""Helpers for validating reference posteriors against their simulators.

Rejection ABC uses nothing but the simulator and the prior, so agreement between its draws and
a reference posterior (C2ST near 0.5) checks the reference posterior against the forward model.
Self-normalised importance sampling with the prior as proposal checks the analytic likelihood
against the reference posterior through their moments.
"""

from __future__ import annotations

import numpy as np
import torch
from sbi.utils.metrics import c2st
from torch import Tensor

from sbiplug.simulator import Simulator


def rejection_abc(
    simulator: Simulator,
    x_o: Tensor,
    epsilon: float,
    num_samples: int,
    propose,
    *,
    seed: int = 0,
    batch_size: int = 250_000,
) -> Tensor:
    """Draws theta ~ propose(rng, n) whose simulation lands within ``epsilon`` of ``x_o``.

    ``propose`` must draw from the prior restricted to a region holding all posterior mass,
    so that accepted draws follow the ABC posterior.
    """
    rng = np.random.default_rng(seed)
    accepted, count = [], 0
    while count < num_samples:
        theta = torch.from_numpy(propose(rng, batch_size)).float()
        x = simulator._simulate(theta, rng)
        keep = torch.linalg.vector_norm(x - x_o, dim=1) < epsilon
        accepted.append(theta[keep])
        count += int(keep.sum())
    return torch.cat(accepted)[:num_samples]


def importance_moments(
    simulator: Simulator, x_o: Tensor, num_proposals: int, *, seed: int = 0
) -> tuple[Tensor, Tensor, float]:
    """Posterior mean, second moment and effective sample size by importance sampling.

    Proposal: the prior; weights: the simulator's analytic likelihood at ``x_o``.
    """
    theta = simulator.sample_prior(num_proposals, seed=seed).double()
    log_weights = simulator.log_likelihood(theta, x_o.double())
    weights = torch.softmax(log_weights, dim=0)
    mean = (weights[:, None] * theta).sum(0)
    second = (weights[:, None] * theta**2).sum(0)
    ess = float(1.0 / (weights**2).sum())
    return mean, second, ess


def assert_moments_agree(
    reference: Tensor, mean: Tensor, second: Tensor, ess: float, *, sigmas: float = 5.0
) -> None:
    """Reference draws' first two moments match importance-sampling estimates.

    Tolerance: ``sigmas`` standard errors of the difference, with the importance-sampling
    error from its effective sample size and the reference's from its number of draws.
    """
    reference = reference.double()
    for moment, estimate in ((reference, mean), (reference**2, second)):
        spread = moment.std(0)
        standard_error = spread * (1.0 / ess + 1.0 / len(reference)) ** 0.5
        difference = (moment.mean(0) - estimate).abs()
        assert torch.all(difference < sigmas * standard_error), (difference, standard_error)


def c2st_accuracy(first: Tensor, second: Tensor) -> float:
    """Cross-validated accuracy of a random forest telling ``first`` from ``second``.

    sbi's C2ST with 3 folds and 50 trees: every draw is still scored once, so the null
    accuracy's standard deviation stays sqrt(0.25 / (len(first) + len(second))).
    """
    return float(c2st(first, second, seed=0, n_folds=3, classifier_kwargs={"n_estimators": 50}))
