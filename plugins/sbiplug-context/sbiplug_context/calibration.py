"""Calibration of a posterior per number of trials: simulation-based calibration at fixed k.

For each trial count k, draw θ from the prior, simulate sets of exactly k trials (the
simulator's range pinned to k, padded to its full width), and rank each θ among posterior
draws; a calibrated posterior gives uniform ranks at every k (Talts et al., 2018). Reported per
count and parameter: a two-sided Kolmogorov-Smirnov p-value of the normalised ranks and the
coverage of the central 90% interval.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from scipy import stats

from sbiplug.toolkit import check_positive_int

__all__ = ["calibration_by_trial_count", "simulate_with_trials"]


def simulate_with_trials(simulator: Any, theta: torch.Tensor, num_trials: int, *, seed: int = 0):
    """Sets of exactly ``num_trials`` trials for ``theta`` ``(n, p)``, padded to the width of
    ``simulator`` (a :class:`~sbiplug_context.SetSimulator`): ``(n, max_trials, d)``."""
    if not simulator.min_trials <= num_trials <= simulator.max_trials:
        raise ValueError(
            f"simulate_with_trials: {num_trials} trials lie outside the simulator's range "
            f"{simulator.min_trials} to {simulator.max_trials}"
        )
    pinned = copy.copy(simulator)
    pinned.draw_trials = (num_trials, num_trials)  # the width stays max_trials
    return pinned.simulate(theta, seed=seed)


def calibration_by_trial_count(
    posterior: Any,
    simulator: Any,
    trial_counts: Sequence[int],
    *,
    num_simulations: int = 200,
    num_samples: int = 200,
    seed: int = 0,
) -> dict[int, dict[str, list[float]]]:
    """SBC per trial count.

    Arguments:
        posterior: Anything with ``sample((n,), x=x_o)`` (an sbi posterior).
        simulator: The set simulator the posterior was trained on.
        trial_counts: The counts k to check.
        num_simulations: SBC replicates per count.
        num_samples: Posterior draws per replicate.

    Returns:
        ``{k: {"ks_p_value": [per parameter], "coverage_90": [per parameter]}}``.
    """
    check_positive_int("num_simulations", num_simulations, owner="calibration_by_trial_count")
    report: dict[int, dict[str, list[float]]] = {}
    for index, k in enumerate(trial_counts):
        theta = simulator.sample_prior(num_simulations, seed=seed + 2 * index)
        x = simulate_with_trials(simulator, theta, int(k), seed=seed + 2 * index + 1)
        ranks = []
        for i in range(num_simulations):
            draws = posterior.sample((num_samples,), x=x[i : i + 1], show_progress_bars=False)
            ranks.append((draws < theta[i]).double().mean(0))
        u = torch.stack(ranks).numpy()
        report[int(k)] = {
            "ks_p_value": [
                float(stats.kstest(u[:, j], "uniform").pvalue) for j in range(u.shape[1])
            ],
            "coverage_90": [
                float(((u[:, j] > 0.05) & (u[:, j] < 0.95)).mean()) for j in range(u.shape[1])
            ],
        }
    return report
