"""Checks of a study's data inputs, before the long work: observations, true parameters, budget.

Observations must have the simulator's ``observation_shape`` and be finite (a simulator may
define ``format_observations(observations) -> Tensor`` to accept, e.g., sets of different sizes,
and ``valid_rows(x) -> (n,) bools`` to accept data that pads with NaN); true parameters
must have one column per parameter, be finite and lie in the prior's support (``support.check``,
else a finite ``log_prob``); a training set needs valid rows to train on. Each problem raises a
:class:`StudyError` in one line naming the input and the simulator; a small simulation budget
only warns (:class:`SmallBudgetWarning`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = [
    "MIN_TRAINING_SIMULATIONS",
    "SMALL_BUDGET",
    "SmallBudgetWarning",
    "StudyError",
    "check_folder",
    "check_observations",
    "check_simulated_observations",
    "check_training_set",
    "check_true_parameters",
    "inside_support",
    "valid_rows",
    "warn_small_budget",
]

SMALL_BUDGET = 100
"""Below this many simulations a study warns: neural estimators need hundreds at the least."""

MIN_TRAINING_SIMULATIONS = 3
"""Valid rows sbi's trainers need (a training and a validation split, each non-empty)."""


class StudyError(ValueError):
    """A study is misconfigured; raised before any long work starts."""


class SmallBudgetWarning(UserWarning):
    """A study asked for too few simulations to train a neural estimator well."""


def warn_small_budget(num_simulations: int) -> None:
    """Warn when ``num_simulations`` is below :data:`SMALL_BUDGET`."""
    if num_simulations < SMALL_BUDGET:
        warnings.warn(
            f"num_simulations = {num_simulations} is very small: a neural estimator trained on "
            f"fewer than {SMALL_BUDGET} simulations is unreliable (thousands are typical)",
            SmallBudgetWarning,
            stacklevel=3,
        )


def check_folder(folder: str | os.PathLike[str] | None) -> Path | None:
    """``folder`` as a path, refused when it names something that is not a folder."""
    if folder is None:
        return None
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise StudyError(f"the study folder {str(path)!r} is a file, not a folder")
    return path


def _matrix(name: str, value: Any) -> Tensor:
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as error:
        raise StudyError(
            f"{name} must be an array of numbers, got {_shown(value)}: {error}"
        ) from None


def _is_ragged(value: Any) -> bool:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(row, (list, tuple)) for row in value
    ):
        return False
    return len({len(row) for row in value}) > 1


def check_observations(simulator: Any, observations: Any) -> Tensor:
    """Observed data as a finite tensor of shape ``(n, *simulator.observation_shape)``."""
    formatter = getattr(simulator, "format_observations", None)
    if callable(formatter):  # e.g. sets of different sizes, padded to one shape
        try:
            observations = formatter(observations)
        except (TypeError, ValueError) as error:
            raise StudyError(f"observations for simulator {simulator.name!r}: {error}") from None
    elif _is_ragged(observations):
        raise StudyError(
            f"observations must be rows of equal length for simulator "
            f"{simulator.name!r} (it takes no sets of different sizes), got rows of lengths "
            f"{', '.join(str(len(row)) for row in observations)}"
        )
    observations = _matrix("observations", observations)
    shape = tuple(simulator.observation_shape)
    if tuple(observations.shape) == shape:
        observations = observations.unsqueeze(0)
    if tuple(observations.shape[1:]) != shape or len(observations) == 0:
        raise StudyError(
            f"observations must have shape (n, {', '.join(map(str, shape))}) for simulator "
            f"{simulator.name!r}, got {tuple(observations.shape)}"
        )
    _require_finite("observations", observations, simulator)
    return observations


def check_true_parameters(simulator: Any, true_parameters: Any) -> Tensor:
    """True parameters as a finite tensor ``(n, num_parameters)`` inside the prior's support."""
    true_parameters = _matrix("true_parameters", true_parameters)
    if true_parameters.ndim == 1:
        true_parameters = true_parameters.unsqueeze(0)
    if (
        true_parameters.ndim != 2
        or true_parameters.shape[1] != simulator.num_parameters
        or len(true_parameters) == 0
    ):
        raise StudyError(
            f"true_parameters must have shape (n, {simulator.num_parameters}) for "
            f"parameters {list(simulator.parameter_names)}, got {tuple(true_parameters.shape)}"
        )
    _require_finite("true_parameters", true_parameters)
    inside = inside_support(simulator.prior, true_parameters)
    if not inside.all():
        row = int((~inside).nonzero()[0, 0])
        raise StudyError(
            f"true_parameters row {row} {_row(true_parameters[row])} lies outside the support "
            f"of the prior of simulator {simulator.name!r} (parameters "
            f"{', '.join(simulator.parameter_names)}){_bounds(simulator.prior)}"
        )
    return true_parameters


