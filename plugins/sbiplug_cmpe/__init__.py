"""sbiplug_cmpe: consistency model posterior estimation (CMPE) as an sbi estimator.

Schmitt, Pratz, Köthe, Bürkner, Radev, *Consistency Models for Scalable and Fast Simulation-Based
Inference*, arXiv 2312.05440 (NeurIPS 2024). ``CMPE(prior)`` is an sbi trainer whose posterior
samples in a few network evaluations and has no ``log_prob``. Also available as
``sbiplug.make_estimator("cmpe", prior, **options)``.

Names load lazily so that importing the plugin (``sbiplug_cmpe.plugin``) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sbiplug_cmpe.estimator import ConsistencyEstimator, NoDensityError
    from sbiplug_cmpe.posterior import CMPEPosterior, LowAcceptanceWarning
    from sbiplug_cmpe.trainer import CMPE

__all__ = [
    "CMPE",
    "CMPEPosterior",
    "ConsistencyEstimator",
    "LowAcceptanceWarning",
    "NoDensityError",
]

_LOCATIONS = {
    "CMPE": "sbiplug_cmpe.trainer",
    "CMPEPosterior": "sbiplug_cmpe.posterior",
    "LowAcceptanceWarning": "sbiplug_cmpe.posterior",
    "ConsistencyEstimator": "sbiplug_cmpe.estimator",
    "NoDensityError": "sbiplug_cmpe.estimator",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'sbiplug_cmpe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
