"""sbiplug_cmpe: consistency model posterior estimation (CMPE) as an sbi estimator.

Schmitt, Pratz, Köthe, Bürkner, Radev, *Consistency Models for Scalable and Fast Simulation-Based
Inference*, arXiv 2312.05440 (NeurIPS 2024). ``CMPE(prior)`` is an sbi trainer whose posterior
samples in a few network evaluations and has no ``log_prob``. Also available as
``sbiplug.make_estimator("cmpe", prior, **options)``.

Names load lazily so that importing the plugin (``sbiplug_cmpe.plugin``) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbiplug.toolkit import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CMPE": ".trainer",
        "CMPEPosterior": ".posterior",
        "LowAcceptanceWarning": ".posterior",
        "ConsistencyEstimator": ".estimator",
        "NoDensityError": ".estimator",
    },
)
