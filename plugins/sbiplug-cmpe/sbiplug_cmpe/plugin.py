"""Hook implementations of sbiplug_cmpe: contributes the ``cmpe`` estimator.

Kept torch-free: the factory is a lazy ``"module:attr"`` reference.
"""

from __future__ import annotations

from collections.abc import Iterator

from sbiplug import EstimatorSpec, hookimpl

__all__ = ["register_estimators"]


@hookimpl
def register_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="cmpe",
        factory="sbiplug_cmpe.trainer:CMPE",
        description="consistency model posterior estimation: few-step sampling, no log_prob",
        has_density=False,
    )
