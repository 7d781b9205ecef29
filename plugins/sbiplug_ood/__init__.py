"""sbiplug_ood: out-of-distribution scores from layer-wise gradient norms, with immature models.

The gradient of a generative model's log-likelihood with respect to each parameter tensor has
a typical size on in-distribution data; :class:`GradientNormScorer` fits a Gaussian to the log
squared norms and scores how atypical new inputs are (Dauncey et al., TMLR 2024). Early
training checkpoints from :func:`train_density` score as well as converged models (Montazeran &
Köthe, 2025). :class:`LikelihoodScorer`, :class:`TypicalityScorer` and :func:`auroc` are the
baselines and the yardstick; the diagnostic ``ood`` asks of a study "does my simulator produce
data like the observations?".

Importing this package is cheap: torch loads only when an attribute below is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "EstimatorDensity",
    "GradientNormScorer",
    "LikelihoodScorer",
    "OODDiagnostic",
    "OODWarning",
    "StandardizedFlow",
    "TypicalityScorer",
    "VectorizationWarning",
    "auroc",
    "density_from_estimator",
    "group_log_prob",
    "train_density",
]

_LAZY = {
    "GradientNormScorer": "sbiplug_ood.gradients",
    "VectorizationWarning": "sbiplug_ood.gradients",
    "LikelihoodScorer": "sbiplug_ood.baselines",
    "TypicalityScorer": "sbiplug_ood.baselines",
    "auroc": "sbiplug_ood.baselines",
    "group_log_prob": "sbiplug_ood.baselines",
    "EstimatorDensity": "sbiplug_ood.density",
    "StandardizedFlow": "sbiplug_ood.density",
    "density_from_estimator": "sbiplug_ood.density",
    "train_density": "sbiplug_ood.density",
    "OODDiagnostic": "sbiplug_ood.diagnostic",
    "OODWarning": "sbiplug_ood.diagnostic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sbiplug_ood' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
