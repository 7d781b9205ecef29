"""Default parameter names: ``theta_1, theta_2, ...``, counted from 1 as in the papers.

Used wherever parameters come without names (a bare prior, a tensor of draws); the built-in
simulators name theirs the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["default_parameter_names", "parameter_names_or_default"]


def default_parameter_names(num_parameters: int) -> list[str]:
    """``["theta_1", ..., f"theta_{num_parameters}"]``."""
    return [f"theta_{i}" for i in range(1, num_parameters + 1)]


def parameter_names_or_default(names: Sequence[str] | None, num_parameters: int) -> list[str]:
    """``names`` when there is one per parameter, else :func:`default_parameter_names`."""
    if names is not None and len(names) == num_parameters:
        return list(names)
    return default_parameter_names(num_parameters)