def check_simulated_observations(simulator: Any, x: Tensor) -> Tensor:
    """Observations simulated from true parameters: refused when any row is NaN or inf."""
    rows = ~valid_rows(simulator, x)
    if rows.any():
        row = int(rows.nonzero()[0, 0])
        raise StudyError(
            f"simulator {simulator.name!r} returned NaN or inf for observation {row} (of "
            f"{len(x)} simulated from the true parameters); pass observations, or true "
            "parameters where it is valid"
        )
    return x


def check_training_set(simulator: Any, num_valid: int, num_simulations: int) -> None:
    """Refuse a training set with too few valid rows, naming the simulator."""
    if num_valid == 0:
        raise StudyError(
            f"simulator {simulator.name!r} returned NaN or inf for all {num_simulations} "
            "simulations: there is nothing to train on; check the simulator for these parameters"
        )
    if num_valid < MIN_TRAINING_SIMULATIONS:
        raise StudyError(
            f"only {num_valid} of {num_simulations} simulations of simulator {simulator.name!r} "
            f"are valid; training needs at least {MIN_TRAINING_SIMULATIONS}: raise "
            "num_simulations"
        )


def inside_support(prior: Distribution, theta: Tensor) -> Tensor:
    """Whether each row of ``theta`` ``(n, d)`` lies in ``prior``'s support: ``(n,)`` bools.

    ``prior.support.check`` where the prior has a support, else a finite ``log_prob``.
    """
    try:
        inside = prior.support.check(theta)
    except (AttributeError, NotImplementedError, TypeError, RuntimeError, ValueError):
        inside = None
    if inside is not None:
        inside = torch.as_tensor(inside, dtype=torch.bool)
        while inside.ndim > 1:
            inside = inside.all(dim=-1)
        if inside.shape == (len(theta),):
            return inside
    rows = []
    for row in theta:
        try:
            rows.append(bool(torch.isfinite(prior.log_prob(row.unsqueeze(0))).all()))
        except ValueError:  # a prior validating its arguments rejects the value
            rows.append(False)
    return torch.tensor(rows, dtype=torch.bool)


def valid_rows(simulator: Any, x: Tensor) -> Tensor:
    """Which rows of ``x`` ``(n, *observation_shape)`` are valid data: ``(n,)`` bools.

    The simulator's own ``valid_rows(x)`` when it has one (data padded with NaN), else finite.
    """
    check = getattr(simulator, "valid_rows", None)
    if callable(check):
        return torch.as_tensor(check(x), dtype=torch.bool)
    return torch.isfinite(x.reshape(len(x), -1)).all(dim=1)


def _require_finite(name: str, values: Tensor, simulator: Any = None) -> None:
    if simulator is not None:
        rows = ~valid_rows(simulator, values)
    else:
        rows = ~torch.isfinite(values.reshape(len(values), -1)).all(dim=1)
    if rows.any():
        row = int(rows.nonzero()[0, 0])
        raise StudyError(f"{name} must be finite; row {row} holds NaN or inf: {_row(values[row])}")


def _bounds(prior: Distribution) -> str:
    """``"; the support is [-1, 1] per parameter"`` for a box prior, else ``""``."""
    support = getattr(prior, "support", None)
    base = getattr(support, "base_constraint", support)
    low, high = getattr(base, "lower_bound", None), getattr(base, "upper_bound", None)
    if low is None or high is None:
        return ""
    low, high = torch.as_tensor(low).flatten(), torch.as_tensor(high).flatten()
    if len(low) and bool((low == low[0]).all()) and bool((high == high[0]).all()):
        return f"; the support is [{float(low[0]):g}, {float(high[0]):g}] per parameter"
    return f"; the support is lower {_row(low)}, upper {_row(high)}"


def _row(values: Tensor) -> str:
    flat = values.flatten().tolist()
    shown = ", ".join(f"{value:g}" for value in flat[:8])
    return f"[{shown}{', ...' if len(flat) > 8 else ''}]"


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."
