"""sbiplug_distances: learned density-based (Fermat) distances and posterior mode counting.

A density-based distance measures paths under the metric ``p(x)^(-2 beta) I``: long where the
density is low, so shortest paths follow the data and points cluster by mode (Sorrenson,
Behrend-Uriarte, Schnörr, Köthe, *Learning Distances from Data with Normalizing Flows and Score
Matching*, ICML 2025, https://arxiv.org/abs/2407.09297). :class:`DensityDistance` learns the
density with a normalizing flow (or takes one: a trained flow, an sbi posterior, analytic
functions), initialises geodesics on a kNN graph and refines them by score-guided relaxation;
:func:`find_modes` counts modes with it, and the diagnostic ``posterior_modes`` asks of a study
"how many modes has my posterior, and how much mass is in each?".

Importing this package is cheap: torch loads only when an attribute below is first used.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

__all__ = [
    "Density",
    "DensityDistance",
    "Modes",
    "PosteriorModesDiagnostic",
    "ScoreModel",
    "as_density",
    "find_modes",
    "fit_flow",
    "knn_log_density",
    "path_length",
    "relax",
    "respace",
    "train_score_model",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Density": ".densities",
        "as_density": ".densities",
        "fit_flow": ".densities",
        "DensityDistance": ".distance",
        "knn_log_density": ".graph",
        "Modes": ".modes",
        "find_modes": ".modes",
        "PosteriorModesDiagnostic": ".diagnostic",
        "path_length": ".relaxation",
        "relax": ".relaxation",
        "respace": ".relaxation",
        "ScoreModel": ".score_matching",
        "train_score_model": ".score_matching",
    },
)
