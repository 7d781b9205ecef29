"""sbiplug_misspec: model-misspecification detection in summary space (Schmitt et al., 2023).

Train the summary network with an MMD penalty pulling summaries of simulated data towards
N(0, I) (:class:`SummaryMMD`, estimator ``npe_mmd``), then test observed data against the model
with a root-MMD test and a simulated null (:func:`misspecification_test`, diagnostic
``misspecification``). ``gaussian_means`` is the paper's 2-D Gaussian-means benchmark simulator.

Importing this package is cheap: torch loads only when an attribute below is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "KERNEL_SCALES",
    "NPEMMD",
    "DeepSetEmbedding",
    "GaussianMeans",
    "MLPEmbedding",
    "MisspecificationDiagnostic",
    "MisspecificationTest",
    "SummaryMMD",
    "misspecification_test",
    "mmd_squared",
]

_LAZY = {
    "KERNEL_SCALES": "sbiplug_misspec.regularizer",
    "SummaryMMD": "sbiplug_misspec.regularizer",
    "mmd_squared": "sbiplug_misspec.regularizer",
    "DeepSetEmbedding": "sbiplug_misspec.networks",
    "MLPEmbedding": "sbiplug_misspec.networks",
    "GaussianMeans": "sbiplug_misspec.simulator",
    "NPEMMD": "sbiplug_misspec.estimator",
    "MisspecificationTest": "sbiplug_misspec.hypothesis_test",
    "misspecification_test": "sbiplug_misspec.hypothesis_test",
    "MisspecificationDiagnostic": "sbiplug_misspec.diagnostic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sbiplug_misspec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
