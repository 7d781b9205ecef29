"""SIR epidemic task of the sbibm benchmark: an ODE with binomial observation noise.

dS/dt = -beta S I / N, dI/dt = beta S I / N - gamma I, dR/dt = gamma I with N = 10^6 and
(S, I, R)(0) = (N - 1, 1, 0). The infected count is read on days 0, 17, ..., 153 (every 17th
day of sbibm's daily grid over 160 days) and observed as Binomial(1000, I / N) counts. The prior
is LogNormal(log 0.4, 0.5) x LogNormal(log 1/8, 0.2) on (beta, gamma). There is no exact
posterior: :meth:`reference_posterior` raises ``NotImplementedError``.

sbibm solves the ODE with an adaptive solver in Julia; here a batched fixed-step RK4 with steps
of 0.2 days, refined per row where the first integral (S + I) / N - (gamma / beta) log(S / N)
drifts by more than 1e-4, which keeps the error in I / N around 1e-4 or less (a tenth of one
of the 1000 binomial trials; checked against a tight-tolerance adaptive solver), far below
the binomial noise.

References:
    Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, LogNormal

from sbiplug.builtin.simulators._ode import integrate_checked
from sbiplug.simulator import Simulator

__all__ = ["SIR"]


def _sir_rates(state: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    """Rates of the population fractions (s, i, r), shape ``(n, 3)``."""
    infections = parameters[:, 0] * state[:, 0] * state[:, 1]
    recoveries = parameters[:, 1] * state[:, 1]
    rates = np.empty_like(state)
    rates[:, 0] = -infections
    rates[:, 1] = infections - recoveries
    rates[:, 2] = recoveries
    return rates


def _sir_drift(solution: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    """Largest change of the first integral s + i - (gamma / beta) log s, shape ``(n,)``.

    In population fractions: a drift of 1e-4 is a tenth of one of the 1000 binomial trials.
    """
    inverse_ratio = parameters[:, 1:2] / parameters[:, :1]
    invariant = solution[:, 0] + solution[:, 1] - inverse_ratio * np.log(solution[:, 0])
    return np.abs(invariant - invariant[:, :1]).max(axis=1)


class SIR(Simulator):
    """sbibm ``sir``: contact rate beta and recovery rate gamma; 10 binomial counts."""

    name = "sir"
    parameter_names = ("beta", "gamma")
    observation_shape = (10,)

    population: float = 1_000_000.0
    initial_infected: float = 1.0
    observation_days: tuple[float, ...] = tuple(17.0 * k for k in range(10))
    total_count: int = 1000
    max_step: float = 0.2
    drift_tolerance: float = 1e-4

    def __init__(self) -> None:
        loc = torch.tensor([math.log(0.4), math.log(0.125)])
        self._prior = Independent(LogNormal(loc, torch.tensor([0.5, 0.2])), 1)

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _fractions(self, theta: np.ndarray) -> np.ndarray:
        """Population fractions (s, i, r) on the observation days, shape ``(n, 3, 10)``.

        Rows whose integration fails (overflow, or drift of the first integral
        s + i - (gamma / beta) log s beyond ``drift_tolerance`` even with 16 times shorter steps)
        are NaN.
        """
        infected = self.initial_infected / self.population
        initial = np.tile([1.0 - infected, infected, 0.0], (len(theta), 1))
        days = np.asarray(self.observation_days)
        return integrate_checked(
            _sir_rates, _sir_drift, initial, theta, days, self.max_step, self.drift_tolerance
        )

    def solve(self, theta: Tensor) -> Tensor:
        """The noise-free compartments (S, I, R) in persons on the observation days.

        Arguments:
            theta: Parameters (beta, gamma), shape ``(n, 2)``.

        Returns:
            Populations, shape ``(n, 3, 10)``; NaN rows where integration failed.
        """
        theta, _ = self._check_theta(theta)
        fractions = self._fractions(theta.double().numpy())
        return torch.from_numpy(self.population * fractions)

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        infected = self._fractions(theta.detach().double().numpy())[:, 1]
        failed = np.isnan(infected).any(axis=1)
        # Failed rows draw with probability 0 (no randomness used) and become NaN afterwards.
        probability = np.where(failed[:, None], 0.0, np.clip(infected, 0.0, 1.0))
        counts = rng.binomial(self.total_count, probability).astype(np.float64)
        counts[failed] = np.nan
        return torch.from_numpy(counts).float()
