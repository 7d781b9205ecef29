"""The verdict of a significance test, ready for :class:`sbiplug.DiagnosticResult`.

A diagnostic that tests a null hypothesis ("the posterior is calibrated", "the observations
come from the simulator") at level ``alpha`` reports the smallest p-value of its tests,
Bonferroni-adjusted when there are several (one per parameter, per observation), and passes
when that stays above ``alpha``::

    return DiagnosticResult(
        name=self.name, statistic=..., data=..., message=..., **significance(p_values, alpha)
    )
"""

from __future__ import annotations

from typing import Any

from sbiplug.toolkit.pvalue import bonferroni_p_value

__all__ = ["significance"]


def significance(p_values: Any, alpha: float) -> dict[str, Any]:
    """``p_value``, ``passed`` and ``threshold`` of ``m`` tests at family-wise level ``alpha``.

    Arguments:
        p_values: One p-value, or ``m`` of them (array-like).
        alpha: The family-wise significance level.

    Returns:
        ``{"p_value": min(1, m * min(p)), "passed": p_value > alpha, "threshold": alpha}``,
        keyword arguments of :class:`sbiplug.DiagnosticResult`.
    """
    p_value = bonferroni_p_value(p_values)
    return {"p_value": p_value, "passed": p_value > alpha, "threshold": float(alpha)}
