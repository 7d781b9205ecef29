"""Lotka-Volterra predator-prey task of the sbibm benchmark: an ODE with log-normal noise.

dX/dt = alpha X - beta X Y, dY/dt = -gamma Y + delta X Y from (X, Y)(0) = (30, 1). Both
populations are read at t = 0, 2.1, ..., 18.9 (every 21st point of sbibm's 0.1-spaced grid over
20 time units) and observed as LogNormal(log clip(population, 1e-10, 1e4), 0.1): 10 prey values,
then 10 predator values. The prior is LogNormal(mu, 0.5) with mu = (-0.125, -3, -0.125, -3) on
(alpha, beta, gamma, delta). There is no exact posterior: :meth:`reference_posterior` raises
``NotImplementedError``.

sbibm solves the ODE with an adaptive solver in Julia; here a batched fixed-step RK4 (step 0.02)
on the log-populations, which keeps them positive through near-extinctions. Rows where the
conserved quantity delta X - gamma log X + beta Y - alpha log Y drifts by more than 1e-5
(relative) are integrated again with shorter steps; the remaining error is ~1e-3 or less in
log-population against a tight-tolerance adaptive solver, far below the 0.1 observation noise.

References:
    Benchmarking Simulation-Based Inference (Lueckmann et al., 2021)
    https://arxiv.org/abs/2101.04653
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, LogNormal

from sbiplug.builtin.simulators._ode import integrate_checked
from sbiplug.simulator import Simulator

__all__ = ["LotkaVolterra"]


def _log_population_rates(state: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    """Rates of (log X, log Y), shape ``(n, 2)``; parameters (alpha, beta, gamma, delta)."""
    rates = np.empty_like(state)
    rates[:, 0] = parameters[:, 0] - parameters[:, 1] * np.exp(state[:, 1])
    rates[:, 1] = parameters[:, 3] * np.exp(state[:, 0]) - parameters[:, 2]
    return rates


def _log_population_drift(solution: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    """Relative change of V = delta X - gamma log X + beta Y - alpha log Y along each row.

    V is conserved by the Lotka-Volterra equations; the change is measured against the sum of
    its terms' magnitudes at t = 0, since V itself may be near zero. Shape ``(n,)``.
    """
    log_prey, log_predators = solution[:, 0], solution[:, 1]
    alpha, beta, gamma, delta = (parameters[:, i : i + 1] for i in range(4))
    terms = (
        delta * np.exp(log_prey),
        -gamma * log_prey,
        beta * np.exp(log_predators),
        -alpha * log_predators,
    )
    invariant = sum(terms)
    scale = sum(np.abs(term[:, 0]) for term in terms)
    return np.abs(invariant - invariant[:, :1]).max(axis=1) / scale


class LotkaVolterra(Simulator):
    """sbibm ``lotka_volterra``: 4 rate parameters; 20 noisy population values."""

    name = "lotka_volterra"
    parameter_names = ("alpha", "beta", "gamma", "delta")
    observation_shape = (20,)

    initial_populations: tuple[float, float] = (30.0, 1.0)
    observation_times: tuple[float, ...] = tuple(2.1 * k for k in range(10))
    noise_scale: float = 0.1
    clip: tuple[float, float] = (1e-10, 1e4)
    max_step: float = 0.02
    drift_tolerance: float = 1e-5

    def __init__(self) -> None:
        loc = torch.tensor([-0.125, -3.0, -0.125, -3.0])
        self._prior = Independent(LogNormal(loc, 0.5 * torch.ones(4)), 1)

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _populations(self, theta: np.ndarray) -> np.ndarray:
        """Populations (X, Y) at the observation times, shape ``(n, 2, 10)``.

        Rows whose integration fails (overflow, or relative drift of the first integral beyond
        ``drift_tolerance`` even with 16 times shorter steps) are NaN.
        """
        initial = np.tile(np.log(self.initial_populations), (len(theta), 1))
        times = np.asarray(self.observation_times)
        log_populations = integrate_checked(
            _log_population_rates,
            _log_population_drift,
            initial,
            theta,
            times,
            self.max_step,
            self.drift_tolerance,
        )
        return np.exp(log_populations)

    def solve(self, theta: Tensor) -> Tensor:
        """The noise-free populations (X, Y) at the observation times.

        Arguments:
            theta: Parameters (alpha, beta, gamma, delta), shape ``(n, 4)``.

        Returns:
            Populations, shape ``(n, 2, 10)``; NaN rows where integration failed.
        """
        theta, _ = self._check_theta(theta)
        return torch.from_numpy(self._populations(theta.double().numpy()))

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        populations = self._populations(theta.detach().double().numpy()).reshape(len(theta), -1)
        noise = rng.standard_normal(populations.shape)
        x = np.clip(populations, *self.clip) * np.exp(self.noise_scale * noise)
        return torch.from_numpy(x).float()
