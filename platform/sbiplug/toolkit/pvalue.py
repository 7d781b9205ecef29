"""Monte-Carlo p-values from a simulated null, and the Bonferroni adjustment.

For a statistic ``T`` and ``n`` draws ``T_1, ..., T_n`` from its null distribution, the
right-tailed Monte-Carlo p-value ``p = (1 + #{T_b >= T}) / (1 + n)`` counts the observed value
as one more draw from the null (Davison & Hinkley, *Bootstrap Methods and their Application*,
1997, eq. 4.11; North, Curtis & Sham, Am. J. Hum. Genet. 2002). Under the null, for a
continuous statistic, ``P(p <= alpha) <= alpha`` for every ``n``, with equality whenever
``alpha (1 + n)`` is an integer: the test is exact, never anti-conservative, and ``p`` is never
0. Ties count as exceedances (conservative).
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np

__all__ = ["bonferroni_p_value", "monte_carlo_p_value"]


@overload
def monte_carlo_p_value(observed: float, null: Any) -> float: ...
@overload
def monte_carlo_p_value(observed: np.ndarray, null: Any) -> np.ndarray: ...
def monte_carlo_p_value(observed: Any, null: Any) -> Any:
    """``(1 + #{null >= observed}) / (1 + n)``, right-tailed, for one or many statistics.

    Arguments:
        observed: Observed statistics, a number or an array (or CPU tensor) of shape ``S``.
        null: Null draws, shape ``(*S', n)`` with ``S'`` broadcasting against ``S``: one null
            of ``n`` draws for every observed value (``(n,)``), or one per value
            (``(*S, n)``). NaN draws are dropped (they are not draws: ``n`` counts the others).

    Returns:
        The p-values, a float for a scalar result, else a float64 array of the broadcast
        shape; NaN where ``observed`` is NaN.
    """
    draws = np.asarray(null, dtype=np.float64)
    values = np.asarray(observed, dtype=np.float64)
    if draws.ndim == 0:
        raise ValueError("monte_carlo_p_value: null must hold draws along its last axis")
    exceed = (draws >= values[..., None]).sum(axis=-1)  # NaN compares False: never exceeds
    num_draws = (~np.isnan(draws)).sum(axis=-1)
    p_values = np.where(np.isnan(values), np.nan, (1.0 + exceed) / (1.0 + num_draws))
    return float(p_values) if p_values.ndim == 0 else p_values


def bonferroni_p_value(p_values: Any) -> float:
    """The Bonferroni-adjusted smallest p-value ``min(1, m * min(p))`` of ``m`` tests.

    Rejecting the family when it is ``<= alpha`` controls the family-wise error at ``alpha``.
    """
    values = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if len(values) == 0:
        raise ValueError("bonferroni_p_value needs at least one p-value")
    return float(min(1.0, values.min() * len(values)))
