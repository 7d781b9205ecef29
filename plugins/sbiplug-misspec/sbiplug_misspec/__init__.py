"""sbiplug_misspec: model-misspecification detection in summary space (Schmitt et al., 2023).

Train the summary network with an MMD penalty pulling summaries of simulated data towards
N(0, I) (:class:`SummaryMMD`, estimator ``npe_mmd``), then test observed data against the model
with a root-MMD test and a simulated null (:func:`misspecification_test`, diagnostic
``misspecification``); by default the test adds a block of fixed data features, combined by
the smaller p-value under the same null, and explains what drives a rejection.
:class:`Misspecified` makes any simulator wrong in one named way (noise, outliers, drift,
censoring, prior). ``gaussian_means`` is the paper's 2-D Gaussian-means benchmark simulator.

Importing this package is cheap: torch loads only when an attribute below is first used.
"""

from __future__ import annotations

from sbiplug.toolkit import lazy_exports

__all__ = [
    "KERNEL_SCALES",
    "NPEMMD",
    "DataFeatures",
    "DeepSetEmbedding",
    "GaussianMeans",
    "MLPEmbedding",
    "MisspecificationDiagnostic",
    "MisspecificationTest",
    "Misspecified",
    "SummaryMMD",
    "misspecification_test",
    "mmd_squared",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "KERNEL_SCALES": ".regularizer",
        "SummaryMMD": ".regularizer",
        "mmd_squared": ".regularizer",
        "DataFeatures": ".data_features",
        "DeepSetEmbedding": ".networks",
        "MLPEmbedding": ".networks",
        "GaussianMeans": ".simulator",
        "Misspecified": ".misspecified",
        "NPEMMD": ".estimator",
        "MisspecificationTest": ".hypothesis_test",
        "misspecification_test": ".hypothesis_test",
        "MisspecificationDiagnostic": ".diagnostic",
    },
)
