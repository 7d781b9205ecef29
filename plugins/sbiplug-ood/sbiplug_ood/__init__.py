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

from sbiplug.toolkit import lazy_exports

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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "GradientNormScorer": ".gradients",
        "VectorizationWarning": ".gradients",
        "LikelihoodScorer": ".baselines",
        "TypicalityScorer": ".baselines",
        "auroc": ".baselines",
        "group_log_prob": ".baselines",
        "EstimatorDensity": ".density",
        "StandardizedFlow": ".density",
        "density_from_estimator": ".density",
        "train_density": ".density",
        "OODDiagnostic": ".diagnostic",
        "OODWarning": ".diagnostic",
    },
)
