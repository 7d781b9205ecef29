"""A fixed-step, batched fourth-order Runge-Kutta integrator for the ODE simulators.

Every simulation in a batch advances together as one NumPy array, so a batch of any size costs
one Python loop over time steps. Accuracy is checked per row through a conserved quantity of
the ODE (a first integral): rows whose invariant drifts more than a tolerance are integrated
again with steps four times shorter, up to a few times; rows that still drift, or whose state
overflowed, come back as NaN so that one bad parameter never fails a whole batch. Every row's
result depends only on its own parameters, so batching never changes it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

__all__ = ["integrate_checked", "integrate_rk4"]

Rates = Callable[[np.ndarray, np.ndarray], np.ndarray]
Drift = Callable[[np.ndarray, np.ndarray], np.ndarray]


def integrate_rk4(
    derivative: Rates,
    initial_state: np.ndarray,
    parameters: np.ndarray,
    save_times: np.ndarray,
    max_step: float,
) -> np.ndarray:
    """Integrate ``dy/dt = derivative(y, parameters)`` for a batch of initial value problems.

    Arguments:
        derivative: Maps states ``(n, k)`` and parameters ``(n, p)`` to rates ``(n, k)``.
        initial_state: States at ``save_times[0]``, shape ``(n, k)``.
        parameters: Parameters, shape ``(n, p)``.
        save_times: Increasing times at which to record the state, shape ``(T,)``.
        max_step: Largest step; each interval between save times is cut into equal steps.

    Returns:
        States at the save times, shape ``(n, k, T)``.
    """
    state = np.array(initial_state, dtype=np.float64)
    saved = [state]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for start, stop in itertools.pairwise(save_times):
            num_steps = math.ceil((stop - start) / max_step - 1e-9)
            h = (stop - start) / num_steps
            for _ in range(num_steps):
                k1 = derivative(state, parameters)
                k2 = derivative(state + 0.5 * h * k1, parameters)
                k3 = derivative(state + 0.5 * h * k2, parameters)
                k4 = derivative(state + h * k3, parameters)
                state = state + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            saved.append(state)
            if not np.isfinite(state).all(axis=1).any():  # every row overflowed: stop early
                saved.extend(state for _ in range(len(save_times) - len(saved)))
                break
    return np.stack(saved, axis=-1)


def integrate_checked(
    derivative: Rates,
    drift: Drift,
    initial_state: np.ndarray,
    parameters: np.ndarray,
    save_times: np.ndarray,
    max_step: float,
    tolerance: float,
    max_refinements: int = 2,
) -> np.ndarray:
    """:func:`integrate_rk4`, refining the step for rows whose first integral drifts.

    Arguments:
        derivative: As in :func:`integrate_rk4`.
        drift: Maps solutions ``(n, k, T)`` and parameters ``(n, p)`` to each row's relative
            drift of a conserved quantity, shape ``(n,)``.
        initial_state, parameters, save_times: As in :func:`integrate_rk4`.
        max_step: The first step size; each refinement divides it by four.
        tolerance: Largest accepted drift.
        max_refinements: How many times a row may be refined before it is given up.

    Returns:
        States at the save times, shape ``(n, k, T)``; rows given up are NaN.
    """
    initial_state = np.asarray(initial_state, dtype=np.float64)
    solution = integrate_rk4(derivative, initial_state, parameters, save_times, max_step)
    rows = np.arange(len(parameters))
    for refinement in range(max_refinements + 1):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            errors = drift(solution[rows], parameters[rows])
        finite = np.isfinite(solution[rows]).all(axis=(1, 2)) & np.isfinite(errors)
        rows = rows[~(finite & (errors <= tolerance))]
        if len(rows) == 0:
            return solution
        if refinement < max_refinements:
            step = max_step / 4 ** (refinement + 1)
            solution[rows] = integrate_rk4(
                derivative, initial_state[rows], parameters[rows], save_times, step
            )
    solution[rows] = np.nan
    return solution
